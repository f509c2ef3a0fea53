/**
 * The storage boundary: the schema of the IndexedDB database, the one place
 * that turns IndexedDB's events into promises, and the one place that knows
 * how rows are laid out on disk.
 *
 * Every request of the library goes through {@link req} and every
 * transaction is awaited with {@link done}, so an error or an abort always
 * rejects the caller instead of leaving a promise pending forever
 * (automerge-repo's rejectOnFailure).
 *
 * Rows are stored with short keys (`c`, `i`, `v`, ...: every record's row
 * repeats them, and databases written since schema version 1 hold them).
 * The rest of the library sees only the named rows below; the `to…` and
 * `from…` functions translate, and nothing else reads a stored key.
 */
import { DynamergeError, type SerializedError } from "./errors.js";
import type { Heads, JSONObject } from "./types.js";

/** req resolves with the request's result, or rejects on its error. */
export function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(storageError("request failed", r.error));
  });
}

/**
 * done resolves when the transaction commits, and rejects when it fails or
 * aborts: a write is durable (as far as IndexedDB promises) only after this.
 */
export function done(tx: IDBTransaction): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(storageError("transaction failed", tx.error));
    tx.onabort = () => reject(storageError("transaction aborted", tx.error));
  });
}

/** Object store names and the schema version they belong to. */
export const SCHEMA_VERSION = 1;
/** RECORDS holds one {@link RecordRow} per record: its JSON view and sync state. */
export const RECORDS = "records";
/** CHUNKS holds the Automerge bytes of each record: a snapshot, then incremental chunks. */
export const CHUNKS = "chunks";
/** OUTBOX holds every local change not yet acknowledged, keyed by record and change hash. */
export const OUTBOX = "outbox";
/** META holds the feed cursor of each collection and the reports of purged records. */
export const META = "meta";
/** BY_COLLECTION is the index of {@link RECORDS} by collection. */
export const BY_COLLECTION = "c";
/** REFUSED is the index of {@link RECORDS} that lists only refused records. */
export const REFUSED = "e";

/**
 * openDatabase opens (creating or upgrading) the library's IndexedDB
 * database. A `blocked` upgrade (another tab holds an older version open)
 * is reported instead of hanging.
 */
export function openDatabase(factory: IDBFactory, name: string): Promise<IDBDatabase> {
  return new Promise<IDBDatabase>((resolve, reject) => {
    const r = factory.open(name, SCHEMA_VERSION);
    r.onupgradeneeded = () => {
      const db = r.result;
      if (!db.objectStoreNames.contains(RECORDS)) {
        const records = db.createObjectStore(RECORDS, { keyPath: ["c", "i"] });
        records.createIndex(BY_COLLECTION, "c");
        // Only refused records have `e`, so this index lists just them.
        records.createIndex(REFUSED, "e");
      }
      if (!db.objectStoreNames.contains(CHUNKS)) {
        db.createObjectStore(CHUNKS, { keyPath: ["c", "i", "n"] });
      }
      if (!db.objectStoreNames.contains(OUTBOX)) {
        const outbox = db.createObjectStore(OUTBOX, { keyPath: ["c", "i", "h"] });
        outbox.createIndex("ci", ["c", "i"]);
      }
      if (!db.objectStoreNames.contains(META)) {
        db.createObjectStore(META, { keyPath: "k" });
      }
    };
    r.onsuccess = () => {
      const db = r.result;
      // Another tab upgrading the schema must not wait for us forever.
      db.onversionchange = () => db.close();
      resolve(db);
    };
    r.onerror = () => reject(storageError(`open ${name}`, r.error));
    r.onblocked = () =>
      reject(storageError(`open ${name}: blocked by another tab holding an older version open`, null));
  });
}

function storageError(what: string, cause: DOMException | null): DynamergeError {
  const msg = cause ? `${cause.name}: ${cause.message}` : "unknown error";
  return new DynamergeError("internal", `dynamerge: indexeddb ${what}: ${msg}`, { cause });
}

