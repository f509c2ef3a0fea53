/**
 * Versions of a record, computed from its Automerge document: the state at
 * some heads, the change that restores it, the conflicts it holds, and its
 * changes described as {@link Change}s. Pure functions over documents; the
 * collection runs them inside its record transactions.
 */
import * as A from "@automerge/automerge/slim";
import { DynamergeError } from "./errors.js";
import { HASH_PATTERN } from "./protocol.gen.js";
import { toPlain } from "./plain.js";
import { viewOf, type View } from "./reserved.js";
import type { Change, Conflict, JSONObject, Path } from "./types.js";

/** RESTORE_MESSAGE prefixes the message of a change made by restore, so that a history can tell it. */
export const RESTORE_MESSAGE = "restore";

/** checkHeads refuses anything but a list of change hashes. */
export function checkHeads(heads: unknown): asserts heads is string[] {
  if (!Array.isArray(heads) || !heads.every((h) => typeof h === "string" && HASH_PATTERN.test(h))) {
    throw new DynamergeError("invalid_argument", "dynamerge: heads must be a list of change hashes (64 lowercase hex characters)");
  }
}

// at returns the document as it was at heads, refusing heads it does not
// hold: Automerge's view would silently show the nearest state instead.
function at<T>(doc: A.Doc<T>, heads: string[]): A.Doc<T> {
  if (!A.hasHeads(doc, heads)) {
    throw new DynamergeError("invalid_argument", `dynamerge: this device does not hold the changes ${heads.join(", ")} (sync first)`);
  }
  return A.view(doc, heads);
}

/** viewAt returns the record's JSON view (reserved keys apart) at heads. */
export function viewAt(doc: A.Doc<unknown>, heads: string[]): View {
  return viewOf(toPlain(A.toJS(at(doc, heads))) as JSONObject);
}

/**
 * restoreChange returns the document with one more change that makes its
 * state equal its state at heads, or the same document when they are equal
 * already. Values are reconciled rather than replaced so that the change
 * merges with concurrent edits the way a person's edit would: text by the
 * splices of the difference, counters by increments, maps key by key,
 * lists element by element around their common prefix and suffix.
 */
export function restoreChange<T>(doc: A.Doc<T>, heads: string[]): A.Doc<T> {
  const target = at(doc, heads) as unknown as Record<string, unknown>;
  return A.change(doc, { message: `${RESTORE_MESSAGE} ${heads.join(",")}` }, (d) => {
    reconcileMap(d as Record<string, unknown>, d as Record<string, unknown>, [], target);
  });
}

type Obj = Record<string, unknown>;

function reconcileMap(root: Obj, cur: Obj, path: (string | number)[], want: Obj): void {
  for (const k of Object.keys(cur)) if (!(k in want)) delete cur[k];
  for (const k of Object.keys(want)) {
    const w = want[k];
    if (!(k in cur)) cur[k] = copy(w);
    else reconcileValue(root, cur, k, [...path, k], w);
  }
}

function reconcileList(root: Obj, cur: unknown[], path: (string | number)[], want: unknown[]): void {
  let start = 0;
  while (start < cur.length && start < want.length && same(cur[start], want[start])) start++;
  let endC = cur.length;
  let endW = want.length;
  while (endC > start && endW > start && same(cur[endC - 1], want[endW - 1])) {
    endC--;
    endW--;
  }
  // The middle: elements in both are reconciled in place, the rest
  // removed or inserted.
  const both = Math.min(endC - start, endW - start);
  for (let n = start; n < start + both; n++) reconcileValue(root, cur as unknown as Obj, n, [...path, n], want[n]);
  const list = cur as unknown as { deleteAt(i: number, n: number): void; insertAt(i: number, ...v: unknown[]): void };
  if (endC - start > both) list.deleteAt(start + both, endC - start - both);
  if (endW - start > both) list.insertAt(start + both, ...want.slice(start + both, endW).map(copy));
}

function reconcileValue(root: Obj, parent: Obj, k: string | number, path: (string | number)[], w: unknown): void {
  const c = (parent as Record<string | number, unknown>)[k];
  if (same(c, w)) return;
  const set = (v: unknown) => ((parent as Record<string | number, unknown>)[k] = v);
  if (typeof c === "string" && typeof w === "string") {
    A.updateText(root as A.Doc<unknown>, path, w);
  } else if (c instanceof A.Counter && w instanceof A.Counter) {
    (c as unknown as { increment(n: number): void }).increment(w.value - c.value);
  } else if (Array.isArray(c) && Array.isArray(w)) {
    reconcileList(root, c, path, w);
  } else if (isMap(c) && isMap(w)) {
    reconcileMap(root, c, path, w);
  } else {
    set(copy(w));
  }
}

function isMap(v: unknown): v is Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof Uint8Array) && !(v instanceof A.Counter) && !(v instanceof A.ImmutableString);
}

