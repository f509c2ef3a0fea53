/**
 * Records: the durable local state of every record, in IndexedDB, and the
 * bounded cache of loaded Automerge documents above it.
 *
 * Per record the database keeps:
 * - a {@link RecordRow} in `records`: the JSON view (what `get`/`list`
 *   render from, so opening the app never loads Automerge documents), the
 *   local heads, the server heads last confirmed, and the last refusal;
 * - its Automerge bytes in `chunks`: one snapshot, then one incremental
 *   chunk per write, folded into a new snapshot every `compactAfter` writes;
 * - every local change the server has not acknowledged in `outbox`, keyed by
 *   change hash.
 *
 * Every write is one readwrite transaction over those stores: IndexedDB
 * serialises transactions whose scopes overlap, across tabs too, so two
 * tabs writing one record each see the other's write (the row's `version` moved)
 * and merge it before adding their own. Nothing is acknowledged to the
 * caller before the transaction commits.
 */
import * as A from "@automerge/automerge/slim";
import {
  BY_COLLECTION,
  CHUNKS,
  META,
  OUTBOX,
  RECORDS,
  REFUSED,
  cursorKey,
  cursorRange,
  done,
  fromChunks,
  fromCursor,
  fromOutbox,
  fromPurgeReports,
  fromRecord,
  fromRecords,
  outboxKey,
  prefixRange,
  purgedKey,
  purgedRange,
  recordOfOutboxKey,
  req,
  toChunk,
  toCursor,
  toOutbox,
  toPurgeReport,
  toRecord,
  type OutboxRow,
  type PurgeReport,
  type RecordRow,
} from "./idb.js";
import { loadAutomerge } from "./automerge.js";
import { DynamergeError, type SerializedError } from "./errors.js";
import { concat, toPlain } from "./plain.js";
import { viewOf } from "./reserved.js";
import type { Heads, JSONObject } from "./types.js";

export type { OutboxRow, PurgeReport, RecordRow } from "./idb.js";

/** Write is the result of one record transaction, for notifying the rest of the app. */
export interface Write {
  row: RecordRow;
  /** Whether the document changed (its heads moved). */
  changed: boolean;
}

type Loaded = { doc: A.Doc<unknown>; version: number };

/** Records is the record store of one open database. */
export class Records {
  private readonly db: IDBDatabase;
  private readonly maxLoaded: number;
  private readonly compactAfter: number;
  // Insertion order of a Map is its LRU order: get() re-inserts.
  private readonly loaded = new Map<string, Loaded>();
  // Per-record queue of this tab's transactions, so they do not race each
  // other into reloading documents (IndexedDB would still keep them correct).
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(db: IDBDatabase, maxLoaded: number, compactAfter: number) {
    this.db = db;
    this.maxLoaded = Math.max(1, maxLoaded);
    this.compactAfter = Math.max(1, compactAfter);
  }

  /** loadedCount is how many Automerge documents are in memory (for tests and metrics). */
  get loadedCount(): number {
    return this.loaded.size;
  }

  /** row returns the record's row, or undefined when the record does not exist locally. */
  async row(c: string, i: string): Promise<RecordRow | undefined> {
    const tx = this.db.transaction(RECORDS, "readonly");
    return fromRecord(await req(tx.objectStore(RECORDS).get([c, i])));
  }

  /** rows returns every row of a collection, in id order. */
  async rows(c: string): Promise<RecordRow[]> {
    const tx = this.db.transaction(RECORDS, "readonly");
    return fromRecords(await req(tx.objectStore(RECORDS).index(BY_COLLECTION).getAll(c)));
  }

  /** rowsByKey returns the rows of the given records (missing ones left out). */
  async rowsByKey(keys: [string, string][]): Promise<RecordRow[]> {
    if (keys.length === 0) return [];
    const tx = this.db.transaction(RECORDS, "readonly");
    const store = tx.objectStore(RECORDS);
    const rows = await Promise.all(keys.map(async (k) => fromRecord(await req(store.get(k)))));
    return rows.filter((r): r is RecordRow => r !== undefined);
  }

  /** rejected returns every row that carries a refusal from the server. */
  async rejected(): Promise<RecordRow[]> {
    const tx = this.db.transaction(RECORDS, "readonly");
    return fromRecords(await req(tx.objectStore(RECORDS).index(REFUSED).getAll()));
  }

