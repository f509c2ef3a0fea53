/**
 * The database: {@link open}, and the object that wires one open database
 * together — its records (records.ts), collections (collections.ts), status
 * (status.ts), the other tabs (tabs.ts), the election of the tab that syncs
 * (leader.ts), and, in that tab, the sync loop (sync.ts).
 *
 * Every tab reads and writes IndexedDB itself (writes are transactions, so
 * tabs never clobber each other) and tells the others what it wrote, so
 * their views and subscriptions update at once.
 */
import { preloadAutomerge, setWasmSource } from "./automerge.js";
import { Collections } from "./collections.js";
import { ClosedError, DynamergeError, isDynamergeError } from "./errors.js";
import { Client, type HistoryWirePage } from "./http.js";
import { openDatabase } from "./idb.js";
import { Election } from "./leader.js";
import { Lookup } from "./lookup.js";
import { resolveOptions, type Settings } from "./options.js";
import { Records, type Write } from "./records.js";
import { report } from "./report.js";
import { StatusBoard } from "./status.js";
import { Syncer } from "./sync.js";
import { RemoteSyncs, Tabs, fromWire, serialize, toWire, type Message } from "./tabs.js";
import type { Collection, JSONObject, OpenOptions, Status, Unsubscribe } from "./types.js";

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

/**
 * open opens (creating if needed) the local database and starts syncing it
 * with the server. It works offline: nothing in it waits for the network,
 * nor for Automerge's WebAssembly, which loads when a change must be made
 * or merged (automerge.ts).
 */
export async function open(options: OpenOptions = {}): Promise<Database> {
  const settings = resolveOptions(options);
  setWasmSource(settings.wasmUrl);
  const idb = await openDatabase(settings.indexedDB, settings.name);
  const db = new DatabaseImpl(idb, settings);
  try {
    await db.init();
  } catch (err) {
    db.close();
    throw err;
  }
  if (settings.wasmPreload) preloadAutomerge();
  return db;
}

class DatabaseImpl implements Database {
  readonly records: Records;
  private readonly idb: IDBDatabase;
  private readonly settings: Settings;
  private readonly cols: Collections;
  private readonly board: StatusBoard;
  private readonly tabs: Tabs;
  private readonly remote = new RemoteSyncs();
  private readonly election: Election;
  // Aborts the lookups in flight at close.
  private readonly closing = new AbortController();
  private readonly lookups: Lookup | undefined;
  // Reads history pages for the collections (any tab, like lookups).
  private readonly api: Client | undefined;
  private syncer: Syncer | undefined;
  private closed = false;

  constructor(idb: IDBDatabase, settings: Settings) {
    this.idb = idb;
    this.settings = settings;
    this.records = new Records(idb, settings.maxLoadedDocs, settings.compactAfter);
    this.cols = new Collections(this);
    this.board = new StatusBoard(this.records, () => this.syncer !== undefined);
    this.election = new Election(settings.locks, settings.name);
    if (settings.url !== undefined) {
      this.api = this.client();
      this.lookups = new Lookup(
        {
          records: this.records,
          applied: (writes) => this.applied(writes, false),
          purge: (c, i, err) => this.purge(c, i, err),
          // After a failed exchange, lookups wait for the sync loop to
          // reach the server again instead of waiting out a timeout each.
          reachable: () => this.board.reachable(),
        },
        this.client(),
        this.closing.signal,
      );
    }
    this.tabs = new Tabs(settings.name, (m) => void this.onMessage(m));
  }

  async init(): Promise<void> {
    for (const c of await this.records.collections()) this.cols.follow(c);
    await this.board.load();
    if (this.settings.url !== undefined) this.election.start(() => this.lead());
    this.tabs.post({ t: "hello" });
  }

  private client(): Client {
    const s = this.settings;
    return new Client(s.url!, s.token, s.fetch, s.requestTimeoutMs);
  }

  // lead runs the sync loop: this tab holds the sync lock.
  private lead(): void {
    const s = this.settings;
    this.syncer = new Syncer(
      {
        records: this.records,
        collections: () => this.cols.followedNames(),
        applied: (writes) => this.applied(writes, false),
        purge: (c, i, err) => this.purge(c, i, err),
        report: (loop) => {
          this.board.setLoop(loop);
          this.tabs.post({ t: "status", s: toWire(loop) });
        },
      },
      this.client(),
      {
        batchDocs: s.batchDocs,
        batchBytes: s.batchBytes,
        retryInitialMs: s.retryInitialMs,
        retryMaxMs: s.retryMaxMs,
        feedIntervalMs: s.feedIntervalMs,
        live: s.live,
        debounceMs: s.debounceMs,
      },
    );
    this.syncer.start();
    this.board.publish();
  }

