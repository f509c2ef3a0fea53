/**
 * The sync loop of the one tab that talks to the server (the leader): it
 * pushes every dirty record and pulls every record known to have changed in
 * batched `POST /v1/sync` calls, follows the collection feeds and the live
 * `/v1/events` stream, and retries with backoff while the server cannot be
 * reached.
 */
import * as A from "@automerge/automerge/slim";
import { Backoff } from "./backoff.js";
import { DynamergeError, NetworkError, isDynamergeError, type SerializedError, toDynamergeError } from "./errors.js";
import type { ChangeEvent, Client, SyncDocRequest, SyncDocResponse } from "./http.js";
import { applicable, splitChunks } from "./inline.js";
import { base64, concat, fromBase64 } from "./plain.js";
import { key, type RecordRow, type Records, type Write } from "./records.js";
import type { Heads } from "./types.js";

/** Host is what the sync loop needs from the database that runs it. */
export interface Host {
  readonly records: Records;
  /** collections returns every collection the app uses. */
  collections(): string[];
  /** applied tells the app (and the other tabs) about records the loop wrote. */
  applied(writes: Write[]): void;
  /** report publishes the loop's part of the status. */
  report(s: LoopStatus): void;
  /**
   * purge drops a purged record here and tells the app; it resolves with
   * true when local changes were lost with it.
   */
  purge(c: string, i: string, err: DynamergeError): Promise<boolean>;
}

/** LoopStatus is the part of the status the sync loop owns. */
export interface LoopStatus {
  online: boolean;
  syncing: boolean;
  lastSyncAt: number | null;
  error: DynamergeError | null;
}

/** SyncerOptions are the resolved sync settings. */
export interface SyncerOptions {
  batchDocs: number;
  batchBytes: number;
  retryInitialMs: number;
  retryMaxMs: number;
  feedIntervalMs: number;
  live: boolean;
  /** Delay that gathers local changes made together into one request. */
  debounceMs: number;
}

/** Feed page size: big pages, since a page costs a request and each entry is small. */
const FEED_LIMIT = 500;
/**
 * Silence after which the event stream counts as dead: three of the
 * server's 15-second pings missed.
 */
const LIVE_IDLE_MS = 45_000;
/** How often one round retries `missing_deps` for a record before reporting it. */
const MISSING_DEPS_TRIES = 2;

/** RoundResult is what one sync round achieved. */
interface RoundResult {
  /** Records the server refused in this round. */
  rejected: DynamergeError[];
}

// Outgoing is one doc of a request, with what it carried.
interface Outgoing {
  req: SyncDocRequest;
  /** Outbox hashes the request carried (acknowledged by a clean answer). */
  hashes: string[];
  /** Whether the record was refused before and this is only a pull. */
  pullOnly: boolean;
  /** The pull announcement this request answers, if any. */
  pull: number | undefined;
  tries: number;
  size: number;
}

// Pull is a record to fetch from the server.
interface Pull {
  c: string;
  i: string;
  seq: number;
}

/** Syncer runs the sync loop until {@link stop}. */
export class Syncer {
  private readonly host: Host;
  private readonly client: Client;
  private readonly opts: SyncerOptions;
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private readonly liveBackoff: Backoff;
  // Records to pull: announced by events or the feed, not yet synced. The
  // number tells announcements apart: an answer to a request built before
  // the latest announcement does not settle it.
  private readonly pulls = new Map<string, Pull>();
  private pullSeq = 0;
  // Records whose answer claimed heads we could not reach: the next pull
  // asks for the whole history.
  private readonly fullPull = new Set<string>();
  private feedDue = true;
  // The first round (and every explicit sync) retries refused records too.
  private forceNext = true;
  private wanted = false;
  private loop: Promise<void> | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private debounceTimer: ReturnType<typeof setTimeout> | undefined;
  private feedTimer: ReturnType<typeof setInterval> | undefined;
  private liveCtl: AbortController | undefined;
  private wakeLive: (() => void) | undefined;
  private stopped = false;
  private readonly state: LoopStatus = { online: false, syncing: false, lastSyncAt: null, error: null };
  private readonly onOnline = () => this.kick();

  constructor(host: Host, client: Client, opts: SyncerOptions) {
    this.host = host;
    this.client = client;
    this.opts = opts;
    this.backoff = new Backoff(opts.retryInitialMs, opts.retryMaxMs);
    this.liveBackoff = new Backoff(opts.retryInitialMs, opts.retryMaxMs);
  }

