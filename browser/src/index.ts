/**
 * dynamerge: offline-first records as Automerge documents in IndexedDB,
 * synced with a dynamerge server over its HTTP protocol.
 *
 * ```ts
 * import { open } from "/dynamerge.js";
 * const db = await open();
 * const todos = db.collection("todos");
 * const id = await todos.create({ title: "Buy milk", done: false });
 * await todos.change(id, (doc) => { doc.done = true; });
 * ```
 *
 * @packageDocumentation
 */
export { open } from "./database.js";
export type { Database } from "./database.js";
export type {
  Collection,
  RecordId,
  CollectionName,
  Heads,
  JSONValue,
  JSONObject,
  Token,
  LockManagerLike,
  OpenOptions,
  Status,
  RejectedRecord,
  Entry,
  ChangeFn,
  CreateOptions,
  Unsubscribe,
  Change,
  HistoryOptions,
  HistoryPage,
  Path,
  Conflict,
  ConflictValue,
} from "./types.js";
export {
  DynamergeError,
  NetworkError,
  UnauthorizedError,
  ForbiddenError,
  InvalidChangeError,
  TooLargeError,
  InvalidIdError,
  UnavailableError,
  ClosedError,
  isDynamergeError,
} from "./errors.js";
export type { ErrorCode, ErrorDetails, SerializedError } from "./errors.js";
/**
 * updateText and splice edit Automerge text inside a change function, so
 * that two people editing one string keep both their edits, merged
 * character by character, instead of the last writer's string replacing
 * the other's: `todos.change(id, (d) => updateText(d, ["title"], input.value))`.
 * (Re-exported from `@automerge/automerge`; the demo app relies on them.)
 */
export { updateText, splice } from "@automerge/automerge/slim";
