/**
 * The protocol client: `POST /v1/sync`, the collection feed and the
 * `/v1/events` stream, with the bearer token, timeouts, and the server's
 * error answers turned into typed errors.
 */
import {
  DynamergeError,
  NetworkError,
  toDynamergeError,
  type ErrorCode,
  type SerializedError,
} from "./errors.js";
import { codeOfStatus, HASH_PATTERN } from "./protocol.gen.js";
import type { Change, Heads, Token } from "./types.js";

/** SyncDocRequest is one entry of a `POST /v1/sync` request. */
export interface SyncDocRequest {
  collection: string;
  id: string;
  have: Heads;
  changes?: string;
}

/** SyncDocResponse is one entry of a `POST /v1/sync` answer. */
export interface SyncDocResponse {
  collection: string;
  id: string;
  heads: Heads;
  changes?: string;
  error?: { code: string; message: string };
}

/** FeedEntry is one record of a feed page. */
export interface FeedEntry {
  id: string;
  heads: Heads;
  /** The record is deleted (PROTOCOL.md, Record lifecycle). */
  deleted?: boolean;
  /** The record was purged: devices drop their copies. */
  purged?: boolean;
}

/** FeedPage is one page of a collection feed. */
export interface FeedPage {
  docs: FeedEntry[];
  cursor: string;
  more: boolean;
}

/** ChangeEvent is the data of one `event: change` of `/v1/events`. */
export interface ChangeEvent {
  collection: string;
  id: string;
  heads: Heads;
  /** The record is now deleted. */
  deleted?: boolean;
  /**
   * The change chunks that moved the record to `heads` (standard base64),
   * when the server inlined them (small changes); see `inline.ts`.
   */
  changes?: string;
}

/** Request bodies of at least this many bytes are gzipped: below it gzip saves too little. */
const GZIP_MIN_BYTES = 1024;

