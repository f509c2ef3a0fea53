/**
 * Collections: the app-facing calls on the records of one collection, and
 * the in-memory JSON views that `get`, `list`, `deleted` and `subscribe`
 * answer from.
 */
import * as A from "@automerge/automerge/slim";
import { loadAutomerge } from "./automerge.js";
import { DynamergeError, isDynamergeError } from "./errors.js";
import { recordId } from "./ids.js";
import type { RecordRow, Records, Write } from "./records.js";
import { appChange, checkNoReserved, isDeletedDoc, markDeleted, unmarkDeleted } from "./reserved.js";
import { report } from "./report.js";
import type { HistoryWirePage } from "./http.js";
import { unreachable } from "./lookup.js";
import { conflictsOf, checkHeads, describeChange, localChanges, restoreChange, viewAt } from "./versions.js";
import type {
  Change,
  ChangeFn,
  Collection,
  CollectionName,
  Conflict,
  CreateOptions,
  Entry,
  HistoryOptions,
  HistoryPage,
  JSONObject,
  JSONValue,
  Path,
  RecordId,
  Unsubscribe,
} from "./types.js";

/** CollectionHost is what a collection needs from its database. */
export interface CollectionHost {
  readonly records: Records;
  /** check throws a `closed` error after close. */
  check(): void;
  /** localWrite is called after a local change is durable. */
  localWrite(w: Write): void;
  /** lookup asks the server for a record this device does not hold (see lookup.ts). */
  lookup(c: string, i: string): Promise<void>;
  /** history reads a page of the record's history from the server; undefined when the database syncs nothing. */
  history(c: string, i: string, cursor: string, limit: number | undefined): Promise<HistoryWirePage> | undefined;
}

// LOCAL_CURSOR starts the cursors of history pages read from this device's
// copy, apart from the server's opaque ones.
const LOCAL_CURSOR = "~local:";
// Local history pages hold this many changes unless asked otherwise.
const LOCAL_PAGE = 100;
// conflicts reads at most this many history pages to find who wrote each value.
const ATTRIBUTION_PAGES = 10;

// View is one record's JSON view, whether it is deleted, and the write
// counter it came from.
interface View<T> {
  version: number;
  doc: T;
  deleted: boolean;
}

function viewOfRow<T>(r: RecordRow): View<T> {
  return { version: r.version, doc: deepFreeze(r.json) as T, deleted: r.deleted };
}

/** CollectionImpl is the {@link Collection} of one name in one open database. */
export class CollectionImpl<T extends JSONObject> implements Collection<T> {
  readonly name: CollectionName;
  private readonly db: CollectionHost;
  // The views of the collection's records, loaded on first use; `early`
  // keeps rows that arrive while loading, `earlyGone` records removed then.
  private views: Map<string, View<T>> | undefined;
  private early = new Map<string, View<T>>();
  private earlyGone = new Set<string>();
  private loading: Promise<Map<string, View<T>>> | undefined;
  private sorted: { live: Entry<T>[]; deleted: Entry<T>[] } | undefined;
  private readonly subs = new Set<(all: Entry<T>[]) => void>();
  // Who pushed each change (by hash), as the server's history said: it
  // never changes once the server accepted a change.
  private readonly attribution = new Map<string, string | null>();
  private notifyQueued = false;

  constructor(db: CollectionHost, name: CollectionName) {
    this.db = db;
    this.name = name;
  }

