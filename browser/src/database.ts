/**
 * The database: {@link open}, collections, status, and the coordination of
 * the tabs that share one IndexedDB database.
 *
 * Tabs: every tab reads and writes IndexedDB itself (writes are
 * transactions, so tabs never clobber each other), and tells the others
 * what it wrote on a BroadcastChannel, so their views and subscriptions
 * update at once. One tab, the holder of a Web Lock, runs the sync loop;
 * when it closes, the lock passes to another tab, which takes over.
 */
import * as A from "@automerge/automerge/slim";
import { automergeWasmBase64 } from "@automerge/automerge/automerge.wasm.base64";
import { CollectionImpl, deepFreeze } from "./collection.js";
import {
  ClosedError,
  DynamergeError,
  InvalidIdError,
  toDynamergeError,
  type SerializedError,
} from "./errors.js";
import { Client } from "./http.js";
import { openDatabase } from "./idb.js";
import { Lookup } from "./lookup.js";
import { Records, type RecordRow, type Write } from "./records.js";
import { report } from "./report.js";
import { Syncer, type LoopStatus } from "./sync.js";
import type {
  Collection,
  JSONObject,
  LockManagerLike,
  OpenOptions,
  RejectedRecord,
  Status,
  Unsubscribe,
} from "./types.js";

/** Default settings of {@link open}. */
const DEFAULTS = {
  name: "dynamerge",
  maxLoadedDocs: 64,
  compactAfter: 32,
  retryInitialMs: 500,
  retryMaxMs: 30_000,
  feedIntervalMs: 60_000,
  batchDocs: 100,
  batchBytes: 4 << 20,
  requestTimeoutMs: 30_000,
  debounceMs: 10,
} as const;

const collectionPattern = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Database is an open dynamerge database. Get one from {@link open}. */
export interface Database {
  /**
   * collection returns the collection of that name (the same object for
   * the same name). It throws an `invalid_id` error for a name outside
   * `^[a-z0-9][a-z0-9_-]{0,63}$`.
   */
  collection<T extends JSONObject = JSONObject>(name: string): Collection<T>;
  /**
   * sync resolves once every local change made before the call is
   * acknowledged by the server. It rejects with a typed error when the
   * server cannot be reached or refuses a record (the changes stay in the
   * outbox, and background sync keeps retrying). Refused records are
   * retried by every call.
   */
  sync(): Promise<void>;
  /** status is the current sync status (a new object after every change). */
  readonly status: Status;
  /** onStatus calls `fn` on every status change; it returns the unsubscribe function. */
  onStatus(fn: (s: Status) => void): Unsubscribe;
  /** close stops syncing and closes the database; later calls reject with a `closed` error. */
  close(): void;
}

let wasmReady: Promise<void> | undefined;

// initWasm compiles Automerge's WebAssembly once per page: asynchronously,
// because browsers refuse synchronous compilation of large modules on the
// main thread.
function initWasm(): Promise<void> {
  if (A.isWasmInitialized()) return Promise.resolve();
  wasmReady ??= A.initializeBase64Wasm(automergeWasmBase64);
  return wasmReady;
}

/**
 * open opens (creating if needed) the local database and starts syncing it
 * with the server. It works offline: nothing in it waits for the network.
 */