/** prefixRange returns the range of keys that start with `prefix` (for compound keys). */
export function prefixRange(...prefix: (string | number)[]): IDBKeyRange {
  // [] sorts after every number and string in IndexedDB's key order, so
  // [...prefix, []] bounds every key that extends the prefix.
  return IDBKeyRange.bound(prefix, [...prefix, []]);
}

// Rows, as the library sees them.

/** RecordRow is the `records` row of one record: its JSON view and sync state. */
export interface RecordRow {
  collection: string;
  id: string;
  /** The JSON view of the document at `heads` (without reserved keys). */
  json: JSONObject;
  /** Local heads. */
  heads: Heads;
  /** The server's heads as last confirmed by a sync answer (all present locally). */
  server: Heads;
  /** Write counter: bumped by every transaction that changes the record. */
  version: number;
  /** Key of the next chunk. */
  nextChunk: number;
  /** Chunks written since the last snapshot. */
  chunks: number;
  /** Next outbox sequence number (keeps changes in the order they were made). */
  nextOutbox: number;
  /** The server's last refusal of this record's changes, if any. */
  error?: SerializedError | undefined;
  /** Whether the record is deleted (its root `$deleted` is true). */
  deleted: boolean;
  /** Last local or remote write, ms since the epoch. */
  at: number;
}

/** ChunkRow is one `chunks` row: a snapshot (`snap`) or incremental changes. */
export interface ChunkRow {
  collection: string;
  id: string;
  /** Position among the record's chunks (the snapshot comes first). */
  seq: number;
  snap: boolean;
  bytes: Uint8Array;
}

/** OutboxRow is one unacknowledged local change. */
export interface OutboxRow {
  collection: string;
  id: string;
  /** The change's hash (hex). */
  hash: string;
  /** Order among the record's local changes. */
  seq: number;
  /** The change chunk. */
  bytes: Uint8Array;
}

/**
 * PurgeReport is the `meta` row that stands for a purged record whose local
 * changes never reached the server.
 */
export interface PurgeReport {
  collection: string;
  id: string;
  /** The server's `gone` (or the feed's purge) as an error. */
  error: SerializedError;
  /** How many local changes were lost. */
  unsent: number;
  /** The record's last JSON view here. */
  json: JSONObject;
  /** When it was purged here, ms since the epoch. */
  at: number;
}

/** CursorRow is the `meta` row of a followed collection: its feed cursor ("" before the first page). */
export interface CursorRow {
  collection: string;
  cursor: string;
}

// Rows, as IndexedDB holds them.

interface StoredRecord {
  c: string;
  i: string;
  json: JSONObject;
  heads: Heads;
  server: Heads;
  v: number;
  n: number;
  chunks: number;
  o: number;
  error?: SerializedError;
  /** 1 while `error` is set: the key of the {@link REFUSED} index. */
  e?: 1;
  /** 1 while the record is deleted. */
  d?: 1;
  at: number;
}

interface StoredChunk {
  c: string;
  i: string;
  n: number;
  snap: boolean;
  bytes: Uint8Array;
}

interface StoredOutbox {
  c: string;
  i: string;
  h: string;
  o: number;
  bytes: Uint8Array;
}

interface StoredPurgeReport {
  k: string;
  c: string;
  i: string;
  error: SerializedError;
  unsent: number;
  json: JSONObject;
  at: number;
}

interface StoredCursor {
  k: string;
  c: string;
  cursor: string;
}

/** toRecord is the stored form of a {@link RecordRow}. */
export function toRecord(r: RecordRow): unknown {
  const s: StoredRecord = {
    c: r.collection,
    i: r.id,
    json: r.json,
    heads: r.heads,
    server: r.server,
    v: r.version,
    n: r.nextChunk,
    chunks: r.chunks,
    o: r.nextOutbox,
    at: r.at,
  };
  if (r.error) {
    s.error = r.error;
    s.e = 1;
  }
  if (r.deleted) s.d = 1;
  return s;
}