  async create(doc: T, options: CreateOptions = {}): Promise<RecordId> {
    this.db.check();
    const id = recordId(options.id ?? crypto.randomUUID());
    if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
      throw new DynamergeError("invalid_argument", "dynamerge: create wants a plain object");
    }
    checkNoReserved(doc);
    checkValue(doc, "doc");
    await loadAutomerge();
    let initial: A.Doc<T>;
    try {
      initial = A.from(doc as Record<string, unknown>) as A.Doc<T>;
    } catch (err) {
      throw new DynamergeError("invalid_argument", `dynamerge: create: ${String((err as Error)?.message ?? err)}`, { cause: err });
    }
    const change = A.getLastLocalChange(initial)!;
    const hash = A.getHeads(initial)[0]!;
    const w = await this.db.records.update(this.name, id, (cur) => {
      if (cur) {
        throw new DynamergeError("invalid_argument", `dynamerge: ${this.name}/${id} already exists`, { collection: this.name, id });
      }
      return { doc: initial, outbox: [{ hash, bytes: change }] };
    });
    this.db.localWrite(w);
    return id;
  }

  async change(id: string, fn: ChangeFn<T>): Promise<void> {
    this.db.check();
    checkID(id);
    if (typeof fn !== "function") throw new DynamergeError("invalid_argument", "dynamerge: change wants a function");
    await this.write(id, false, (doc) => appChange(doc, fn as A.ChangeFn<T>));
  }

  async delete(id: string): Promise<void> {
    this.db.check();
    checkID(id);
    await this.write(id, true, markDeleted);
  }

  async undelete(id: string): Promise<void> {
    this.db.check();
    checkID(id);
    await this.write(id, true, unmarkDeleted);
  }

  // write makes a local change with `fn` (which returns the document
  // unchanged to write nothing); a record this device does not hold is
  // looked up on the server, and the write tried once more. Only
  // `lifecycle` changes may touch a deleted record.
  private async write(id: string, lifecycle: boolean, fn: (doc: A.Doc<T>) => A.Doc<T>): Promise<void> {
    try {
      await this.writeNow(id, lifecycle, fn);
    } catch (err) {
      if (!isDynamergeError(err, "not_found")) throw err;
      await this.db.lookup(this.name, id);
      await this.writeNow(id, lifecycle, fn);
    }
  }

  private async writeNow(id: string, lifecycle: boolean, fn: (doc: A.Doc<T>) => A.Doc<T>): Promise<void> {
    const w = await this.db.records.update(this.name, id, (cur) => {
      if (!cur) {
        throw notFound(this.name, id);
      }
      const doc = cur as A.Doc<T>;
      if (!lifecycle && isDeletedDoc(doc)) {
        throw new DynamergeError("deleted", `dynamerge: ${this.name}/${id} is deleted (undelete it first)`, { collection: this.name, id });
      }
      const next = fn(doc);
      const change = A.getLastLocalChange(next);
      const heads = A.getHeads(next);
      if (next === doc || !change || heads.length !== 1) return {};
      return { doc: next, outbox: [{ hash: heads[0]!, bytes: change }] };
    });
    if (w.changed) this.db.localWrite(w);
  }

  async history(id: string, options: HistoryOptions = {}): Promise<HistoryPage> {
    this.db.check();
    checkID(id);
    const before = options.before ?? "";
    const limit = options.limit;
    if (typeof before !== "string") throw new DynamergeError("invalid_argument", "dynamerge: history: before must be a cursor string");
    if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
      throw new DynamergeError("invalid_argument", "dynamerge: history: limit must be a positive integer");
    }
    if (before.startsWith(LOCAL_CURSOR)) return this.localHistory(id, Number(before.slice(LOCAL_CURSOR.length)) || 0, limit ?? LOCAL_PAGE);
    let page: HistoryWirePage | undefined;
    try {
      page = await this.db.history(this.name, id, before, limit);
    } catch (err) {
      if (!isDynamergeError(err) || !unreachable.has(err.code)) throw err;
    }
    if (!page) return this.localHistory(id, 0, limit ?? LOCAL_PAGE);
    const onServer = new Set<string>();
    const changes: Change[] = [];
    for (const c of page.changes) {
      onServer.add(c.hash);
      this.attribution.set(c.hash, c.by);
      changes.push({ ...c, deps: c.deps.slice(), pending: false });
    }
    // The first page starts with what this device made and the server has
    // not acknowledged: newer than anything the server accepted.
    const pending: Change[] = [];
    if (!before) {
      const outbox = await this.db.records.outbox(this.name, id);
      // Describing a change decodes it with Automerge.
      if (outbox.length > 0) await loadAutomerge();
      for (const row of outbox.reverse()) {
        if (!onServer.has(row.hash)) pending.push(describeChange(row.bytes, true));
      }
    }
    return { changes: [...pending, ...changes], cursor: page.cursor, more: page.more, local: false };
  }

  // localHistory reads a page of history from this device's copy of the
  // record, `offset` changes from the newest.
  private async localHistory(id: string, offset: number, limit: number): Promise<HistoryPage> {
    const pending = new Set((await this.db.records.outbox(this.name, id)).map((r) => r.hash));
    const page = await this.db.records.withDoc(this.name, id, (doc) => localChanges(doc, offset, limit, pending));
    if (!page) throw notFound(this.name, id);
    const next = offset + page.changes.length;
    return { changes: page.changes, cursor: `${LOCAL_CURSOR}${next}`, more: page.more, local: true };
  }

  async getAt(id: string, heads: string[]): Promise<T | undefined> {
    this.db.check();
    checkID(id);
    checkHeads(heads);
    if (!(await this.ensure(id))) return undefined;
    const v = await this.db.records.withDoc(this.name, id, (doc) => viewAt(doc, heads));
    return v && !v.deleted ? (deepFreeze(v.json) as T) : undefined;
  }

  async restore(id: string, heads: string[]): Promise<void> {
    this.db.check();
    checkID(id);
    checkHeads(heads);
    await this.write(id, true, (doc) => restoreChange(doc, heads));
  }

  async conflicts(id: string): Promise<Conflict[]> {
    this.db.check();
    checkID(id);
    if (!(await this.ensure(id))) throw notFound(this.name, id);
    const out = (await this.db.records.withDoc(this.name, id, conflictsOf)) ?? [];
    const values = out.flatMap((c) => c.values);
    await this.attribute(id, new Set(values.map((v) => v.hash)));
    for (const v of values) v.by = this.attribution.get(v.hash) ?? null;
    return out;
  }

  // attribute reads the server's history of the record until it knows who
  // pushed each of the changes (or ATTRIBUTION_PAGES pages were read). The
  // server not answering leaves them unknown: conflicts work offline.
  private async attribute(id: string, hashes: Set<string>): Promise<void> {
    const missing = [...hashes].filter((h) => !this.attribution.has(h));
    let before = "";
    for (let n = 0; n < ATTRIBUTION_PAGES && missing.some((h) => !this.attribution.has(h)); n++) {
      let page: HistoryWirePage | undefined;
      try {
        page = await this.db.history(this.name, id, before, undefined);
      } catch {
        return;
      }
      if (!page) return;
      for (const c of page.changes) this.attribution.set(c.hash, c.by);
      if (!page.more) return;
      before = page.cursor;
    }
  }

  async resolve(id: string, path: Path, value: JSONValue): Promise<void> {
    this.db.check();
    checkID(id);
    if (!Array.isArray(path) || path.length === 0 || !path.every((k) => typeof k === "string" || (Number.isInteger(k) && (k as number) >= 0))) {
      throw new DynamergeError("invalid_argument", "dynamerge: resolve wants a path of map keys and list indexes");
    }
    checkValue(value, "value");
    await this.write(id, false, (doc) =>
      appChange(doc, (d) => {
        let parent = d as unknown as Record<string | number, unknown>;
        for (const k of path.slice(0, -1)) {
          const next = parent[k];
          if (next === null || typeof next !== "object") {
            throw new DynamergeError("invalid_argument", `dynamerge: resolve: ${JSON.stringify(path)} names nothing in ${this.name}/${id}`);
          }
          parent = next as Record<string | number, unknown>;
        }
        parent[path[path.length - 1]!] = value;
      }),
    );
  }

  async get(id: string): Promise<T | undefined> {
    this.db.check();
    checkID(id);
    const v = await this.ensure(id);
    return v && !v.deleted ? v.doc : undefined;
  }

  async heads(id: string): Promise<string[] | undefined> {
    this.db.check();
    checkID(id);
    await this.ensure(id);
    return (await this.db.records.row(this.name, id))?.heads.slice();
  }

  async list(): Promise<Entry<T>[]> {
    this.db.check();
    return (await this.entries()).live;
  }

  async deleted(): Promise<Entry<T>[]> {
    this.db.check();
    return (await this.entries()).deleted;
  }

  subscribe(fn: (all: Entry<T>[]) => void): Unsubscribe {
    this.db.check();
    this.subs.add(fn);
    this.notify();
    return () => this.subs.delete(fn);
  }

  /** put takes a row written by this tab, the sync loop or another tab. */
  put(row: RecordRow): void {
    const target = this.views ?? (this.loading ? this.early : undefined);
    if (target) {
      const cur = target.get(row.id);
      // Rows can arrive out of order (a broadcast after a local read);
      // the write counter tells which is newer.
      if (cur && cur.version >= row.version) return;
      this.earlyGone.delete(row.id);
      // Acknowledgements and refusals bump the counter without changing
      // the document: subscribers hear only of real changes.
      const deleted = row.deleted;
      const same = cur !== undefined && cur.deleted === deleted && JSON.stringify(cur.doc) === JSON.stringify(row.json);
      target.set(row.id, { version: row.version, doc: same ? cur.doc : (deepFreeze(row.json) as T), deleted });
      if (same) return;
      this.sorted = undefined;
    }
    this.notify();
  }

  /** remove takes the news that a record is no longer stored here (purged). */
  remove(id: string): void {
    if (this.views) {
      if (!this.views.delete(id)) return;
      this.sorted = undefined;
    } else if (this.loading) {
      this.early.delete(id);
      this.earlyGone.add(id);
    }
    this.notify();
  }

  closeAll(): void {
    this.subs.clear();
  }

  // ensure returns the record's view, after asking the server for a record
  // this device does not hold.
  private async ensure(id: string): Promise<View<T> | undefined> {
    const v = await this.view(id);
    if (v) return v;
    await this.db.lookup(this.name, id);
    return this.view(id);
  }

  private async view(id: string): Promise<View<T> | undefined> {
    if (this.views) return this.views.get(id);
    const row = await this.db.records.row(this.name, id);
    return row ? viewOfRow<T>(row) : undefined;
  }

  private async entries(): Promise<{ live: Entry<T>[]; deleted: Entry<T>[] }> {
    const views = await this.load();
    if (!this.sorted) {
      const live: Entry<T>[] = [];
      const deleted: Entry<T>[] = [];
      for (const id of [...views.keys()].sort()) {
        const v = views.get(id)!;
        (v.deleted ? deleted : live).push(Object.freeze({ id: id as RecordId, doc: v.doc }));
      }
      this.sorted = { live: Object.freeze(live) as Entry<T>[], deleted: Object.freeze(deleted) as Entry<T>[] };
    }
    return this.sorted;
  }

  private load(): Promise<Map<string, View<T>>> {
    if (this.views) return Promise.resolve(this.views);
    this.loading ??= this.db.records.rows(this.name).then(
      (rows) => {
        const m = new Map<string, View<T>>();
        for (const r of rows) m.set(r.id, viewOfRow<T>(r));
        for (const id of this.earlyGone) m.delete(id);
        for (const [id, e] of this.early) {
          const cur = m.get(id);
          if (!cur || cur.version < e.version) m.set(id, e);
        }
        this.early.clear();
        this.earlyGone.clear();
        this.views = m;
        this.loading = undefined;
        return m;
      },
      (err) => {
        this.loading = undefined;
        throw err;
      },
    );
    return this.loading;
  }

  private notify(): void {
    if (this.subs.size === 0 || this.notifyQueued) return;
    this.notifyQueued = true;
    setTimeout(async () => {
      this.notifyQueued = false;
      // Closed meanwhile: nobody is listening any more.
      if (this.subs.size === 0) return;
      let all: Entry<T>[];
      try {
        all = await this.list();
      } catch (err) {
        report(err);
        return;
      }
      for (const fn of this.subs) {
        try {
          fn(all);
        } catch (err) {
          report(err);
        }
      }
    }, 0);
  }
}

