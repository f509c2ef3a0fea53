import type { Change, Collection, Database, Entry, JSONObject, OpenOptions, Status, Unsubscribe } from "./dynamerge.js";
import type { ReactNode } from "react";

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

// history
/** UseHistoryOptions configures {@link useHistory}. */
export interface UseHistoryOptions {
    /** limit is how many of the newest changes to read. Defaults to the server's page size. */
    limit?: number;
}
/**
 * HistoryState is what {@link useHistory} returns: `loading` until the
 * first page arrives; `ready` with the newest changes first (kept on
 * screen while a newer page is read after the record changed), `local`
 * when they come from this device's copy (the server could not be
 * reached: `by` and `at` are null); `error` when the history could not be
 * read at all.
 */
export type HistoryState = {
    readonly status: "loading";
    readonly changes: undefined;
} | {
    readonly status: "ready";
    readonly changes: readonly Change[];
    readonly more: boolean;
    readonly local: boolean;
} | {
    readonly status: "error";
    readonly changes: undefined;
    readonly error: unknown;
};
/**
 * useHistory returns the record's history, newest first, and reads it
 * again whenever the record changes (here or by sync; changes made while a
 * read is in flight cost one more read, not one each). Offline it shows
 * this device's copy (`local`).
 */
export declare function useHistory(collection: string, id: string, options?: UseHistoryOptions): HistoryState;

// hooks
/**
 * useCollection returns the records of a collection that are not deleted,
 * in id order (as `collection.list()`), or undefined while loading. It
 * re-renders the component when a record of this collection is created,
 * changed, deleted or undeleted — here, in another tab, or by sync — and
 * not when another collection changes. A name outside the protocol's
 * pattern throws the library's `invalid_id` error.
 */
export declare function useCollection<T extends JSONObject = JSONObject>(name: string): readonly Entry<T>[] | undefined;
/**
 * useRecord returns one record's state (see {@link RecordState}): `ready`
 * with its plain JSON, `loading` while a record this device has never held
 * is fetched from the server, `missing` when it does not exist (or is
 * deleted), `error` when the lookup failed. The component re-renders only
 * when this record's state changes, not for other records of its
 * collection.
 */
export declare function useRecord<T extends JSONObject = JSONObject>(collection: string, id: string): RecordState<T>;
/**
 * useStatus returns the database's sync status (`db.status`), or undefined
 * while it opens and on a server; it re-renders on every status change.
 */
export declare function useStatus(): Status | undefined;

// provider
/** ProviderState is what the provider shares with the hooks below it. */
interface ProviderState {
    /** db is the open database, or null while it opens (and always on a server). */
    db: Database | null;
    /** error is why `open` failed, or null. */
    error: unknown;
}
/** DynamergeProviderProps configures {@link DynamergeProvider}. */
export interface DynamergeProviderProps {
    /**
     * options are passed to `open`. They are read when the provider mounts:
     * to open another database, give the provider another React `key`.
     * Defaults to `open()`'s defaults.
     */
    options?: OpenOptions;
    /**
     * open replaces the library's `open` (tests pass one that opens with
     * fake-indexeddb). Defaults to dynamerge's `open`.
     */
    open?: (options: OpenOptions) => Promise<Database>;
    children?: ReactNode;
}
/**
 * DynamergeProvider opens the database once mounted, gives it to the hooks
 * of its subtree, and closes it on unmount. Until the database is open (and
 * on a server, where it never opens) the hooks report loading.
 */
export declare function DynamergeProvider(props: DynamergeProviderProps): ReactNode;
/**
 * useProviderState returns the nearest provider's state, and throws when
 * there is none (a hook outside the provider would otherwise wait forever).
 */
declare function useProviderState(hook: string): ProviderState;
/**
 * useDatabase returns the open database, or null while it opens, after
 * `open` failed (see {@link useOpenError}), and during server rendering.
 */
export declare function useDatabase(): Database | null;
/** useOpenError returns why the provider's `open` failed, or null. */
export declare function useOpenError(): unknown;

// stores
/**
 * External stores for useSyncExternalStore: one per collection and one per
 * record of an open database, shared by every component that reads them.
 * Their snapshots are stable: the same object until what they describe
 * changes, which is what keeps a component from re-rendering when another
 * record or another collection changes.
 */
/**
 * RecordState is what {@link useRecord} returns: `loading` while the
 * database opens, the collection is read, or a record this device has never
 * held is asked of the server; `ready` with the record; `missing` when
 * neither this device nor the server (when reachable) has it, or it is
 * deleted; `error` when asking for it failed.
 */
export type RecordState<T = JSONObject> = {
    readonly status: "loading";
    readonly doc: undefined;
} | {
    readonly status: "ready";
    readonly doc: T;
} | {
    readonly status: "missing";
    readonly doc: undefined;
} | {
    readonly status: "error";
    readonly doc: undefined;
    readonly error: unknown;
};
/** LOADING and MISSING are shared, so that a snapshot stays the same object. */
declare const LOADING: RecordState<never>;
/** Store is what useSyncExternalStore takes. */
declare interface Store<S> {
    subscribe(onChange: () => void): Unsubscribe;
    getSnapshot(): S;
}
/**
 * CollectionStore holds a collection's entries as its subscription last
 * delivered them (undefined before the first delivery). It subscribes to
 * the collection while anyone listens, once however many listen. The
 * library hands out the same array until the collection changes, and the
 * same frozen doc for a record until that record changes.
 */
declare class CollectionStore<T extends JSONObject> implements Store<readonly Entry<T>[] | undefined> {
    readonly collection: Collection<T>;
    private entries;
    private readonly listeners;
    private unsubscribe;
    constructor(collection: Collection<T>);
    subscribe: (onChange: () => void) => Unsubscribe;
    getSnapshot: () => readonly Entry<T>[] | undefined;
    /** find returns the record's entry in the current snapshot (entries are in id order). */
    find(id: string): Entry<T> | undefined;
}
/**
 * RecordStore derives one record's state from its collection's store, and
 * asks the server (through `collection.get`, which looks up a record this
 * device does not hold) when the collection does not have it. Its listeners
 * hear only of changes to this record.
 */
declare class RecordStore<T extends JSONObject> implements Store<RecordState<T>> {
    private readonly col;
    private readonly id;
    private state;
    private seen;
    private lookup;
    private fetched;
    private failure;
    private readonly listeners;
    private unsubscribe;
    private readonly idle;
    constructor(col: CollectionStore<T>, id: string, idle?: (store: RecordStore<T>) => void);
    subscribe: (onChange: () => void) => Unsubscribe;
    getSnapshot: () => RecordState<T>;
    private update;
    private compute;
    private startLookup;
}
/**
 * collectionStore returns the shared store of a collection. It throws the
 * library's `invalid_id` error for a name outside the protocol's pattern.
 */
declare function collectionStore<T extends JSONObject>(db: Database, name: string): CollectionStore<T>;
/** recordStore returns the shared store of one record. */
declare function recordStore<T extends JSONObject>(db: Database, name: string, id: string): RecordStore<T>;
/** statusStore returns the shared store of the database's status. */
declare function statusStore(db: Database): Store<Database["status"]>;