/** gzip compresses a request body with the platform's CompressionStream. */
async function gzip(s: string): Promise<ArrayBuffer> {
  const stream = new Blob([s]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Response(stream).arrayBuffer();
}

/**
 * WireChange is one change of a history page as the server sends it: a
 * {@link Change} the server accepted (so `at` is set), without the
 * library's `pending`. The history route's wire types live here rather
 * than in the generated protocol.gen.ts, whose Go source another change is
 * extending.
 */
export type WireChange = Omit<Change, "pending" | "at"> & { at: string };

/** HistoryWirePage is the answer of `GET …/docs/{id}/changes`. */
export interface HistoryWirePage {
  changes: WireChange[];
  cursor: string;
  more: boolean;
}

function isWireChange(c: unknown): c is WireChange {
  const w = c as WireChange;
  return (
    w !== null &&
    typeof w === "object" &&
    typeof w.hash === "string" &&
    HASH_PATTERN.test(w.hash) &&
    typeof w.actor === "string" &&
    typeof w.seq === "number" &&
    // A Go server may encode a first change's empty deps as null.
    (w.deps === null || (Array.isArray(w.deps) && w.deps.every((h) => typeof h === "string"))) &&
    typeof w.time === "number" &&
    (w.message === null || typeof w.message === "string") &&
    typeof w.ops === "number" &&
    (w.by === null || typeof w.by === "string") &&
    typeof w.at === "string"
  );
}

/** Client talks to one dynamerge server. */
export class Client {
  private readonly base: string;
  private readonly token: Token | undefined;
  private readonly fetchFn: typeof fetch;
  private readonly timeoutMs: number;
  private cachedToken: string | undefined;
  // The server said (Vary: Accept-Encoding on a sync answer) that it takes
  // gzip request bodies.
  private gzipOK = false;

  constructor(base: string, token: Token | undefined, fetchFn: typeof fetch, timeoutMs: number) {
    this.base = base.replace(/\/+$/, "");
    this.token = token;
    this.fetchFn = fetchFn;
    this.timeoutMs = timeoutMs;
  }

  /** sync posts one batch. Whole-request failures throw typed errors. */
  async sync(docs: SyncDocRequest[], signal: AbortSignal): Promise<SyncDocResponse[]> {
    const json = JSON.stringify({ docs });
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    let body: BodyInit = json;
    // Answers come gzipped on their own (the browser asks, fetch inflates);
    // a request body is gzipped only once the server has shown it takes
    // one, so that a server without gzip keeps working.
    if (json.length >= GZIP_MIN_BYTES && this.gzipOK && typeof CompressionStream === "function") {
      body = await gzip(json);
      headers["Content-Encoding"] = "gzip";
    }
    const res = await this.call("/v1/sync", { method: "POST", body, headers }, signal);
    if (/accept-encoding/i.test(res.headers.get("Vary") ?? "")) this.gzipOK = true;
    const out = (await readJSON(res)) as { docs?: unknown };
    if (!Array.isArray(out.docs) || out.docs.length !== docs.length) {
      throw new DynamergeError("bad_response", `dynamerge: /v1/sync answered ${Array.isArray(out.docs) ? out.docs.length : "no"} docs for ${docs.length}`, {
        status: res.status,
      });
    }
    return out.docs.map((d, n) => checkDoc(d, docs[n]!, res.status));
  }

  /** feed reads one page of a collection's feed after `cursor` ("" for the start). */
  async feed(collection: string, cursor: string, limit: number, signal: AbortSignal): Promise<FeedPage> {
    const q = new URLSearchParams({ limit: String(limit) });
    if (cursor) q.set("after", cursor);
    const res = await this.call(`/v1/collections/${encodeURIComponent(collection)}/feed?${q}`, { method: "GET" }, signal);
    const page = (await readJSON(res)) as FeedPage;
    if (!page || !Array.isArray(page.docs) || typeof page.cursor !== "string" || typeof page.more !== "boolean") {
      throw new DynamergeError("bad_response", `dynamerge: feed of ${collection}: unexpected answer`, { status: res.status });
    }
    return page;
  }

  /**
   * history reads one page of a record's changes, newest first
   * (`GET …/docs/{id}/changes`, PROTOCOL.md "Record lifecycle"), before
   * `cursor` ("" for the newest page).
   */
  async history(collection: string, id: string, cursor: string, limit: number | undefined, signal: AbortSignal): Promise<HistoryWirePage> {
    const q = new URLSearchParams();
    if (cursor) q.set("before", cursor);
    if (limit !== undefined) q.set("limit", String(limit));
    const path = `/v1/collections/${encodeURIComponent(collection)}/docs/${encodeURIComponent(id)}/changes${q.size ? `?${q}` : ""}`;
    const res = await this.call(path, { method: "GET" }, signal);
    const page = (await readJSON(res)) as HistoryWirePage;
    if (!page || !Array.isArray(page.changes) || typeof page.cursor !== "string" || typeof page.more !== "boolean" || !page.changes.every(isWireChange)) {
      throw new DynamergeError("bad_response", `dynamerge: history of ${collection}/${id}: unexpected answer`, { status: res.status, collection, id });
    }
    for (const c of page.changes) c.deps ??= [];
    return page;
  }

  /**
   * events opens `/v1/events` for the collections and calls `onEvent` for
   * each change event and `onOpen` once the server answered. It resolves
   * when the stream ends and rejects on errors or abort, or when nothing
   * (not even the server's `: ping`) came for `idleMs`: a connection that
   * died without a word must not leave the app deaf.
   *
   * It reads the Server-Sent Events stream from fetch rather than with
   * EventSource: EventSource cannot send the Authorization header (a token
   * in the URL ends up in logs) and does not exist in Node 20.
   */
  async events(
    collections: string[],
    idleMs: number,
    signal: AbortSignal,
    onOpen: () => void,
    onEvent: (e: ChangeEvent) => void,
  ): Promise<void> {
    const q = new URLSearchParams({ collections: collections.join(",") });
    const res = await this.call(`/v1/events?${q}`, { method: "GET", headers: { Accept: "text/event-stream" } }, signal, false);
    if (!res.body) throw new DynamergeError("bad_response", "dynamerge: /v1/events answered without a body");
    onOpen();
    await readSSE(res.body, signal, idleMs, (type, data) => {
      if (type !== "change") return;
      let e: unknown;
      try {
        e = JSON.parse(data);
      } catch {
        throw new DynamergeError("bad_response", `dynamerge: /v1/events sent invalid JSON: ${data.slice(0, 200)}`);
      }
      const ev = e as ChangeEvent;
      if (typeof ev?.collection !== "string" || typeof ev.id !== "string" || !Array.isArray(ev.heads)) {
        throw new DynamergeError("bad_response", `dynamerge: /v1/events sent an unexpected event: ${data.slice(0, 200)}`);
      }
      onEvent(ev);
    });
  }

  /** refreshToken forgets the cached token, so the next call asks the token function again. */
  refreshToken(): boolean {
    if (typeof this.token !== "function") return false;
    this.cachedToken = undefined;
    return true;
  }

  private async authHeader(): Promise<string | undefined> {
    if (this.token === undefined) return undefined;
    if (typeof this.token === "string") return `Bearer ${this.token}`;
    if (this.cachedToken === undefined) {
      try {
        this.cachedToken = await this.token();
      } catch (err) {
        throw new DynamergeError("unauthorized", `dynamerge: the token function failed: ${String(err)}`, { cause: err });
      }
    }
    return `Bearer ${this.cachedToken}`;
  }

  // call sends one request and returns a 2xx answer; anything else throws
  // the typed error. With `timeout` false (the event stream) only `signal`
  // ends it.
  private async call(path: string, init: RequestInit, signal: AbortSignal, timeout = true): Promise<Response> {
    const headers = new Headers(init.headers);
    const auth = await this.authHeader();
    if (auth) headers.set("Authorization", auth);
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(signal.reason);
    if (signal.aborted) ctl.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    // The timeout bounds the wait for the answer's headers (the stream's
    // too); a sync answer's body is small and follows at once.
    const timer = setTimeout(() => ctl.abort(new Error("timeout")), this.timeoutMs);
    let res: Response;
    try {
      res = await this.fetchFn(this.base + path, { ...init, headers, signal: ctl.signal, cache: "no-store" });
    } catch (err) {
      if (signal.aborted) throw signal.reason ?? err;
      const why = ctl.signal.aborted ? `timed out after ${this.timeoutMs} ms` : String((err as Error)?.message ?? err);
      throw new NetworkError(`dynamerge: ${init.method} ${path}: ${why}`, { cause: err });
    } finally {
      clearTimeout(timer);
      // For a stream the listener must stay until the stream ends; events()
      // holds `signal` itself, so removing it here is safe.
      if (timeout) signal.removeEventListener("abort", onAbort);
    }
    if (res.ok) return res;
    throw await errorOf(res, `${init.method} ${path.split("?")[0]}`);
  }
}

// errorOf turns a non-2xx answer into the typed error with the server's code.
async function errorOf(res: Response, what: string): Promise<DynamergeError> {
  let text = "";
  try {
    text = await res.text();
  } catch {
    // The body is only for the message; the status still tells the code.
  }
  let code: string | undefined;
  let message = text.slice(0, 500);
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body?.error?.code === "string") code = body.error.code;
    if (typeof body?.error?.message === "string") message = body.error.message;
  } catch {
    // Not JSON (a proxy's error page): fall back to the status.
  }
  code ??= codeOfStatus(res.status);
  const retryAfterMs = parseRetryAfter(res.headers.get("Retry-After"));
  const e: SerializedError = {
    code: code as ErrorCode,
    message: `dynamerge: ${what}: ${res.status} ${code}: ${message}`,
    status: res.status,
    retryAfterMs,
  };
  return toDynamergeError(e);
}