  /** start begins syncing: a first round, the feed timer, the live stream. */
  start(): void {
    this.feedTimer = setInterval(() => {
      this.feedDue = true;
      this.trigger();
    }, this.opts.feedIntervalMs);
    // The browser's online event is only a hint to retry now; whether the
    // server is reachable is decided by requests, never by navigator.onLine.
    globalThis.addEventListener?.("online", this.onOnline);
    this.trigger();
    if (this.opts.live) void this.liveLoop();
  }

  /** stop ends every request and timer; the loop's promises settle quietly. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort(new DynamergeError("closed", "dynamerge: database is closed"));
    this.liveCtl?.abort();
    this.wakeLive?.();
    clearInterval(this.feedTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.debounceTimer);
    globalThis.removeEventListener?.("online", this.onOnline);
  }

  /** collectionsChanged reconnects the live stream with the new set of collections. */
  collectionsChanged(): void {
    this.feedDue = true;
    this.liveCtl?.abort();
    this.wakeLive?.();
    this.trigger();
  }

  /** kick retries now: the network may be back. */
  kick(): void {
    this.backoff.reset();
    this.liveBackoff.reset();
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.wakeLive?.();
    this.trigger();
  }

  /** changed schedules a round soon, gathering changes made together into one request. */
  changed(): void {
    if (this.stopped || this.debounceTimer !== undefined) return;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      this.trigger();
    }, this.opts.debounceMs);
  }

  /** trigger asks for a round; rounds coalesce, and a pending retry delay is respected. */
  trigger(): void {
    if (this.stopped) return;
    this.wanted = true;
    if (this.loop || this.retryTimer !== undefined) return;
    this.loop = this.runLoop().finally(() => (this.loop = undefined));
  }

  /**
   * syncNow runs a round that also retries refused records, and resolves
   * when it brought every local change to the server. It rejects with the
   * round's error, or with the first refusal.
   */
  async syncNow(): Promise<void> {
    if (this.stopped) throw new DynamergeError("closed", "dynamerge: database is closed");
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.feedDue = true;
    let res: RoundResult;
    try {
      // The feeds are read even when a round that was running meanwhile
      // read them: sync() promises what the server had when it was called.
      res = await this.exclusive(() => this.round(true, true));
    } catch (err) {
      this.failed(err);
      throw err;
    }
    this.succeeded(res);
    if (res.rejected.length > 0) throw res.rejected[0];
  }

  private async runLoop(): Promise<void> {
    while (this.wanted && !this.stopped) {
      this.wanted = false;
      const force = this.forceNext;
      try {
        const res = await this.exclusive(() => this.round(force));
        this.forceNext = false;
        this.succeeded(res);
      } catch (err) {
        if (this.stopped) return;
        this.failed(err);
        return;
      }
    }
  }

  private succeeded(res: RoundResult): void {
    this.backoff.reset();
    this.state.online = true;
    this.state.lastSyncAt = Date.now();
    this.state.error = res.rejected[0] ?? null;
    this.host.report({ ...this.state });
  }

  // failed records the error and schedules the retry.
  private failed(err: unknown): void {
    if (this.stopped) return;
    const e = asError(err);
    if (e.code === "network") this.state.online = false;
    else this.state.online = e.status !== undefined;
    this.state.error = e;
    this.host.report({ ...this.state });
    const delay = this.backoff.next(e.retryAfterMs);
    if (e.code === "unauthorized") this.client.refreshToken();
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.trigger();
    }, delay);
  }

  // exclusive runs rounds one at a time.
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }

  private async round(force: boolean, feeds = false): Promise<RoundResult> {
    this.state.syncing = true;
    this.host.report({ ...this.state });
    try {
      return await this.roundNow(force, feeds);
    } finally {
      this.state.syncing = false;
      this.host.report({ ...this.state });
    }
  }

  private async roundNow(force: boolean, feeds: boolean): Promise<RoundResult> {
    const records = this.host.records;
    const rejected: DynamergeError[] = [];
    const cursors = feeds || this.feedDue ? await this.readFeeds(rejected) : new Map<string, string>();
    const dirty = await records.dirty();
    const keys = new Map<string, [string, string]>();
    for (const k of dirty) keys.set(key(...k), k);
    for (const [k, v] of this.pulls) keys.set(k, [v.c, v.i]);
    const known = new Set(this.host.collections());
    const rows = new Map<string, RecordRow>();
    for (const r of await records.rowsByKey([...keys.values()])) rows.set(key(r.collection, r.id), r);
    const out: Outgoing[] = [];
    for (const [k, [c, i]] of keys) {
      if (!known.has(c)) continue;
      out.push(await this.outgoing(c, i, rows.get(k), force));
    }
    await this.sendAll(out, rejected);
    for (const [c, cur] of cursors) await records.setCursor(c, cur);
    if (cursors.size > 0) this.feedDue = false;
    return { rejected };
  }

  // outgoing builds one doc of a request from the record's state.
  private async outgoing(c: string, i: string, row: RecordRow | undefined, force: boolean): Promise<Outgoing> {
    const k = key(c, i);
    const have = row && !this.fullPull.has(k) ? row.server : [];
    const pullOnly = !!row?.error && !force;
    const req: SyncDocRequest = { collection: c, id: i, have };
    const hashes: string[] = [];
    if (row && !pullOnly) {
      const ob = await this.host.records.outbox(c, i);
      if (ob.length > 0) {
        req.changes = base64(concat(ob.map((o) => o.bytes)));
        for (const o of ob) hashes.push(o.hash);
      }
    }
    const pull = this.pulls.get(k)?.seq;
    return { req, hashes, pullOnly, pull, tries: 0, size: 200 + (req.changes?.length ?? 0) + 70 * have.length };
  }

  // pull asks for the record in the next round.
  private pull(c: string, i: string): void {
    this.pulls.set(key(c, i), { c, i, seq: ++this.pullSeq });
  }

  // settled drops the record's pull if the answer to `b` covers it.
  private settled(b: Outgoing): void {
    const k = key(b.req.collection, b.req.id);
    const p = this.pulls.get(k);
    if (p && b.pull !== undefined && p.seq <= b.pull) this.pulls.delete(k);
  }

  // sendAll sends the docs in batches bounded by count and size.
  private async sendAll(docs: Outgoing[], rejected: DynamergeError[]): Promise<void> {
    let batch: Outgoing[] = [];
    let size = 0;
    for (const d of docs) {
      if (batch.length > 0 && (batch.length >= this.opts.batchDocs || size + d.size > this.opts.batchBytes)) {
        await this.send(batch, rejected);
        batch = [];
        size = 0;
      }
      batch.push(d);
      size += d.size;
    }
    if (batch.length > 0) await this.send(batch, rejected);
  }

  private async send(batch: Outgoing[], rejected: DynamergeError[]): Promise<void> {
    let answers: SyncDocResponse[];
    try {
      answers = await this.client.sync(
        batch.map((b) => b.req),
        this.abort.signal,
      );
    } catch (err) {
      const e = asError(err);
      if (e.code === "unauthorized" && this.client.refreshToken() && !batch[0]!.tries) {
        // One retry with a fresh token from the app's token function.
        for (const b of batch) b.tries++;
        return this.send(batch, rejected);
      }
      // A request the server refuses as a whole (413, 400) may be refused
      // for one record only: halve the batch until the culprit is alone,
      // so it cannot hold back every other record.
      if (e.status === 400 || e.status === 413) {
        if (batch.length > 1) {
          const half = Math.ceil(batch.length / 2);
          await this.send(batch.slice(0, half), rejected);
          await this.send(batch.slice(half), rejected);
          return;
        }
        await this.refuse(batch[0]!, e, rejected);
        return;
      }
      throw e;
    }
    const again: Outgoing[] = [];
    const writes: Write[] = [];
    for (let n = 0; n < batch.length; n++) {
      const b = batch[n]!;
      const a = answers[n]!;
      if (!a.error) {
        const w = await this.accept(b, a, rejected);
        if (w) writes.push(w);
        continue;
      }
      const e = toDynamergeError({
        code: a.error.code as SerializedError["code"],
        message: `dynamerge: ${b.req.collection}/${b.req.id}: ${a.error.code}: ${a.error.message}`,
        collection: b.req.collection,
        id: b.req.id,
      });
      if (e.code === "gone") {
        // Purged on the server: nothing of this history will ever be
        // accepted, so the local copy goes, and lost changes are reported.
        this.settled(b);
        this.fullPull.delete(key(b.req.collection, b.req.id));
        if (await this.host.purge(b.req.collection, b.req.id, e)) rejected.push(e);
        continue;
      }
      if (e.code === "missing_deps" && b.tries < MISSING_DEPS_TRIES) {
        const retry = await this.resend(b, a.heads);
        if (retry) {
          again.push(retry);
          continue;
        }
      }
      await this.refuse(b, e, rejected);
    }
    if (writes.length > 0) this.host.applied(writes);
    if (again.length > 0) await this.sendAll(again, rejected);
  }

  // resend answers missing_deps: everything since where the server stands,
  // or the whole history when we do not know its heads.
  private async resend(b: Outgoing, serverHeads: Heads): Promise<Outgoing | undefined> {
    const { collection: c, id: i } = b.req;
    const got = await this.host.records.withDoc(c, i, (doc) => {
      const known = serverHeads.length > 0 && A.hasHeads(doc, serverHeads);
      return { known, changes: known ? A.getChangesSince(doc, serverHeads) : A.getAllChanges(doc) };
    });
    if (!got) return undefined;
    const { known, changes } = got;
    const req: SyncDocRequest = { collection: c, id: i, have: known ? serverHeads : [] };
    if (changes.length > 0) req.changes = base64(concat(changes));
    // Every outbox change is in the document, so the outbox hashes read
    // before are all in what we send.
    return { req, hashes: b.hashes, pullOnly: b.pullOnly, pull: b.pull, tries: b.tries + 1, size: 200 + (req.changes?.length ?? 0) };
  }

  // accept stores a clean answer: the server's changes, its heads, and the
  // acknowledgement of what the request carried.
  private async accept(b: Outgoing, a: SyncDocResponse, rejected: DynamergeError[]): Promise<Write | undefined> {
    const { collection: c, id: i } = b.req;
    const k = key(c, i);
    let bytes: Uint8Array;
    try {
      bytes = a.changes ? fromBase64(a.changes) : new Uint8Array();
    } catch {
      const e = new DynamergeError("bad_response", `dynamerge: ${c}/${i}: the server sent changes that are not base64`, {
        collection: c,
        id: i,
      });
      rejected.push(e);
      return undefined;
    }
    let unreachable = false;
    let w: Write;
    try {
      w = await this.host.records.update(c, i, (doc, row) => {
        if (!row && bytes.length === 0) return {};
        let next = doc;
        if (bytes.length > 0) {
          next = A.loadIncremental(doc ?? A.init<unknown>(), bytes);
          unreachable = !a.heads.every((h) => A.hasHeads(next!, [h]));
        }
        return {
          doc: next,
          acked: b.hashes,
          server: a.heads,
          // A pull of a refused record leaves the refusal in place.
          ...(b.pullOnly ? {} : { error: null }),
        };
        // Only an answer with changes needs the document loaded: an
        // acknowledgement touches the row and the outbox alone.
      }, bytes.length > 0);
    } catch (err) {
      if (isDynamergeError(err, "not_found")) {
        // Neither side has the record (a feed entry for a record created
        // empty and never written): nothing to store.
        this.settled(b);
        return undefined;
      }
      if (isDynamergeError(err)) throw err;
      // Automerge refused the server's bytes: keep the record as it is and
      // say so; the next round asks again.
      const e = new DynamergeError("bad_response", `dynamerge: ${c}/${i}: cannot apply the server's changes: ${String(err)}`, {
        collection: c,
        id: i,
        cause: err,
      });
      rejected.push(e);
      return undefined;
    }
    this.settled(b);
    if (unreachable && !this.fullPull.has(k)) {
      this.fullPull.add(k);
      this.pull(c, i);
      this.wanted = true;
    } else {
      this.fullPull.delete(k);
    }
    return w;
  }

  // refuse records the server's refusal on the record; its changes stay in
  // the outbox and the refusal shows in the status.
  private async refuse(b: Outgoing, err: DynamergeError, rejected: DynamergeError[]): Promise<void> {
    const { collection: c, id: i } = b.req;
    // A whole-request refusal of a one-doc batch is about that record: say which.
    const e = err.id === undefined ? toDynamergeError({ ...err.toJSON(), collection: c, id: i }) : err;
    rejected.push(e);
    this.settled(b);
    const row = await this.host.records.row(c, i);
    if (!row) return;
    const w = await this.host.records.update(c, i, () => ({ error: e.toJSON() }), false);
    this.host.applied([w]);
  }

  // readFeeds walks every collection's feed from its cursor and adds the
  // records whose heads we lack to the pulls (deleted ones only when held
  // here), and drops the purged ones. It returns the new cursors, stored
  // only once the pulls went through.
  private async readFeeds(rejected: DynamergeError[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const c of this.host.collections()) {
      let cursor = (await this.host.records.cursor(c)) ?? "";
      for (;;) {
        const page = await this.client.feed(c, cursor, FEED_LIMIT, this.abort.signal);
        const rows = await this.host.records.rowsByKey(page.docs.map((d) => [c, d.id] as [string, string]));
        const byID = new Map(rows.map((r) => [r.id, r]));
        for (const d of page.docs) {
          const row = byID.get(d.id);
          if (d.purged === true) {
            if (row) await this.purgeFromFeed(c, d.id, rejected);
            continue;
          }
          if (d.deleted === true && !row) continue;
          if (!lacks(row, d.heads)) continue;
          this.pull(c, d.id);
        }
        cursor = page.cursor;
        if (!page.more || page.docs.length === 0) break;
      }
      out.set(c, cursor);
    }
    return out;
  }

  private async purgeFromFeed(c: string, i: string, rejected: DynamergeError[]): Promise<void> {
    const e = toDynamergeError({ code: "gone", message: `dynamerge: ${c}/${i}: purged on the server`, collection: c, id: i });
    this.pulls.delete(key(c, i));
    if (await this.host.purge(c, i, e)) rejected.push(e);
  }

  private async liveLoop(): Promise<void> {
    while (!this.stopped) {
      const colls = this.host.collections();
      if (colls.length === 0) {
        await new Promise<void>((r) => (this.wakeLive = r));
        continue;
      }
      const ctl = new AbortController();
      this.liveCtl = ctl;
      try {
        await this.client.events(
          colls,
          LIVE_IDLE_MS,
          ctl.signal,
          () => {
            this.liveBackoff.reset();
            // Whatever happened while we were not listening shows in the
            // feed; and a reachable server is a reason to push now.
            this.feedDue = true;
            this.kick();
          },
          (ev) => void this.onEvent(ev),
        );
      } catch (err) {
        if (this.stopped) return;
        if (ctl.signal.aborted) continue; // collections changed
        const e = asError(err);
        if (e.code === "unauthorized") this.client.refreshToken();
        if (e.code === "network" && this.state.online) {
          this.state.online = false;
          this.host.report({ ...this.state });
        }
      }
      if (this.stopped) return;
      // The stream ended or failed: wait before reconnecting (an "online"
      // event or a new collection wakes us early).
      await new Promise<void>((r) => {
        const t = setTimeout(r, this.liveBackoff.next());
        this.wakeLive = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }

  private async onEvent(ev: ChangeEvent): Promise<void> {
    if (this.stopped || !this.host.collections().includes(ev.collection)) return;
    try {
      const row = await this.host.records.row(ev.collection, ev.id);
      // A record deleted before this device ever held it stays away.
      if (ev.deleted === true && !row) return;
      if (!lacks(row, ev.heads)) return;
      if (row && ev.changes && (await this.applyInline(ev))) return;
    } catch {
      // Cannot tell: pulling is always safe.
    }
    this.pull(ev.collection, ev.id);
    this.trigger();
  }

  // applyInline applies the changes an event carries, when the record holds
  // all their dependencies, and tells whether it did: then the event needs
  // no pull. Otherwise nothing is written and the caller pulls.
  private async applyInline(ev: ChangeEvent): Promise<boolean> {
    const chunks = splitChunks(fromBase64(ev.changes!));
    if (!chunks) return false;
    let applied = false;
    const w = await this.host.records.update(ev.collection, ev.id, (doc) => {
      if (!doc || !applicable(doc, chunks, ev.heads)) return {};
      applied = true;
      // Everything up to the event's heads is on the server, so they are
      // the server's heads to sync from, as after a pull.
      return { doc: A.loadIncremental(doc, concat(chunks)), server: ev.heads };
    });
    if (applied) this.host.applied([w]);
    return applied;
  }
}

// lacks tells whether the server's heads may hold changes we do not have.
function lacks(row: RecordRow | undefined, heads: Heads): boolean {
  if (!row) return heads.length > 0;
  return !heads.every((h) => row.heads.includes(h) || row.server.includes(h));
}

function asError(err: unknown): DynamergeError {
  if (err instanceof DynamergeError) return err;
  return new NetworkError(`dynamerge: ${String((err as Error)?.message ?? err)}`, { cause: err });
}
