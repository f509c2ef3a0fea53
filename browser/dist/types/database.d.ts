import type { ChangeFn, CreateOptions, Entry, JSONObject, OpenOptions, RecordId, Status, Unsubscribe } from "./types.js";
/** Database is an open dynamerge database. Get one from {@link open}. */
export interface Database {
    /**
     * collection returns the collection of that name (the same object for
     * the same name). It throws an `invalid_id` error for a name outside
     * `^[a-z0-9][a-z0-9_-]{0,63}$`.
     */
    collection<T extends JSONObject = JSONObject>(name: string): Collection<T>;
    /**
     * sync resolves once every local change made before the call is
     * acknowledged by the server. It rejects with a typed error when the
     * server cannot be reached or refuses a record (the changes stay in the
     * outbox, and background sync keeps retrying). Refused records are
     * retried by every call.
     */
    sync(): Promise<void>;
    /** status is the current sync status (a new object after every change). */
    readonly status: Status;
    /** onStatus calls `fn` on every status change; it returns the unsubscribe function. */
    onStatus(fn: (s: Status) => void): Unsubscribe;
    /** close stops syncing and closes the database; later calls reject with a `closed` error. */
    close(): void;
}
/** Collection is one collection of records. */
export interface Collection<T extends JSONObject = JSONObject> {
    /** name is the collection's name. */
    readonly name: string;
    /**
     * create stores a new record and resolves with its id (a new UUID unless
     * given) once it is durable in IndexedDB.
     */
    create(doc: T, options?: CreateOptions): Promise<RecordId>;
    /**
     * change applies an Automerge change function to the record and resolves
     * once the change is durable in IndexedDB. It rejects with `not_found`
     * for a record this database does not hold. A function that changes
     * nothing writes nothing.
     */
    change(id: string, fn: ChangeFn<T>): Promise<void>;
    /** get resolves with the record as plain JSON (frozen), or undefined. */
    get(id: string): Promise<T | undefined>;
    /** list resolves with every record of the collection, in id order. */
    list(): Promise<Entry<T>[]>;
    /**
     * subscribe calls `fn` with the whole collection (as {@link list}) once
     * at once and then after every local or remote change, including changes
     * made in other tabs. It returns the unsubscribe function.
     */
    subscribe(fn: (all: Entry<T>[]) => void): Unsubscribe;
    /** heads resolves with the record's current heads, or undefined. */
    heads(id: string): Promise<string[] | undefined>;
}
/**
 * open opens (creating if needed) the local database and starts syncing it
 * with the server. It works offline: nothing in it waits for the network.
 */
export declare function open(options?: OpenOptions): Promise<Database>;
