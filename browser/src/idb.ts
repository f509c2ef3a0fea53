/**
 * The one place that turns IndexedDB's events into promises. Every request
 * of the library goes through {@link req} and every transaction is awaited
 * with {@link done}, so an error or an abort always rejects the caller
 * instead of leaving a promise pending forever (automerge-repo's
 * rejectOnFailure).
 */
import { DynamergeError } from "./errors.js";

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
/** META holds the feed cursor of each collection. */
export const META = "meta";

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
        records.createIndex("c", "c");
        // Only refused records have `e`, so this index lists just them.
        records.createIndex("e", "e");
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

/** keyRange returns the range of keys that start with `prefix` (for compound keys). */
export function prefixRange(...prefix: (string | number)[]): IDBKeyRange {
  // [] sorts after every number and string in IndexedDB's key order, so
  // [...prefix, []] bounds every key that extends the prefix.
  return IDBKeyRange.bound(prefix, [...prefix, []]);
}