  /** pending counts the changes in the outbox (all records, all tabs). */
  async pending(): Promise<number> {
    const tx = this.db.transaction(OUTBOX, "readonly");
    return await req(tx.objectStore(OUTBOX).count());
  }

  /** dirty returns the keys of every record with unacknowledged changes. */
  async dirty(): Promise<[string, string][]> {
    const tx = this.db.transaction(OUTBOX, "readonly");
    const keys = await req(tx.objectStore(OUTBOX).getAllKeys());
    const out: [string, string][] = [];
    for (const [c, i] of keys.map(recordOfOutboxKey)) {
      const last = out[out.length - 1];
      if (!last || last[0] !== c || last[1] !== i) out.push([c, i]);
    }
    return out;
  }

  /** outbox returns the record's unacknowledged changes in the order they were made. */
  async outbox(c: string, i: string): Promise<OutboxRow[]> {
    const tx = this.db.transaction(OUTBOX, "readonly");
    const rows = fromOutbox(await req(tx.objectStore(OUTBOX).getAll(prefixRange(c, i))));
    return rows.sort((a, b) => a.seq - b.seq);
  }

  /**
   * withDoc runs `fn` on the record's Automerge document (loading it if
   * needed) and returns its result, or undefined when the record does not
   * exist. `fn` must be synchronous: it runs in the record's queue, so no
   * write of this tab can make the document outdated under it.
   */
  withDoc<T>(c: string, i: string, fn: (doc: A.Doc<unknown>) => T): Promise<T | undefined> {
    return this.queued(c, i, async () => {
      await loadAutomerge();
      const k = key(c, i);
      const tx = this.db.transaction([RECORDS, CHUNKS], "readonly");
      const row = fromRecord(await req(tx.objectStore(RECORDS).get([c, i])));
      if (!row) return undefined;
      const hit = this.loaded.get(k);
      let doc: A.Doc<unknown>;
      if (hit && hit.version === row.version) {
        this.touch(k, hit);
        doc = hit.doc;
      } else {
        doc = await this.read(tx, c, i);
        this.remember(k, { doc, version: row.version });
      }
      return fn(doc);
    });
  }

  // queued runs `op` after every earlier operation of this tab on the record.
  private queued<T>(c: string, i: string, op: () => Promise<T>): Promise<T> {
    const k = key(c, i);
    const prev = this.queues.get(k) ?? Promise.resolve();
    const run = prev.then(op, op);
    this.queues.set(k, run);
    void run
      .finally(() => {
        if (this.queues.get(k) === run) this.queues.delete(k);
      })
      .catch(() => {});
    return run;
  }

  /**
   * update runs `fn` on the record's current document inside one readwrite
   * transaction and stores what it returns: the new JSON view, a new chunk
   * with the changes since the old heads, and the outbox/server-heads edits.
   * `fn` gets undefined for a record that does not exist yet. It must be
   * synchronous (IndexedDB would commit the transaction under an await).
   * When `fn` throws, nothing is written and the error is rethrown.
   * With `load` false the document is neither read nor given to `fn`, and
   * Automerge need not be loaded: `fn` must not return one then.
   */
  update(
    c: string,
    i: string,
    fn: (doc: A.Doc<unknown> | undefined, row: RecordRow | undefined) => Edit,
    load = true,
  ): Promise<Write> {
    return this.queued(c, i, async () => {
      // Before the transaction: IndexedDB would commit it under this await.
      if (load) await loadAutomerge();
      return this.updateNow(c, i, fn, load);
    });
  }