// checkValue refuses what Automerge would drop or store surprisingly
// (functions, undefined, NaN, class instances): the record must be what the
// app passed, or nothing.
function checkValue(v: unknown, path: string): void {
  switch (typeof v) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (Number.isFinite(v)) return;
      break;
    case "object": {
      if (v === null || v instanceof Date || v instanceof Uint8Array || v instanceof A.Counter || v instanceof A.ImmutableString) return;
      if (Array.isArray(v)) {
        v.forEach((x, n) => checkValue(x, `${path}[${n}]`));
        return;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto === Object.prototype || proto === null) {
        for (const [k, x] of Object.entries(v)) checkValue(x, `${path}.${k}`);
        return;
      }
      break;
    }
  }
  throw new DynamergeError("invalid_argument", `dynamerge: ${path}: cannot store ${describe(v)} in a record`);
}

function describe(v: unknown): string {
  if (typeof v === "number") return String(v);
  if (typeof v === "object" && v !== null) return `a ${v.constructor?.name ?? "non-plain"} object`;
  return `a ${typeof v}`;
}

function notFound(c: string, i: string): DynamergeError {
  return new DynamergeError("not_found", `dynamerge: ${c}/${i} does not exist`, { collection: c, id: i });
}

function checkID(id: string): asserts id is RecordId {
  recordId(id);
}

/** deepFreeze freezes a plain JSON value and everything in it. */
export function deepFreeze<V>(v: V): V {
  if (v !== null && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}