/** parseRetryAfter reads Retry-After (seconds or an HTTP date) as milliseconds. */
export function parseRetryAfter(v: string | null): number | undefined {
  if (!v) return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - Date.now());
}

async function readJSON(res: Response): Promise<unknown> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new DynamergeError("bad_response", `dynamerge: expected JSON from the server, got ${text.slice(0, 200)}`, {
      status: res.status,
    });
  }
}


function checkDoc(d: unknown, asked: SyncDocRequest, status: number): SyncDocResponse {
  const r = d as SyncDocResponse;
  const ok =
    r !== null &&
    typeof r === "object" &&
    r.collection === asked.collection &&
    r.id === asked.id &&
    (r.heads === undefined || (Array.isArray(r.heads) && r.heads.every((h) => typeof h === "string" && HASH_PATTERN.test(h)))) &&
    (r.changes === undefined || typeof r.changes === "string") &&
    (r.error === undefined || typeof r.error?.code === "string");
  if (!ok) {
    throw new DynamergeError("bad_response", `dynamerge: /v1/sync answer for ${asked.collection}/${asked.id} is malformed`, {
      status,
      collection: asked.collection,
      id: asked.id,
    });
  }
  return { ...r, heads: r.heads ?? [] };
}

/**
 * readSSE parses a Server-Sent Events stream (the WHATWG format: lines of
 * `field: value`, events ended by a blank line, `:` comments) and calls
 * `onEvent(type, data)` for each event.
 */
export async function readSSE(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  idleMs: number,
  onEvent: (type: string, data: string) => void,
): Promise<void> {
  const reader = body.getReader();
  const onAbort = () => void reader.cancel().catch(() => {});
  signal.addEventListener("abort", onAbort, { once: true });
  let idle = false;
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      idle = true;
      void reader.cancel().catch(() => {});
    }, idleMs);
  };
  arm();
  const dec = new TextDecoder();
  let buf = "";
  let type = "";
  let data: string[] = [];
  const line = (l: string) => {
    if (l === "") {
      if (data.length > 0) onEvent(type || "message", data.join("\n"));
      type = "";
      data = [];
      return;
    }
    if (l.startsWith(":")) return;
    const colon = l.indexOf(":");
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? "" : l.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data.push(value);
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (idle) throw new NetworkError(`dynamerge: /v1/events: nothing received for ${idleMs} ms`);
      if (done) break;
      arm();
      buf += dec.decode(value, { stream: true });
      let at: number;
      while ((at = buf.search(/\r\n|\r|\n/)) >= 0) {
        // A lone \r at the end of the buffer may be the first half of \r\n.
        if (buf[at] === "\r" && at === buf.length - 1) break;
        const l = buf.slice(0, at);
        buf = buf.slice(at + (buf.startsWith("\r\n", at) ? 2 : 1));
        line(l);
      }
    }
  } finally {
    clearTimeout(watchdog);
    signal.removeEventListener("abort", onAbort);
    if (signal.aborted) throw signal.reason ?? new DOMException("aborted", "AbortError");
  }
}