// same tells whether two Automerge values have equal content (and kind:
// text differs from an immutable string, a counter from a number).
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof A.Counter || b instanceof A.Counter) return a instanceof A.Counter && b instanceof A.Counter && a.value === b.value;
  if (a instanceof A.ImmutableString || b instanceof A.ImmutableString) {
    return a instanceof A.ImmutableString && b instanceof A.ImmutableString && a.val === b.val;
  }
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && a.length === b.length && a.every((x, n) => x === b[n]);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, n) => same(x, b[n]));
  }
  if (isMap(a) && isMap(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && same(a[k], b[k]));
  }
  return false;
}

// copy turns a value read from a view into a fresh value to write: a view's
// objects belong to another document and cannot be assigned as they are.
function copy(v: unknown): unknown {
  if (v instanceof A.Counter) return new A.Counter(v.value);
  if (v instanceof A.ImmutableString) return new A.ImmutableString(v.val);
  if (v instanceof Date) return new Date(v.getTime());
  if (v instanceof Uint8Array) return v.slice();
  if (Array.isArray(v)) return v.map(copy);
  if (isMap(v)) {
    const out: Obj = {};
    for (const k of Object.keys(v)) out[k] = copy(v[k]);
    return out;
  }
  return v;
}

/**
 * conflictsOf lists every map key and list element of the document with
 * concurrent values (reserved root keys apart), the shown value first,
 * each with the hash of the change that wrote it; `by` is null here.
 */
export function conflictsOf(doc: A.Doc<unknown>): Conflict[] {
  const out: Conflict[] = [];
  let owner: Map<string, { startOp: number; hash: string }[]> | undefined;
  const hashOf = (opId: string): string => {
    owner ??= changesByActor(doc);
    // An op's id is counter@actor, and an actor's changes number their
    // ops from startOp on: the op belongs to the actor's last change that
    // starts at or before it.
    const [ctr, actor] = splitOpId(opId);
    let hash = "";
    for (const c of owner.get(actor) ?? []) if (c.startOp <= ctr) hash = c.hash;
    return hash;
  };
  const walk = (obj: Obj | unknown[], path: Path) => {
    const keys: (string | number)[] = Array.isArray(obj) ? obj.map((_, n) => n) : Object.keys(obj);
    for (const k of keys) {
      if (path.length === 0 && typeof k === "string" && k.startsWith("$")) continue;
      const vals = A.getConflicts(obj as A.Doc<unknown>, k as string);
      if (vals && Object.keys(vals).length > 1) {
        const ids = Object.keys(vals).sort(byOpIdDesc);
        out.push({ path: [...path, k], values: ids.map((id) => ({ value: toPlain(vals[id]), hash: hashOf(id), by: null })) });
      }
      const v = (obj as Record<string | number, unknown>)[k];
      if (Array.isArray(v) || isMap(v)) walk(v as Obj | unknown[], [...path, k]);
    }
  };
  walk(doc as Obj, []);
  return out;
}

function splitOpId(id: string): [number, string] {
  const at = id.indexOf("@");
  return [Number(id.slice(0, at)), id.slice(at + 1)];
}

// byOpIdDesc orders op ids the way Automerge picks the shown value: the
// greatest counter wins, then the greatest actor.
function byOpIdDesc(a: string, b: string): number {
  const [ca, xa] = splitOpId(a);
  const [cb, xb] = splitOpId(b);
  if (ca !== cb) return cb - ca;
  return xa < xb ? 1 : xa > xb ? -1 : 0;
}

function changesByActor(doc: A.Doc<unknown>): Map<string, { startOp: number; hash: string }[]> {
  const m = new Map<string, { startOp: number; hash: string }[]>();
  for (const bytes of A.getAllChanges(doc)) {
    const c = A.decodeChange(bytes);
    const list = m.get(c.actor) ?? [];
    list.push({ startOp: c.startOp, hash: c.hash! });
    m.set(c.actor, list);
  }
  for (const list of m.values()) list.sort((a, b) => a.startOp - b.startOp);
  return m;
}

/** describeChange turns a change's bytes into a {@link Change} the server has not attributed. */
export function describeChange(bytes: Uint8Array, pending: boolean): Change {
  const c = A.decodeChange(bytes);
  return {
    hash: c.hash!,
    actor: c.actor,
    seq: c.seq,
    deps: c.deps.slice(),
    time: c.time ?? 0,
    message: c.message ?? null,
    ops: c.ops.length,
    by: null,
    at: null,
    pending,
  };
}

/**
 * localChanges returns one page of the changes this document holds, newest
 * first (the reverse of Automerge's causal order), after `offset` of them.
 */
export function localChanges(doc: A.Doc<unknown>, offset: number, limit: number, pending: ReadonlySet<string>): { changes: Change[]; more: boolean } {
  const all = A.getAllChanges(doc);
  const end = all.length - offset;
  const from = Math.max(0, end - limit);
  const changes: Change[] = [];
  for (let n = end - 1; n >= from; n--) {
    const c = describeChange(all[n]!, false);
    c.pending = pending.has(c.hash);
    changes.push(c);
  }
  return { changes, more: from > 0 };
}