  private async updateNow(
    c: string,
    i: string,
    fn: (doc: A.Doc<unknown> | undefined, row: RecordRow | undefined) => Edit,
    load: boolean,
  ): Promise<Write> {
    const k = key(c, i);
    const tx = this.db.transaction([RECORDS, CHUNKS, OUTBOX, META], "readwrite");
    const committed = done(tx);
    // A failing request rejects `committed` too; this keeps that rejection
    // from surfacing as unhandled when the request's own error is thrown.
    committed.catch(() => {});
    try {
      const records = tx.objectStore(RECORDS);
      const row = fromRecord(await req(records.get([c, i])));
      let doc: A.Doc<unknown> | undefined;
      if (row && load) {
        const hit = this.loaded.get(k);
        doc = hit && hit.version === row.version ? hit.doc : await this.read(tx, c, i);
      }
      const edit = fn(doc, row);
      const next = edit.doc ?? doc;
      if (!next && !row) throw new DynamergeError("not_found", `dynamerge: ${c}/${i} does not exist`, { collection: c, id: i });
      const oldHeads = row ? row.heads : [];
      const heads = next ? A.getHeads(next) : oldHeads;
      const changed = !sameHeads(oldHeads, heads);
      const now = Date.now();
      const out: RecordRow = row
        ? { ...row }
        : { collection: c, id: i, json: {}, heads: [], server: [], version: 0, nextChunk: 0, chunks: 0, nextOutbox: 0, deleted: false, at: now };
      if (changed && next) {
        const chunks = tx.objectStore(CHUNKS);
        if (!row || out.chunks + 1 >= this.compactAfter) {
          // The new snapshot replaces every older chunk in this same
          // transaction, so a crash leaves either the old chunks or the
          // snapshot, never neither.
          chunks.put(toChunk({ collection: c, id: i, seq: out.nextChunk, snap: true, bytes: A.save(next) }));
          if (row) chunks.delete(IDBKeyRange.bound([c, i, -Infinity], [c, i, out.nextChunk], false, true));
          out.chunks = 0;
        } else {
          const delta = A.getChangesSince(next, oldHeads);
          chunks.put(toChunk({ collection: c, id: i, seq: out.nextChunk, snap: false, bytes: concat(delta) }));
          out.chunks++;
        }
        out.nextChunk++;
        out.heads = heads;
        const view = viewOf(toPlain(A.toJS(next)) as JSONObject);
        out.json = view.json;
        out.deleted = view.deleted;
        out.at = now;
      }
      const outbox = tx.objectStore(OUTBOX);
      for (const ch of edit.outbox ?? []) {
        outbox.put(toOutbox({ collection: c, id: i, hash: ch.hash, seq: out.nextOutbox++, bytes: ch.bytes }));
      }
      for (const h of edit.acked ?? []) outbox.delete(outboxKey(c, i, h));
      // Without the document loaded (an answer that brought no changes),
      // every head the server names is one we sent or had.
      if (edit.server) out.server = next ? edit.server.filter((h) => A.hasHeads(next, [h])) : edit.server.slice();
      if (edit.error) out.error = edit.error;
      else if (edit.error === null) delete out.error;
      const touched = changed || !!edit.outbox?.length || !!edit.acked?.length || !!edit.server || edit.error !== undefined;
      if (touched) {
        out.version = (row?.version ?? 0) + 1;
        records.put(toRecord(out));
        // A record of this id exists again: an old purge report is moot.
        if (!row) tx.objectStore(META).delete(purgedKey(c, i));
      }
      await committed;
      if (next) this.remember(k, { doc: next, version: out.version });
      else if (this.loaded.get(k)?.version === row?.version && row) {
        // The document did not change: the loaded copy is still current.
        const hit = this.loaded.get(k)!;
        this.loaded.set(k, { doc: hit.doc, version: out.version });
      }
      return { row: out, changed };
    } catch (err) {
      // The cached document may be the one a failed change or merge left
      // behind: reload it from IndexedDB next time.
      this.loaded.delete(k);
      try {
        tx.abort();
      } catch {
        // Already finished or aborted: nothing to undo.
      }
      throw err;
    }
  }

  /** read loads a record's document from its chunks inside `tx`. */
  private async read(tx: IDBTransaction, c: string, i: string): Promise<A.Doc<unknown>> {
    const rows = fromChunks(await req(tx.objectStore(CHUNKS).getAll(prefixRange(c, i))));
    if (rows.length === 0 || !rows[0]!.snap) {
      throw new DynamergeError("internal", `dynamerge: ${c}/${i}: stored chunks are missing their snapshot`, {
        collection: c,
        id: i,
      });
    }
    let doc = A.load<unknown>(rows[0]!.bytes);
    if (rows.length > 1) doc = A.loadIncremental(doc, concat(rows.slice(1).map((r) => r.bytes)));
    return doc;
  }