  get status(): Status {
    return this.board.status;
  }

  onStatus(fn: (s: Status) => void): Unsubscribe {
    return this.board.onStatus(fn);
  }

  collection<T extends JSONObject = JSONObject>(name: string): Collection<T> {
    this.check();
    const { col, created } = this.cols.get(name);
    if (created) void this.follow(col.name);
    return col as unknown as Collection<T>;
  }

  // follow remembers a collection the app opened, in IndexedDB and in the
  // other tabs, so that it is synced from now on.
  private async follow(c: string): Promise<void> {
    if (!this.cols.follow(c)) return;
    try {
      await this.records.addCollection(c);
    } catch (err) {
      report(err);
    }
    this.tabs.post({ t: "collection", c });
    this.syncer?.collectionsChanged();
  }

  async sync(): Promise<void> {
    this.check();
    if (this.settings.url === undefined) {
      throw new DynamergeError("invalid_argument", "dynamerge: opened with sync: false");
    }
    if (this.syncer) return this.syncer.syncNow();
    // Another tab syncs: ask it.
    return this.remote.run(
      (rid) => this.tabs.post({ t: "sync", rid }),
      () => this.syncer?.syncNow(),
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.syncer?.stop();
    this.closing.abort();
    this.election.close();
    this.board.close();
    this.tabs.close();
    this.remote.close();
    this.cols.close();
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

  /** history reads a page of a record's history from the server (undefined when opened with sync: false). */
  history(c: string, i: string, cursor: string, limit: number | undefined): Promise<HistoryWirePage> | undefined {
    const api = this.api;
    if (!api) return undefined;
    return api.history(c, i, cursor, limit, this.closing.signal).catch((err: unknown) => {
      // A token that expired: ask the token function once more, as sync does.
      if (isDynamergeError(err, "unauthorized") && api.refreshToken()) return api.history(c, i, cursor, limit, this.closing.signal);
      throw err;
    });
  }

  // purge drops a purged record and tells this tab's views and the other
  // tabs; true when local changes were lost with it.
  private async purge(c: string, i: string, err: DynamergeError): Promise<boolean> {
    const { existed, report } = await this.records.purge(c, i, err.toJSON());
    if (existed) {
      this.cols.remove(c, i);
      this.tabs.post({ t: "rows", keys: [[c, i]], local: false });
      this.board.recount(true);
    }
    return report !== undefined;
  }

  /** localWrite is called after a local change is durable. */
  localWrite(w: Write): void {
    // Counted now, so that status.pending is right when create/change
    // resolve; the recount confirms it from IndexedDB (other tabs write too).
    this.board.localWrite();
    this.applied([w], true);
    this.syncer?.changed();
  }

  // applied updates this tab's views and tells the other tabs.
  private applied(writes: Write[], local: boolean): void {
    for (const w of writes) this.cols.put(w.row);
    this.tabs.post({ t: "rows", keys: writes.map((w) => [w.row.collection, w.row.id]), local });
    this.board.recount(writes.some((w) => w.row.error !== undefined) || this.board.hasRejected());
  }

  private async onMessage(m: Message): Promise<void> {
    if (this.closed) return;
    try {
      switch (m.t) {
        case "rows": {
          for (const [c, i] of m.keys) this.records.forget(c, i);
          const rows = await this.records.rowsByKey(m.keys);
          for (const r of rows) this.cols.put(r);
          // A key without a row is a record another tab purged.
          const found = new Set(rows.map((r) => `${r.collection}/${r.id}`));
          for (const [c, i] of m.keys) if (!found.has(`${c}/${i}`)) this.cols.remove(c, i);
          this.board.recount(true);
          if (m.local) this.syncer?.changed();
          break;
        }
        case "status":
          if (!this.syncer) this.board.setLoop(fromWire(m.s));
          break;
        case "hello":
          if (this.syncer) this.tabs.post({ t: "status", s: toWire(this.board.loop) });
          break;
        case "collection":
          if (this.cols.follow(m.c)) this.syncer?.collectionsChanged();
          break;
        case "sync":
          this.syncer?.syncNow().then(
            () => this.tabs.post({ t: "synced", rid: m.rid }),
            (err: unknown) => this.tabs.post({ t: "synced", rid: m.rid, error: serialize(err) }),
          );
          break;
        case "synced":
          this.remote.answer(m.rid, m.error);
          break;
      }
    } catch (err) {
      report(err);
    }
  }
}
