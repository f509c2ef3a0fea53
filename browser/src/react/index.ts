/**
 * dynamerge/react: React bindings of the dynamerge browser library.
 *
 * ```tsx
 * import { DynamergeProvider, useCollection, useRecord } from "dynamerge/react";
 * <DynamergeProvider options={{ url: "https://sync.example" }}><App /></DynamergeProvider>
 * const todos = useCollection("todos");          // Entry[] | undefined
 * const todo = useRecord("todos", id);           // { status, doc }
 * ```
 *
 * React (18 or 19) is a peer dependency. Safe under server rendering: the
 * database opens in an effect, so render touches no IndexedDB.
 *
 * @packageDocumentation
 */
export { DynamergeProvider, useDatabase, useOpenError } from "./provider.js";
export type { DynamergeProviderProps } from "./provider.js";
export { useCollection, useRecord, useStatus } from "./hooks.js";
export type { RecordState } from "./stores.js";
export { useHistory } from "./history.js";
export type { HistoryState, UseHistoryOptions } from "./history.js";
