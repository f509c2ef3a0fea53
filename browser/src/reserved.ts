/**
 * Reserved root keys (PROTOCOL.md, "Record lifecycle"): root keys that
 * begin with `$` belong to the protocol. `$deleted: true` marks a deleted
 * record. The app never sees them (the stored JSON views leave them out)
 * and cannot write them through `create` or `change`: only
 * {@link markDeleted} and {@link unmarkDeleted} do, for `delete` and
 * `undelete`. Keys below the root are the app's, `$` or not.
 */
import * as A from "@automerge/automerge/slim";
import { DynamergeError } from "./errors.js";
import { toPlain } from "./plain.js";
import type { JSONObject } from "./types.js";

/** DELETED is the root key whose value `true` marks a deleted record. */
export const DELETED = "$deleted";

/** isReserved tells whether a root key belongs to the protocol. */
export function isReserved(key: string): boolean {
  return key.startsWith("$");
}

/** View is a document's JSON view without reserved keys, and whether it is deleted. */
export interface View {
  json: JSONObject;
  deleted: boolean;
}

/** viewOf turns a document's plain JSON (as {@link toPlain} makes it) into its view. */
export function viewOf(plain: JSONObject): View {
  const json: JSONObject = {};
  for (const [k, v] of Object.entries(plain)) if (!isReserved(k)) json[k] = v;
  return { json, deleted: plain[DELETED] === true };
}

/** isDeletedDoc tells whether a document is deleted. */
export function isDeletedDoc(doc: A.Doc<unknown>): boolean {
  return (doc as Record<string, unknown>)[DELETED] === true;
}

/** checkNoReserved refuses a new record whose root has a reserved key. */
export function checkNoReserved(doc: object): void {
  for (const k of Object.keys(doc)) {
    if (isReserved(k)) {
      throw new DynamergeError("invalid_argument", `dynamerge: root key ${JSON.stringify(k)} is reserved (keys starting with "$" belong to the protocol)`);
    }
  }
}

/**
 * appChange runs the app's change function and refuses (throws, so that
 * nothing is written) a change that set, changed or removed a reserved
 * root key: deleting goes through `delete`/`undelete`, never by accident.
 */
export function appChange<T>(doc: A.Doc<T>, fn: A.ChangeFn<T>): A.Doc<T> {
  const before = reservedOf(doc);
  const next = A.change(doc, fn);
  if (next !== doc && reservedOf(next) !== before) {
    throw new DynamergeError("invalid_argument", 'dynamerge: a change function may not write root keys starting with "$" (use delete/undelete)');
  }
  return next;
}

// reservedOf serialises a document's reserved root keys and their values.
function reservedOf(doc: A.Doc<unknown>): string {
  const d = doc as Record<string, unknown>;
  const keys = Object.keys(d).filter(isReserved).sort();
  if (keys.length === 0) return "";
  return JSON.stringify(keys.map((k) => [k, toPlain(d[k])]));
}

/** markDeleted returns the document with `$deleted: true` (the same one when already deleted). */
export function markDeleted<T>(doc: A.Doc<T>): A.Doc<T> {
  if (isDeletedDoc(doc)) return doc;
  return A.change(doc, (d) => {
    (d as Record<string, unknown>)[DELETED] = true;
  });
}

/** unmarkDeleted returns the document without `$deleted` (the same one when not deleted). */
export function unmarkDeleted<T>(doc: A.Doc<T>): A.Doc<T> {
  if (!isDeletedDoc(doc)) return doc;
  return A.change(doc, (d) => {
    delete (d as Record<string, unknown>)[DELETED];
  });
}
