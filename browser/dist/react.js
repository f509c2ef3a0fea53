/* dynamerge 0.1.0 React bindings (MIT). Built by browser/scripts/build.mjs; do not edit. */

// src/react/provider.ts
import { createContext, createElement, useContext, useEffect, useRef, useState } from "react";
import { open } from "./dynamerge.js";
var DatabaseContext = createContext(void 0);
function DynamergeProvider(props) {
  const [state, setState] = useState(initialState);
  const opening = useRef({ options: props.options, open: props.open });
  useEffect(() => {
    let cancelled = false;
    let db = null;
    const { options = {}, open: openFn = open } = opening.current;
    openFn(options).then(
      (opened) => {
        if (cancelled) {
          opened.close();
          return;
        }
        db = opened;
        setState({ db, error: null });
      },
      (error) => {
        if (!cancelled) setState({ db: null, error });
      }
    );
    return () => {
      cancelled = true;
      db?.close();
      setState(initialState);
    };
  }, []);
  return createElement(DatabaseContext.Provider, { value: state }, props.children);
}
var initialState = { db: null, error: null };
function useProviderState(hook) {
  const state = useContext(DatabaseContext);
  if (state === void 0) {
    throw new Error(`dynamerge/react: ${hook} must be called inside <DynamergeProvider>`);
  }
  return state;
}
function useDatabase() {
  return useProviderState("useDatabase").db;
}
function useOpenError() {
  return useProviderState("useOpenError").error;
}

// src/react/hooks.ts
import { useSyncExternalStore } from "react";

