/**
 * External stores for useSyncExternalStore: one per collection and one per
 * record of an open database, shared by every component that reads them.
 * Their snapshots are stable: the same object until what they describe
 * changes, which is what keeps a component from re-rendering when another
 * record or another collection changes.
 */
import type { Collection, Database, Entry, JSONObject, Unsubscribe } from "../index.js";

/**
 * RecordState is what {@link useRecord} returns: `loading` while the
 * database opens, the collection is read, or a record this device has never
 * held is asked of the server; `ready` with the record; `missing` when
 * neither this device nor the server (when reachable) has it, or it is
 * deleted; `error` when asking for it failed.
 */
export type RecordState<T = JSONObject> =
  | { readonly status: "loading"; readonly doc: undefined }
  | { readonly status: "ready"; readonly doc: T }
  | { readonly status: "missing"; readonly doc: undefined }
  | { readonly status: "error"; readonly doc: undefined; readonly error: unknown };

/** LOADING and MISSING are shared, so that a snapshot stays the same object. */
export const LOADING: RecordState<never> = Object.freeze({ status: "loading", doc: undefined });
const MISSING: RecordState<never> = Object.freeze({ status: "missing", doc: undefined });

/** Store is what useSyncExternalStore takes. */
export interface Store<S> {
  subscribe(onChange: () => void): Unsubscribe;
  getSnapshot(): S;
}