  /**
   * purge drops the record (its row, chunks and outbox) in one transaction,
   * after every earlier write of this tab to it. When it had unsent changes,
   * a {@link PurgeReport} is stored in their place: the app hears of them
   * through `status.rejected` until a record of that id exists again. It
   * returns the report, or undefined when nothing was lost (or there was no
   * record). Idempotent.
   */
  purge(c: string, i: string, error: SerializedError): Promise<{ existed: boolean; report: PurgeReport | undefined }> {
    return this.queued(c, i, async () => {
      const tx = this.db.transaction([RECORDS, CHUNKS, OUTBOX, META], "readwrite");
      const committed = done(tx);
      committed.catch(() => {});
      const row = fromRecord(await req(tx.objectStore(RECORDS).get([c, i])));
      const unsent = await req(tx.objectStore(OUTBOX).count(prefixRange(c, i)));
      let report: PurgeReport | undefined;
      if (row) {
        tx.objectStore(RECORDS).delete([c, i]);
        tx.objectStore(CHUNKS).delete(prefixRange(c, i));
        tx.objectStore(OUTBOX).delete(prefixRange(c, i));
        if (unsent > 0) {
          report = { collection: c, id: i, error, unsent, json: row.json, at: Date.now() };
          tx.objectStore(META).put(toPurgeReport(report));
        }
      }
      await committed;
      this.loaded.delete(key(c, i));
      return { existed: row !== undefined, report };
    });
  }

  /** purgeReports returns every stored {@link PurgeReport}. */
  async purgeReports(): Promise<PurgeReport[]> {
    const tx = this.db.transaction(META, "readonly");
    return fromPurgeReports(await req(tx.objectStore(META).getAll(purgedRange())));
  }

  /** forget drops a loaded document (another tab changed the record). */
  forget(c: string, i: string): void {
    this.loaded.delete(key(c, i));
  }

  private touch(k: string, l: Loaded): void {
    this.loaded.delete(k);
    this.loaded.set(k, l);
  }

  private remember(k: string, l: Loaded): void {
    const cur = this.loaded.get(k);
    if (cur && cur.version > l.version) return;
    this.touch(k, l);
    while (this.loaded.size > this.maxLoaded) {
      const oldest = this.loaded.keys().next().value as string;
      this.loaded.delete(oldest);
    }
  }

  /** cursor returns the collection's stored feed cursor ("" for none). */
  async cursor(c: string): Promise<string | undefined> {
    const tx = this.db.transaction(META, "readonly");
    return fromCursor(await req(tx.objectStore(META).get(cursorKey(c))))?.cursor;
  }

  /** setCursor stores the collection's feed cursor. */
  async setCursor(c: string, cursor: string): Promise<void> {
    const tx = this.db.transaction(META, "readwrite");
    tx.objectStore(META).put(toCursor({ collection: c, cursor }));
    await done(tx);
  }

  /** collections returns every collection that has a cursor row. */
  async collections(): Promise<string[]> {
    const tx = this.db.transaction(META, "readonly");
    const rows = await req(tx.objectStore(META).getAll(cursorRange()));
    return rows.map((r) => fromCursor(r)!.collection);
  }

  /** addCollection records that the app uses a collection (with no cursor yet). */
  async addCollection(c: string): Promise<void> {
    const tx = this.db.transaction(META, "readwrite");
    const store = tx.objectStore(META);
    const cur = await req(store.get(cursorKey(c)));
    if (!cur) store.put(toCursor({ collection: c, cursor: "" }));
    await done(tx);
  }
}

/** Edit is what an {@link Records.update} function asks to store. */
export interface Edit {
  /** The new document; undefined keeps the current one. */
  doc?: A.Doc<unknown> | undefined;
  /** Local changes to add to the outbox. */
  outbox?: { hash: string; bytes: Uint8Array }[];
  /** Outbox hashes the server acknowledged. */
  acked?: string[];
  /** The server's heads from a sync answer (only those present locally are kept). */
  server?: Heads;
  /** A refusal to record, or null to clear it; undefined leaves it. */
  error?: SerializedError | null;
}

/** key is the in-memory key of a record. */
export function key(c: string, i: string): string {
  return `${c}\u0000${i}`;
}

/** sameHeads tells whether two head sets are equal. */
export function sameHeads(a: Heads, b: Heads): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((h) => s.has(h));
}