/** fromRecord reads a stored `records` row (undefined stays undefined). */
export function fromRecord(v: unknown): RecordRow | undefined {
  if (v === undefined) return undefined;
  const s = v as StoredRecord;
  return {
    collection: s.c,
    id: s.i,
    json: s.json,
    heads: s.heads,
    server: s.server,
    version: s.v,
    nextChunk: s.n,
    chunks: s.chunks,
    nextOutbox: s.o,
    error: s.error,
    deleted: s.d === 1,
    at: s.at,
  };
}

/** fromRecords reads stored `records` rows. */
export function fromRecords(v: unknown[]): RecordRow[] {
  return v.map((r) => fromRecord(r)!);
}

/** toChunk is the stored form of a {@link ChunkRow}. */
export function toChunk(r: ChunkRow): unknown {
  const s: StoredChunk = { c: r.collection, i: r.id, n: r.seq, snap: r.snap, bytes: r.bytes };
  return s;
}

/** fromChunks reads stored `chunks` rows. */
export function fromChunks(v: unknown[]): ChunkRow[] {
  return (v as StoredChunk[]).map((s) => ({ collection: s.c, id: s.i, seq: s.n, snap: s.snap, bytes: s.bytes }));
}

/** toOutbox is the stored form of an {@link OutboxRow}. */
export function toOutbox(r: OutboxRow): unknown {
  const s: StoredOutbox = { c: r.collection, i: r.id, h: r.hash, o: r.seq, bytes: r.bytes };
  return s;
}

/** fromOutbox reads stored `outbox` rows. */
export function fromOutbox(v: unknown[]): OutboxRow[] {
  return (v as StoredOutbox[]).map((s) => ({ collection: s.c, id: s.i, hash: s.h, seq: s.o, bytes: s.bytes }));
}

/** outboxKey is the key of one outbox row. */
export function outboxKey(collection: string, id: string, hash: string): IDBValidKey {
  return [collection, id, hash];
}

/** recordOfOutboxKey is the record an outbox key belongs to. */
export function recordOfOutboxKey(k: IDBValidKey): [string, string] {
  const [c, i] = k as [string, string, string];
  return [c, i];
}

/** purgedKey is the `meta` key of a record's {@link PurgeReport}. */
export function purgedKey(collection: string, id: string): string {
  // Collection names cannot hold "/", so the key is unambiguous.
  return `purged:${collection}/${id}`;
}

/** purgedRange is the range of every {@link PurgeReport} key. */
export function purgedRange(): IDBKeyRange {
  return IDBKeyRange.bound("purged:", "purged:\uffff");
}

/** toPurgeReport is the stored form of a {@link PurgeReport}. */
export function toPurgeReport(r: PurgeReport): unknown {
  const s: StoredPurgeReport = {
    k: purgedKey(r.collection, r.id),
    c: r.collection,
    i: r.id,
    error: r.error,
    unsent: r.unsent,
    json: r.json,
    at: r.at,
  };
  return s;
}

/** fromPurgeReports reads stored purge reports. */
export function fromPurgeReports(v: unknown[]): PurgeReport[] {
  return (v as StoredPurgeReport[]).map((s) => ({
    collection: s.c,
    id: s.i,
    error: s.error,
    unsent: s.unsent,
    json: s.json,
    at: s.at,
  }));
}

/** cursorKey is the `meta` key of a collection's {@link CursorRow}. */
export function cursorKey(collection: string): string {
  return `cursor:${collection}`;
}

/** cursorRange is the range of every {@link CursorRow} key. */
export function cursorRange(): IDBKeyRange {
  return IDBKeyRange.bound("cursor:", "cursor:\uffff");
}

/** toCursor is the stored form of a {@link CursorRow}. */
export function toCursor(r: CursorRow): unknown {
  const s: StoredCursor = { k: cursorKey(r.collection), c: r.collection, cursor: r.cursor };
  return s;
}

/** fromCursor reads a stored cursor row (undefined stays undefined). */
export function fromCursor(v: unknown): CursorRow | undefined {
  if (v === undefined) return undefined;
  const s = v as StoredCursor;
  return { collection: s.c, cursor: s.cursor };
}
