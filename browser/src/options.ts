/**
 * Options: {@link resolveOptions} turns the app's all-optional
 * {@link OpenOptions} into {@link Settings}, once, when the database opens.
 * Every default lives in {@link DEFAULTS}; nothing else reads `OpenOptions`.
 */
import { DynamergeError } from "./errors.js";
import type { LockManagerLike, OpenOptions, Token } from "./types.js";

/** DEFAULTS are the settings of an `open` that leaves them out (types.ts documents each). */
export const DEFAULTS = {
  name: "dynamerge",
  sync: true,
  live: true,
  maxLoadedDocs: 64,
  compactAfter: 32,
  retryInitialMs: 500,
  retryMaxMs: 30_000,
  feedIntervalMs: 60_000,
  batchDocs: 100,
  batchBytes: 4 << 20,
  requestTimeoutMs: 30_000,
  wasmPreload: true,
  /** Delay that gathers local changes made together into one request (not an option). */
  debounceMs: 10,
} as const;

/** Settings are the resolved options of one open database: every field set. */
export interface Settings {
  /** The IndexedDB database name, which also names the tabs' lock and channel. */
  name: string;
  /** The server's base URL, or undefined when opened with `sync: false`. */
  url: string | undefined;
  token: Token | undefined;
  indexedDB: IDBFactory;
  /** The Web Locks implementation, or null where there is none (this instance then always syncs). */
  locks: LockManagerLike | null;
  fetch: typeof fetch;
  /** Where Automerge's WebAssembly comes from, or undefined for the file beside the bundle. */
  wasmUrl: string | URL | undefined;
  wasmPreload: boolean;
  live: boolean;
  maxLoadedDocs: number;
  compactAfter: number;
  retryInitialMs: number;
  retryMaxMs: number;
  feedIntervalMs: number;
  batchDocs: number;
  batchBytes: number;
  requestTimeoutMs: number;
  debounceMs: number;
}

/**
 * resolveOptions fills in the defaults and checks what can be checked
 * before anything is opened. It throws an `invalid_argument` error when
 * there is no IndexedDB, or no http(s) URL to sync with.
 */
export function resolveOptions(options: OpenOptions): Settings {
  const g = globalThis as {
    indexedDB?: IDBFactory;
    location?: Location;
    navigator?: { locks?: LockManagerLike };
  };
  const indexedDB = options.indexedDB ?? g.indexedDB;
  if (!indexedDB) {
    throw new DynamergeError("invalid_argument", "dynamerge: no IndexedDB here; pass options.indexedDB");
  }
  let url: string | undefined;
  if (options.sync ?? DEFAULTS.sync) {
    url = options.url ?? g.location?.origin;
    if (url === undefined || url === "null") {
      throw new DynamergeError("invalid_argument", "dynamerge: no page origin to sync with; pass options.url");
    }
  }
  // A URL is checked even when it will not be used: a typo should not wait
  // for the day sync is switched on.
  const checked = options.url ?? url;
  if (checked !== undefined && !isHTTPURL(checked)) {
    throw new DynamergeError("invalid_argument", `dynamerge: url ${JSON.stringify(checked)} is not an http(s) URL`);
  }
  const wasmUrl = options.wasmUrl;
  if (wasmUrl !== undefined && typeof wasmUrl !== "string" && !(wasmUrl instanceof URL)) {
    throw new DynamergeError("invalid_argument", "dynamerge: wasmUrl must be a string or a URL");
  }
  return {
    name: options.name ?? DEFAULTS.name,
    url,
    token: options.token,
    indexedDB,
    locks: options.locks !== undefined ? options.locks : (g.navigator?.locks ?? null),
    fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    wasmUrl,
    wasmPreload: options.wasmPreload ?? DEFAULTS.wasmPreload,
    live: options.live ?? DEFAULTS.live,
    maxLoadedDocs: options.maxLoadedDocs ?? DEFAULTS.maxLoadedDocs,
    compactAfter: options.compactAfter ?? DEFAULTS.compactAfter,
    retryInitialMs: options.retryInitialMs ?? DEFAULTS.retryInitialMs,
    retryMaxMs: options.retryMaxMs ?? DEFAULTS.retryMaxMs,
    feedIntervalMs: options.feedIntervalMs ?? DEFAULTS.feedIntervalMs,
    batchDocs: options.batchDocs ?? DEFAULTS.batchDocs,
    batchBytes: options.batchBytes ?? DEFAULTS.batchBytes,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
    debounceMs: DEFAULTS.debounceMs,
  };
}

function isHTTPURL(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}
