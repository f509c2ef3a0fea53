import type { Collection, JSONObject, OpenOptions, Status, Unsubscribe } from "./types.js";
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
/**
 * open opens (creating if needed) the local database and starts syncing it
 * with the server. It works offline: nothing in it waits for the network.
 */
export declare function open(options?: OpenOptions): Promise<Database>;