export async function open(options: OpenOptions = {}): Promise<Database> {
  await initWasm();
  const factory = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (!factory) {
    throw new DynamergeError("invalid_argument", "dynamerge: no IndexedDB here; pass options.indexedDB");
  }
  const wantSync = options.sync ?? true;
  let url = options.url;
  if (url === undefined && wantSync) {
    url = (globalThis as { location?: Location }).location?.origin;
    if (!url || url === "null") {
      throw new DynamergeError("invalid_argument", "dynamerge: no page origin to sync with; pass options.url");
    }
  }
  if (url !== undefined) {
    let u: URL | undefined;
    try {
      u = new URL(url);
    } catch {
      u = undefined;
    }
    if (!u || (u.protocol !== "http:" && u.protocol !== "https:")) {
      throw new DynamergeError("invalid_argument", `dynamerge: url ${JSON.stringify(url)} is not an http(s) URL`);
    }
  }
  const name = options.name ?? DEFAULTS.name;
  const idb = await openDatabase(factory, name);
  const db = new DatabaseImpl(idb, name, options, wantSync ? url : undefined);
  try {
    await db.init();
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

// Message is what tabs tell each other.
type Message =
  | { t: "rows"; from: string; keys: [string, string][]; local: boolean }
  | { t: "status"; from: string; s: WireStatus }
  | { t: "hello"; from: string }
  | { t: "collection"; from: string; c: string }
  | { t: "sync"; from: string; rid: string }
  | { t: "synced"; from: string; rid: string; error?: SerializedError };

interface WireStatus {
  online: boolean;
  syncing: boolean;
  lastSyncAt: number | null;
  error: SerializedError | null;
}

function isMessage(m: unknown): m is Message {
  return typeof m === "object" && m !== null && typeof (m as { t?: unknown }).t === "string" && typeof (m as { from?: unknown }).from === "string";
}

class DatabaseImpl implements Database {
  readonly records: Records;
  private readonly idb: IDBDatabase;
  private readonly name: string;
  private readonly opts: OpenOptions;
  private readonly url: string | undefined;
  private readonly tab = randomID();
  private readonly channel: BroadcastChannel | undefined;
  private readonly cols = new Map<string, CollectionImpl<JSONObject>>();
  private readonly known = new Set<string>();
  private readonly listeners = new Set<(s: Status) => void>();
  private readonly waiting = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  private readonly lockAbort = new AbortController();
  private releaseLock: (() => void) | undefined;
  private syncer: Syncer | undefined;
  private readonly lookups: Lookup | undefined;
  private loop: LoopStatus = { online: false, syncing: false, lastSyncAt: null, error: null };
  private pending = 0;
  private rejected: RejectedRecord[] = [];
  private current: Status;
  private closed = false;
  private counting = false;
  private countAgain = false;
  private recountRejected = false;

  constructor(idb: IDBDatabase, name: string, opts: OpenOptions, url: string | undefined) {
    this.idb = idb;
    this.name = name;
    this.opts = opts;
    this.url = url;
    this.records = new Records(idb, opts.maxLoadedDocs ?? DEFAULTS.maxLoadedDocs, opts.compactAfter ?? DEFAULTS.compactAfter);
    this.current = this.compose();
    if (url !== undefined) {
      this.lookups = new Lookup(
        {
          records: this.records,
          applied: (writes) => this.applied(writes, false),
          purge: (c, i, err) => this.purge(c, i, err),
          // After a failed exchange, lookups wait for the sync loop to
          // reach the server again instead of waiting out a timeout each.
          reachable: () => this.current.online || this.loop.error === null,
        },
        this.client(),
        this.lockAbort.signal,
      );
    }
    if (typeof BroadcastChannel === "function") {
      this.channel = new BroadcastChannel(`dynamerge:${name}`);
      this.channel.onmessage = (ev: MessageEvent) => {
        if (isMessage(ev.data) && ev.data.from !== this.tab) void this.onMessage(ev.data);
      };
    }
  }

  async init(): Promise<void> {
    for (const c of await this.records.collections()) this.known.add(c);
    this.pending = await this.records.pending();
    await this.refreshRejected(false);
    this.publish();
    if (this.url !== undefined) this.elect();
    this.post({ t: "hello", from: this.tab });
  }

  // elect waits for the sync lock; its holder syncs until it closes.
  private elect(): void {
    const locks: LockManagerLike | null | undefined =
      this.opts.locks !== undefined ? this.opts.locks : (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
    if (!locks) {
      // No Web Locks (Node, old browsers): this instance is the only one
      // that can sync, so it does.
      this.lead();
      return;
    }
    locks
      .request(`dynamerge:${this.name}:sync`, { mode: "exclusive", signal: this.lockAbort.signal }, () => {
        if (this.closed) return Promise.resolve();
        this.lead();
        return new Promise<void>((r) => (this.releaseLock = r));
      })
      .catch(() => {
        // Aborted by close() before the lock was granted.
      });
  }

  private client(): Client {
    return new Client(this.url!, this.opts.token, this.opts.fetch ?? globalThis.fetch.bind(globalThis), this.opts.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs);
  }

  private lead(): void {
    const client = this.client();
    this.syncer = new Syncer(
      {
        records: this.records,
        collections: () => [...this.known].sort(),
        applied: (writes) => this.applied(writes, false),
        purge: (c, i, err) => this.purge(c, i, err),
        report: (s) => {
          this.loop = s;
          this.publish();
          this.post({ t: "status", from: this.tab, s: wire(s) });
        },
      },
      client,
      {
        batchDocs: this.opts.batchDocs ?? DEFAULTS.batchDocs,
        batchBytes: this.opts.batchBytes ?? DEFAULTS.batchBytes,
        retryInitialMs: this.opts.retryInitialMs ?? DEFAULTS.retryInitialMs,
        retryMaxMs: this.opts.retryMaxMs ?? DEFAULTS.retryMaxMs,
        feedIntervalMs: this.opts.feedIntervalMs ?? DEFAULTS.feedIntervalMs,
        live: this.opts.live ?? true,
        debounceMs: DEFAULTS.debounceMs,
      },
    );
    this.syncer.start();
    this.publish();
  }

  get status(): Status {
    return this.current;
  }

  onStatus(fn: (s: Status) => void): Unsubscribe {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  collection<T extends JSONObject = JSONObject>(name: string): Collection<T> {
    this.check();
    if (typeof name !== "string" || !collectionPattern.test(name)) {
      throw new InvalidIdError(`dynamerge: collection name ${JSON.stringify(name)} does not match ${collectionPattern}`);
    }
    let col = this.cols.get(name);
    if (!col) {
      col = new CollectionImpl<JSONObject>(this, name);
      this.cols.set(name, col);
      void this.addCollection(name);
    }
    return col as unknown as Collection<T>;
  }

  private async addCollection(c: string): Promise<void> {
    if (this.known.has(c)) return;
    this.known.add(c);
    try {
      await this.records.addCollection(c);
    } catch (err) {
      report(err);
    }
    this.post({ t: "collection", from: this.tab, c });
    this.syncer?.collectionsChanged();
  }

  async sync(): Promise<void> {
    this.check();
    if (this.url === undefined) {
      throw new DynamergeError("invalid_argument", "dynamerge: opened with sync: false");
    }
    if (this.syncer) return this.syncer.syncNow();
    // Another tab syncs: ask it, and ask again while no answer comes (the
    // syncing tab may close and hand the lock to a tab that never heard us).
    const rid = randomID();
    return new Promise<void>((resolve, reject) => {
      const ask = () => {
        if (this.syncer) {
          clearInterval(timer);
          this.waiting.delete(rid);
          this.syncer.syncNow().then(resolve, reject);
          return;
        }
        this.post({ t: "sync", from: this.tab, rid });
      };
      const timer = setInterval(ask, 5000);
      this.waiting.set(rid, {
        resolve: () => {
          clearInterval(timer);
          resolve();
        },
        reject: (e) => {
          clearInterval(timer);
          reject(e);
        },
      });
      ask();
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.syncer?.stop();
    this.lockAbort.abort();
    this.releaseLock?.();
    this.channel?.close();
    for (const w of this.waiting.values()) w.reject(new ClosedError());
    this.waiting.clear();
    for (const c of this.cols.values()) c.closeAll();
    // IndexedDB finishes the transactions in flight before closing.
    this.idb.close();
  }

  check(): void {
    if (this.closed) throw new ClosedError();
  }

  /** lookup asks the server for a record this device does not hold (nothing when opened with sync: false). */
  lookup(c: string, i: string): Promise<void> {
    return this.lookups?.fetch(c, i) ?? Promise.resolve();
  }

  // purge drops a purged record and tells this tab's views and the other
  // tabs; true when local changes were lost with it.
  private async purge(c: string, i: string, err: DynamergeError): Promise<boolean> {
    const { existed, report } = await this.records.purge(c, i, err.toJSON());
    if (existed) {
      this.cols.get(c)?.remove(i);
      this.post({ t: "rows", from: this.tab, keys: [[c, i]], local: false });
      this.recount(true);
    }
    return report !== undefined;
  }

  /** localWrite is called after a local change is durable. */
  localWrite(w: Write): void {
    // Counted now, so that status.pending is right when create/change
    // resolve; recount() confirms it from IndexedDB (other tabs write too).
    this.pending++;
    this.publish();
    this.applied([w], true);
    this.syncer?.changed();
  }

  // applied updates this tab's views and tells the other tabs.
  private applied(writes: Write[], local: boolean): void {
    for (const w of writes) this.cols.get(w.row.collection)?.put(w.row);
    this.post({ t: "rows", from: this.tab, keys: writes.map((w) => [w.row.collection, w.row.id]), local });
    this.recount(writes.some((w) => w.row.error !== undefined) || this.rejected.length > 0);
  }

  private async onMessage(m: Message): Promise<void> {
    if (this.closed) return;
    try {
      switch (m.t) {
        case "rows": {
          for (const [c, i] of m.keys) this.records.forget(c, i);
          const rows = await this.records.rowsByKey(m.keys);
          for (const r of rows) this.cols.get(r.collection)?.put(r);
          // A key without a row is a record another tab purged.
          const found = new Set(rows.map((r) => `${r.collection}/${r.id}`));
          for (const [c, i] of m.keys) if (!found.has(`${c}/${i}`)) this.cols.get(c)?.remove(i);
          this.recount(true);
          if (m.local) this.syncer?.changed();
          break;
        }
        case "status":
          if (!this.syncer) {
            this.loop = { ...m.s, error: m.s.error ? toDynamergeError(m.s.error) : null };
            this.publish();
          }
          break;
        case "hello":
          if (this.syncer) this.post({ t: "status", from: this.tab, s: wire(this.loop) });
          break;
        case "collection":
          if (!this.known.has(m.c)) {
            this.known.add(m.c);
            this.syncer?.collectionsChanged();
          }
          break;
        case "sync":
          if (this.syncer) {
            this.syncer.syncNow().then(
              () => this.post({ t: "synced", from: this.tab, rid: m.rid }),
              (err: unknown) =>
                this.post({
                  t: "synced",
                  from: this.tab,
                  rid: m.rid,
                  error: err instanceof DynamergeError ? err.toJSON() : { code: "internal", message: String(err) },
                }),
            );
          }
          break;
        case "synced": {
          const w = this.waiting.get(m.rid);
          if (!w) break;
          this.waiting.delete(m.rid);
          if (m.error) w.reject(toDynamergeError(m.error));
          else w.resolve();
          break;
        }
      }
    } catch (err) {
      report(err);
    }
  }

  // recount refreshes the pending count (and the refusals) from IndexedDB.
  // Calls while a count is in flight are folded into one more count after
  // it: that count may have read before the latest write committed.
  private recount(rejectedToo: boolean): void {
    if (this.closed) return;
    this.recountRejected ||= rejectedToo;
    if (this.counting) {
      this.countAgain = true;
      return;
    }
    this.counting = true;
    void (async () => {
      try {
        do {
          this.countAgain = false;
          const rejected = this.recountRejected;
          this.recountRejected = false;
          this.pending = await this.records.pending();
          if (rejected) await this.refreshRejected(false);
          this.publish();
        } while (this.countAgain && !this.closed);
      } catch (err) {
        if (!this.closed) report(err);
      } finally {
        this.counting = false;
      }
    })();
  }

  private async refreshRejected(publish: boolean): Promise<void> {
    const rows = await this.records.rejected();
    const purged = await this.records.purgeReports();
    this.rejected = [
      ...rows.map((r: RecordRow): RejectedRecord => ({ collection: r.collection, id: r.id, error: toDynamergeError(r.error!) })),
      ...purged.map((p): RejectedRecord => ({ collection: p.collection, id: p.id, error: toDynamergeError(p.error), unsent: p.unsent, doc: deepFreeze(p.json) })),
    ];
    if (publish) this.publish();
  }

  private compose(): Status {
    return Object.freeze({
      online: this.loop.online,
      syncing: this.loop.syncing,
      pending: this.pending,
      lastSyncAt: this.loop.lastSyncAt,
      error: this.loop.error ?? this.rejected[0]?.error ?? null,
      rejected: this.rejected,
      leader: this.syncer !== undefined,
    });
  }

  private publish(): void {
    const next = this.compose();
    const prev = this.current;
    if (
      prev.online === next.online &&
      prev.syncing === next.syncing &&
      prev.pending === next.pending &&
      prev.lastSyncAt === next.lastSyncAt &&
      prev.error === next.error &&
      prev.rejected === next.rejected &&
      prev.leader === next.leader
    ) {
      return;
    }
    this.current = next;
    for (const fn of this.listeners) {
      try {
        fn(next);
      } catch (err) {
        report(err);
      }
    }
  }

  private post(m: Message): void {
    if (this.closed && m.t !== "rows") return;
    try {
      this.channel?.postMessage(m);
    } catch {
      // The channel is closed: this tab is closing.
    }
  }
}

function wire(s: LoopStatus): WireStatus {
  return { online: s.online, syncing: s.syncing, lastSyncAt: s.lastSyncAt, error: s.error ? s.error.toJSON() : null };
}

function randomID(): string {
  return crypto.randomUUID();
}