/** Listeners calls every subscribed function; one that throws does not stop the others. */
class Listeners {
  private readonly fns = new Set<() => void>();
  get size(): number {
    return this.fns.size;
  }
  add(fn: () => void): void {
    this.fns.add(fn);
  }
  delete(fn: () => void): void {
    this.fns.delete(fn);
  }
  call(): void {
    for (const fn of this.fns) {
      try {
        fn();
      } catch (err) {
        // The same channel the library reports its listeners' errors on.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

/**
 * CollectionStore holds a collection's entries as its subscription last
 * delivered them (undefined before the first delivery). It subscribes to
 * the collection while anyone listens, once however many listen. The
 * library hands out the same array until the collection changes, and the
 * same frozen doc for a record until that record changes.
 */
export class CollectionStore<T extends JSONObject> implements Store<readonly Entry<T>[] | undefined> {
  readonly collection: Collection<T>;
  private entries: readonly Entry<T>[] | undefined;
  private readonly listeners = new Listeners();
  private unsubscribe: Unsubscribe | undefined;

  constructor(collection: Collection<T>) {
    this.collection = collection;
  }

  subscribe = (onChange: () => void): Unsubscribe => {
    this.listeners.add(onChange);
    this.unsubscribe ??= this.collection.subscribe((all) => {
      if (all === this.entries) return;
      this.entries = all;
      this.listeners.call();
    });
    return () => {
      this.listeners.delete(onChange);
      if (this.listeners.size === 0) {
        this.unsubscribe?.();
        this.unsubscribe = undefined;
      }
    };
  };

  getSnapshot = (): readonly Entry<T>[] | undefined => this.entries;

  /** find returns the record's entry in the current snapshot (entries are in id order). */
  find(id: string): Entry<T> | undefined {
    const all = this.entries;
    if (!all) return undefined;
    let lo = 0;
    let hi = all.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (all[mid]!.id < id) lo = mid + 1;
      else hi = mid;
    }
    return lo < all.length && all[lo]!.id === id ? all[lo] : undefined;
  }
}

/**
 * RecordStore derives one record's state from its collection's store, and
 * asks the server (through `collection.get`, which looks up a record this
 * device does not hold) when the collection does not have it. Its listeners
 * hear only of changes to this record.
 */
export class RecordStore<T extends JSONObject> implements Store<RecordState<T>> {
  private readonly col: CollectionStore<T>;
  private readonly id: string;
  private state: RecordState<T> = LOADING;
  // The collection snapshot `state` was computed from.
  private seen: readonly Entry<T>[] | undefined;
  // The lookup: none yet, in flight, or done (with what `get` returned, good
  // only until the collection's next snapshot, which will hold the record
  // if it still exists).
  private lookup: "none" | "pending" | "done" = "none";
  private fetched: { doc: T | undefined; at: readonly Entry<T>[] | undefined } | undefined;
  private failure: { error: unknown } | undefined;
  private readonly listeners = new Listeners();
  private unsubscribe: Unsubscribe | undefined;
  // Called once nobody has listened for a moment: forgets the store, so a
  // long session does not keep one per record it ever showed.
  private readonly idle: (store: RecordStore<T>) => void;

  constructor(col: CollectionStore<T>, id: string, idle: (store: RecordStore<T>) => void = () => {}) {
    this.col = col;
    this.id = id;
    this.idle = idle;
  }

  subscribe = (onChange: () => void): Unsubscribe => {
    this.listeners.add(onChange);
    if (!this.unsubscribe) {
      // A new first listener asks the server again for a record it lacks:
      // it may exist by now.
      if (this.lookup === "done") this.lookup = "none";
      this.unsubscribe = this.col.subscribe(() => this.update());
      this.update();
    }
    return () => {
      this.listeners.delete(onChange);
      if (this.listeners.size === 0) {
        this.unsubscribe?.();
        this.unsubscribe = undefined;
        // Not at once: React unsubscribes and subscribes again in one
        // commit (Strict Mode, a changed key), and the state is worth
        // keeping across that.
        setTimeout(() => {
          if (this.listeners.size === 0) this.idle(this);
        }, 0);
      }
    };
  };

  // getSnapshot never starts a lookup (it runs during render, also on a
  // server); it only recomputes from a newer collection snapshot.
  getSnapshot = (): RecordState<T> => {
    if (this.col.getSnapshot() !== this.seen) this.state = this.compute();
    return this.state;
  };

  // update runs on subscribe and on every collection change: it starts the
  // lookup a missing record needs, and tells the listeners when the record's
  // state changed.
  private update(): void {
    const entries = this.col.getSnapshot();
    if (entries !== undefined && this.lookup !== "pending") {
      // Held here: should it vanish later, it was deleted (or purged),
      // which the collection tells; the server need not be asked.
      if (this.col.find(this.id)) this.lookup = "done";
      else if (this.lookup === "none") this.startLookup();
    }
    const prev = this.state;
    this.state = this.compute();
    if (this.state !== prev) this.listeners.call();
  }

  private compute(): RecordState<T> {
    const entries = this.col.getSnapshot();
    this.seen = entries;
    const prev = this.state;
    if (entries === undefined) return LOADING;
    const doc = this.col.find(this.id)?.doc ?? (this.fetched?.at === entries ? this.fetched.doc : undefined);
    if (doc !== undefined) {
      return prev.status === "ready" && prev.doc === doc ? prev : Object.freeze({ status: "ready", doc });
    }
    if (this.failure) return prev.status === "error" ? prev : Object.freeze({ status: "error", doc: undefined, error: this.failure.error });
    if (this.lookup !== "done") return LOADING;
    return MISSING;
  }

  private startLookup(): void {
    this.lookup = "pending";
    this.failure = undefined;
    this.col.collection.get(this.id).then(
      (doc) => {
        this.lookup = "done";
        this.fetched = { doc, at: this.col.getSnapshot() };
        this.update();
      },
      (error: unknown) => {
        this.lookup = "done";
        this.failure = { error };
        this.update();
      },
    );
  }
}

/** StatusStore is the database's status: `db.status` is a new object only when it changed. */
class StatusStore {
  readonly subscribe: (onChange: () => void) => Unsubscribe;
  readonly getSnapshot: () => Database["status"];
  constructor(db: Database) {
    this.subscribe = (onChange) => db.onStatus(() => onChange());
    this.getSnapshot = () => db.status;
  }
}

// The stores of each open database, made on first use and dropped with the
// database object.
interface Stores {
  status: StatusStore;
  collections: Map<string, CollectionStore<JSONObject>>;
  records: Map<string, RecordStore<JSONObject>>;
}
const perDatabase = new WeakMap<Database, Stores>();

function storesOf(db: Database): Stores {
  let s = perDatabase.get(db);
  if (!s) {
    s = { status: new StatusStore(db), collections: new Map(), records: new Map() };
    perDatabase.set(db, s);
  }
  return s;
}

/**
 * collectionStore returns the shared store of a collection. It throws the
 * library's `invalid_id` error for a name outside the protocol's pattern.
 */
export function collectionStore<T extends JSONObject>(db: Database, name: string): CollectionStore<T> {
  const s = storesOf(db);
  let c = s.collections.get(name);
  if (!c) {
    c = new CollectionStore(db.collection(name));
    s.collections.set(name, c);
  }
  return c as unknown as CollectionStore<T>;
}

/** recordStore returns the shared store of one record. */
export function recordStore<T extends JSONObject>(db: Database, name: string, id: string): RecordStore<T> {
  const s = storesOf(db);
  // A NUL cannot occur in a collection name, so the key is unambiguous.
  const key = `${name}\u0000${id}`;
  let r = s.records.get(key);
  if (!r) {
    r = new RecordStore(collectionStore(db, name), id, (idle) => {
      if (s.records.get(key) === idle) s.records.delete(key);
    });
    s.records.set(key, r);
  }
  return r as unknown as RecordStore<T>;
}

/** statusStore returns the shared store of the database's status. */
export function statusStore(db: Database): Store<Database["status"]> {
  return storesOf(db).status;
}