// src/react/stores.ts
var LOADING = Object.freeze({ status: "loading", doc: void 0 });
var MISSING = Object.freeze({ status: "missing", doc: void 0 });
var Listeners = class {
  fns = /* @__PURE__ */ new Set();
  get size() {
    return this.fns.size;
  }
  add(fn) {
    this.fns.add(fn);
  }
  delete(fn) {
    this.fns.delete(fn);
  }
  call() {
    for (const fn of this.fns) {
      try {
        fn();
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
};
var CollectionStore = class {
  collection;
  entries;
  listeners = new Listeners();
  unsubscribe;
  constructor(collection) {
    this.collection = collection;
  }
  subscribe = (onChange) => {
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
        this.unsubscribe = void 0;
      }
    };
  };
  getSnapshot = () => this.entries;
  /** find returns the record's entry in the current snapshot (entries are in id order). */
  find(id) {
    const all = this.entries;
    if (!all) return void 0;
    let lo = 0;
    let hi = all.length;
    while (lo < hi) {
      const mid = lo + hi >>> 1;
      if (all[mid].id < id) lo = mid + 1;
      else hi = mid;
    }
    return lo < all.length && all[lo].id === id ? all[lo] : void 0;
  }
};
var RecordStore = class {
  col;
  id;
  state = LOADING;
  // The collection snapshot `state` was computed from.
  seen;
  // The lookup: none yet, in flight, or done (with what `get` returned, good
  // only until the collection's next snapshot, which will hold the record
  // if it still exists).
  lookup = "none";
  fetched;
  failure;
  listeners = new Listeners();
  unsubscribe;
  // Called once nobody has listened for a moment: forgets the store, so a
  // long session does not keep one per record it ever showed.
  idle;
  constructor(col, id, idle = () => {
  }) {
    this.col = col;
    this.id = id;
    this.idle = idle;
  }
  subscribe = (onChange) => {
    this.listeners.add(onChange);
    if (!this.unsubscribe) {
      if (this.lookup === "done") this.lookup = "none";
      this.unsubscribe = this.col.subscribe(() => this.update());
      this.update();
    }
    return () => {
      this.listeners.delete(onChange);
      if (this.listeners.size === 0) {
        this.unsubscribe?.();
        this.unsubscribe = void 0;
        setTimeout(() => {
          if (this.listeners.size === 0) this.idle(this);
        }, 0);
      }
    };
  };
  // getSnapshot never starts a lookup (it runs during render, also on a
  // server); it only recomputes from a newer collection snapshot.
  getSnapshot = () => {
    if (this.col.getSnapshot() !== this.seen) this.state = this.compute();
    return this.state;
  };
  // update runs on subscribe and on every collection change: it starts the
  // lookup a missing record needs, and tells the listeners when the record's
  // state changed.
  update() {
    const entries = this.col.getSnapshot();
    if (entries !== void 0 && this.lookup !== "pending") {
      if (this.col.find(this.id)) this.lookup = "done";
      else if (this.lookup === "none") this.startLookup();
    }
    const prev = this.state;
    this.state = this.compute();
    if (this.state !== prev) this.listeners.call();
  }
  compute() {
    const entries = this.col.getSnapshot();
    this.seen = entries;
    const prev = this.state;
    if (entries === void 0) return LOADING;
    const doc = this.col.find(this.id)?.doc ?? (this.fetched?.at === entries ? this.fetched.doc : void 0);
    if (doc !== void 0) {
      return prev.status === "ready" && prev.doc === doc ? prev : Object.freeze({ status: "ready", doc });
    }
    if (this.failure) return prev.status === "error" ? prev : Object.freeze({ status: "error", doc: void 0, error: this.failure.error });
    if (this.lookup !== "done") return LOADING;
    return MISSING;
  }
  startLookup() {
    this.lookup = "pending";
    this.failure = void 0;
    this.col.collection.get(this.id).then(
      (doc) => {
        this.lookup = "done";
        this.fetched = { doc, at: this.col.getSnapshot() };
        this.update();
      },
      (error) => {
        this.lookup = "done";
        this.failure = { error };
        this.update();
      }
    );
  }
};
var StatusStore = class {
  subscribe;
  getSnapshot;
  constructor(db) {
    this.subscribe = (onChange) => db.onStatus(() => onChange());
    this.getSnapshot = () => db.status;
  }
};
var perDatabase = /* @__PURE__ */ new WeakMap();
function storesOf(db) {
  let s = perDatabase.get(db);
  if (!s) {
    s = { status: new StatusStore(db), collections: /* @__PURE__ */ new Map(), records: /* @__PURE__ */ new Map() };
    perDatabase.set(db, s);
  }
  return s;
}
function collectionStore(db, name) {
  const s = storesOf(db);
  let c = s.collections.get(name);
  if (!c) {
    c = new CollectionStore(db.collection(name));
    s.collections.set(name, c);
  }
  return c;
}
function recordStore(db, name, id) {
  const s = storesOf(db);
  const key = `${name}\0${id}`;
  let r = s.records.get(key);
  if (!r) {
    r = new RecordStore(collectionStore(db, name), id, (idle) => {
      if (s.records.get(key) === idle) s.records.delete(key);
    });
    s.records.set(key, r);
  }
  return r;
}
function statusStore(db) {
  return storesOf(db).status;
}

// src/react/hooks.ts
var noSubscribe = () => () => {
};
var nothing = () => void 0;
var loading = () => LOADING;
function useCollection(name) {
  const { db } = useProviderState("useCollection");
  const store = db ? collectionStore(db, name) : void 0;
  return useSyncExternalStore(store?.subscribe ?? noSubscribe, store?.getSnapshot ?? nothing, nothing);
}
function useRecord(collection, id) {
  const { db } = useProviderState("useRecord");
  const store = db ? recordStore(db, collection, id) : void 0;
  return useSyncExternalStore(store?.subscribe ?? noSubscribe, store?.getSnapshot ?? loading, loading);
}
function useStatus() {
  const { db } = useProviderState("useStatus");
  const store = db ? statusStore(db) : void 0;
  return useSyncExternalStore(store?.subscribe ?? noSubscribe, store?.getSnapshot ?? nothing, nothing);
}

// src/react/history.ts
import { useEffect as useEffect2, useMemo, useSyncExternalStore as useSyncExternalStore2 } from "react";
var LOADING2 = Object.freeze({ status: "loading", changes: void 0 });
var HistoryReader = class {
  constructor(col, id, limit) {
    this.col = col;
    this.id = id;
    this.limit = limit;
  }
  state = LOADING2;
  running = false;
  again = false;
  closed = false;
  listeners = /* @__PURE__ */ new Set();
  subscribe = (onChange) => {
    this.listeners.add(onChange);
    return () => this.listeners.delete(onChange);
  };
  getSnapshot = () => this.state;
  /** refresh reads the history now, or once more after the read in flight. */
  refresh() {
    if (!this.col || this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.col.history(this.id, this.limit === void 0 ? void 0 : { limit: this.limit }).then(
      (page) => this.done(Object.freeze({ status: "ready", changes: Object.freeze([...page.changes]), more: page.more, local: page.local })),
      (error) => this.done(Object.freeze({ status: "error", changes: void 0, error }))
    );
  }
  // open and close follow the component's effects: Strict Mode closes and
  // opens the same reader again, which must keep working.
  open() {
    this.closed = false;
  }
  close() {
    this.closed = true;
  }
  done(state) {
    this.running = false;
    if (this.closed) return;
    this.state = state;
    for (const fn of this.listeners) fn();
    if (this.again) {
      this.again = false;
      this.refresh();
    }
  }
};
var noReader = new HistoryReader(void 0, "", void 0);
var loading2 = () => LOADING2;
function useHistory(collection, id, options = {}) {
  const { db } = useProviderState("useHistory");
  const limit = options.limit;
  const reader = useMemo(
    () => db ? new HistoryReader(db.collection(collection), id, limit) : void 0,
    [db, collection, id, limit]
  );
  useEffect2(() => {
    reader?.open();
    return () => reader?.close();
  }, [reader]);
  const { doc } = useRecord(collection, id);
  useEffect2(() => reader?.refresh(), [reader, doc]);
  const r = reader ?? noReader;
  const state = useSyncExternalStore2(r.subscribe, r.getSnapshot, loading2);
  return reader ? state : LOADING2;
}
export {
  DynamergeProvider,
  useCollection,
  useDatabase,
  useHistory,
  useOpenError,
  useRecord,
  useStatus
};
