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
/**
 * updateText and splice edit Automerge text inside a change function, so
 * that two people editing one string keep both their edits, merged
 * character by character, instead of the last writer's string replacing
 * the other's: `todos.change(id, (d) => updateText(d, ["title"], input.value))`.
 * (Re-exported from `@automerge/automerge`; the demo app relies on them.)
 */
export { updateText, splice } from "@automerge/automerge/slim";

// database
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
 * with the server. It works offline: nothing in it waits for the network,
 * nor for Automerge's WebAssembly, which loads when a change must be made
 * or merged (automerge.ts).
 */
export declare function open(options?: OpenOptions): Promise<Database>;

// errors
/**
 * Errors the library reports: one class, {@link DynamergeError}, keyed by
 * `code` (one of {@link ERROR_CODES}). A few codes also have a subclass, for
 * `instanceof`; `toDynamergeError` is the one place that picks it.
 */
/**
 * ERROR_CODES lists every `code` a {@link DynamergeError} can have: first
 * the protocol's (PROTOCOL.md; what the server answers), then the library's
 * own for what happened on this side. It is the one list: {@link ErrorCode}
 * is derived from it, and unknown server codes are checked against it. The
 * protocol's part is generated from the server's Go package protocol
 * (protocol.gen.ts), so the two cannot drift.
 */
declare const ERROR_CODES: readonly ["bad_request", "conflict", "deleted", "forbidden", "gone", "internal", "invalid_change", "invalid_id", "method_not_allowed", "missing_deps", "not_found", "precondition_failed", "rate_limited", "too_large", "unauthorized", "unavailable", "network", "bad_response", "closed", "invalid_argument"];
export type ErrorCode = (typeof ERROR_CODES)[number];
/** ErrorDetails is the optional context of a {@link DynamergeError}. */
export interface ErrorDetails {
    /** HTTP status of the answer, when there was one. */
    status?: number;
    /** The record's collection, for errors about one record. */
    collection?: string;
    /** The record's id, for errors about one record. */
    id?: string;
    /** Milliseconds the server asked to wait (Retry-After), when it did. */
    retryAfterMs?: number;
    /** The underlying error (e.g. the fetch TypeError). */
    cause?: unknown;
}
/**
 * DynamergeError is the base of every error the library throws or reports
 * in `status.error`. Test `err.code` (or use {@link isDynamergeError}).
 */
export declare class DynamergeError extends Error {
    /** The protocol's (or the library's) error code. */
    readonly code: ErrorCode;
    /** HTTP status of the answer, when there was one. */
    readonly status: number | undefined;
    /** The record's collection, for errors about one record. */
    readonly collection: string | undefined;
    /** The record's id, for errors about one record. */
    readonly id: string | undefined;
    /** Milliseconds the server asked to wait before retrying, when it did. */
    readonly retryAfterMs: number | undefined;
    constructor(code: ErrorCode, message: string, details?: ErrorDetails);
    /** toJSON keeps the code when the error is logged or posted to another tab. */
    toJSON(): SerializedError;
}
/** SerializedError is a {@link DynamergeError} as it travels between tabs and into IndexedDB. */
export interface SerializedError {
    code: ErrorCode;
    message: string;
    status?: number | undefined;
    collection?: string | undefined;
    id?: string | undefined;
    retryAfterMs?: number | undefined;
}
/** NetworkError: the server could not be reached (or the request timed out). */
export declare class NetworkError extends DynamergeError {
    constructor(message: string, details?: ErrorDetails);
}
/** UnauthorizedError: `401 unauthorized`, the token is missing or wrong. */
export declare class UnauthorizedError extends DynamergeError {
    constructor(message: string, details?: ErrorDetails);
}
/** ForbiddenError: `forbidden`, the token may not read or write that collection. */
export declare class ForbiddenError extends DynamergeError {
    constructor(message: string, details?: ErrorDetails);
}
/** InvalidChangeError: `invalid_change`, the server refused the record's change bytes. */
export declare class InvalidChangeError extends DynamergeError {
    constructor(message: string, details?: ErrorDetails);
}
/** TooLargeError: `too_large`, a change, a record or a request is over the server's limits. */
export declare class TooLargeError extends DynamergeError {
    constructor(message: string, details?: ErrorDetails);
}
/** InvalidIdError: `invalid_id`, a collection or id does not match the protocol's pattern. */
export declare class InvalidIdError extends DynamergeError {
    constructor(message: string, details?: ErrorDetails);
}
/** UnavailableError: `503 unavailable` or `429 rate_limited`; the library retries after `retryAfterMs`. */
export declare class UnavailableError extends DynamergeError {
    constructor(code: "unavailable" | "rate_limited", message: string, details?: ErrorDetails);
}
/** ClosedError: the database was closed while the call was pending, or used after close. */
export declare class ClosedError extends DynamergeError {
    constructor(message?: string);
}
/**
 * isDynamergeError tells whether `err` is a {@link DynamergeError}, and when
 * `code` is given, whether it has that code.
 */
export declare function isDynamergeError(err: unknown, code?: ErrorCode): err is DynamergeError;

// types
/**
 * Public types of the dynamerge browser library. Everything here is part of
 * the package's API; implementation types live beside their code.
 */
/** RecordId is a record's id: `^[A-Za-z0-9_-]{1,128}$` (UUIDs fit). */
export type RecordId = string & {
    readonly __brand: "RecordId";
};
/** CollectionName is `^[a-z0-9][a-z0-9_-]{0,63}$`, as PROTOCOL.md requires. */
export type CollectionName = string & {
    readonly __brand: "CollectionName";
};
/** Heads are the hex hashes (64 lowercase characters) of a record's head changes. */
export type Heads = string[];
/** JSONValue is what `get`/`list` return: plain, structured-clone-able JSON. */
export type JSONValue = null | boolean | number | string | JSONValue[] | {
    [key: string]: JSONValue;
};
/** JSONObject is the root of every record: Automerge documents are maps. */
export type JSONObject = {
    [key: string]: JSONValue;
};
/**
 * Token is a bearer token, or a function returning one. The function is called
 * before the first request and again after a `401`, so it may refresh it.
 */
export type Token = string | (() => Promise<string>);
/**
 * LockManagerLike is the subset of the Web Locks API (`navigator.locks`)
 * the library uses to elect the one tab that syncs.
 */
export interface LockManagerLike {
    request(name: string, options: {
        mode?: "exclusive" | "shared";
        signal?: AbortSignal;
    }, callback: (lock: unknown) => Promise<unknown>): Promise<unknown>;
}
/** OpenOptions configures {@link open}. Every field is optional. */
export interface OpenOptions {
    /** Server base URL. Defaults to the page's origin (`location.origin`). */
    url?: string;
    /** IndexedDB database name. Defaults to "dynamerge". */
    name?: string;
    /** Bearer token for every `/v1` call. Defaults to none. */
    token?: Token;
    /**
     * Whether to talk to the server at all. Defaults to true; false keeps
     * everything local (the outbox keeps growing until a later open syncs).
     */
    sync?: boolean;
    /** Automerge documents kept in memory (least recently used evicted). Defaults to 64. */
    maxLoadedDocs?: number;
    /** Incremental chunks a record accumulates before it is compacted. Defaults to 32. */
    compactAfter?: number;
    /** First retry delay after a failed sync. Defaults to 500 ms. */
    retryInitialMs?: number;
    /** Largest retry delay (before jitter is added). Defaults to 30,000 ms. */
    retryMaxMs?: number;
    /** How often the feeds are polled besides live events. Defaults to 60,000 ms. */
    feedIntervalMs?: number;
    /** Records per `POST /v1/sync`. Defaults to 100. */
    batchDocs?: number;
    /** Approximate largest request body in bytes. Defaults to 4 MiB. */
    batchBytes?: number;
    /** Per-request timeout for sync and feed calls. Defaults to 30,000 ms. */
    requestTimeoutMs?: number;
    /** IndexedDB factory. Defaults to `globalThis.indexedDB` (tests pass fake-indexeddb). */
    indexedDB?: IDBFactory;
    /** Web Locks implementation. Defaults to `navigator.locks`; without one this instance always syncs. */
    locks?: LockManagerLike | null;
    /** fetch implementation. Defaults to `globalThis.fetch`. */
    fetch?: typeof fetch;
    /**
     * Where Automerge's WebAssembly is fetched from, the first time a change
     * must be made or merged. Defaults to the content-hashed `.wasm` file
     * beside `dynamerge.js`; when that cannot be fetched or compiled, the
     * library falls back to its base64 copy (a chunk imported then). One per
     * page: the first `open` that names one decides.
     */
    wasmUrl?: string | URL;
    /**
     * Whether to load Automerge's WebAssembly in the background about a
     * second after `open`, once the page is idle, so that a page that only
     * read while online can still make changes offline. Defaults to true;
     * false loads it only when a change must be made or merged.
     */
    wasmPreload?: boolean;
    /** Whether to open the live `/v1/events` stream. Defaults to true. */
    live?: boolean;
}
/** Status describes the sync state of an open database, shared by all its tabs. */
export interface Status {
    /** Whether the last exchange with the server reached it (a network failure makes it false). */
    online: boolean;
    /** Whether a sync round is in flight. */
    syncing: boolean;
    /** Local changes not yet acknowledged by the server (counted across all tabs). */
    pending: number;
    /** When the last sync round finished successfully (ms since the epoch), or null. */
    lastSyncAt: number | null;
    /** The last error that stopped a round or a record, or null once a round succeeds cleanly. */
    error: DynamergeError | null;
    /** Records the server refused; their changes stay in the outbox until the cause is fixed. */
    rejected: RejectedRecord[];
    /** Whether this tab is the one that talks to the server. */
    leader: boolean;
}
/** RejectedRecord is a record whose last push the server refused. */
export interface RejectedRecord {
    /** The record's collection. */
    collection: string;
    /** The record's id. */
    id: string;
    /** The server's refusal, with the protocol's code (`gone` for a purged record). */
    error: DynamergeError;
    /**
     * For a purged record (`gone`) whose local changes never reached the
     * server: how many were lost. The record itself is no longer stored.
     */
    unsent?: number;
    /** For a purged record: its last JSON view on this device, so the app can offer to save it. */
    doc?: JSONObject;
}
/** Entry is one record of {@link Collection.list}. */
export interface Entry<T = JSONObject> {
    /** The record's id. */
    id: RecordId;
    /** The record as plain JSON. */
    doc: T;
}
/** ChangeFn mutates an Automerge document proxy; it must be synchronous. */
export type ChangeFn<T> = (doc: T) => void;
/** CreateOptions configures {@link Collection.create}. */
export interface CreateOptions {
    /** Use this id instead of a new UUID (it must match the protocol's id pattern). */
    id?: string;
}
/**
 * Change is one change of a record's history ({@link Collection.history}),
 * with the fields of PROTOCOL.md's `GET …/docs/{id}/changes`.
 */
export interface Change {
    /** The change's hash (64 lowercase hex characters). */
    hash: string;
    /** The Automerge actor that made it, lowercase hex (chosen by the client: it proves nothing). */
    actor: string;
    /** Its sequence number among the actor's changes. */
    seq: number;
    /** The hashes of the changes it came after. */
    deps: string[];
    /** The change's own timestamp in Unix seconds, as Automerge recorded it (0 if none). */
    time: number;
    /** Its message (restore writes one), or null. */
    message: string | null;
    /** How many Automerge operations it holds. */
    ops: number;
    /** The token subject that first pushed it; null without authentication, and for changes the server has not acknowledged. */
    by: string | null;
    /** When the server first accepted it (RFC 3339), or null while it has not. */
    at: string | null;
    /** The change is this device's and the server has not acknowledged it yet. */
    pending: boolean;
}
/** HistoryOptions pages through {@link Collection.history}. Every field is optional. */
export interface HistoryOptions {
    /** The `cursor` of the previous page; omitted for the newest page. */
    before?: string;
    /** Changes per page (the server caps it). Defaults to the server's page size, 100 for local pages. */
    limit?: number;
}
/** HistoryPage is one page of a record's history, newest change first. */
export interface HistoryPage {
    /** The changes of this page, newest first; on the first page, this device's unacknowledged ones come first. */
    changes: Change[];
    /** Pass it as `before` for the next (older) page. */
    cursor: string;
    /** Whether older changes remain. */
    more: boolean;
    /**
     * The page comes from this device's copy, not the server (it could not
     * be reached, or the database syncs nothing): `by` and `at` are null.
     */
    local: boolean;
}
/** Path names a value in a record: map keys and list indexes from the root. */
export type Path = (string | number)[];
/** ConflictValue is one of the concurrent values of a {@link Conflict}. */
export interface ConflictValue {
    /** The value, as plain JSON. */
    value: JSONValue;
    /** The hash of the change that wrote it. */
    hash: string;
    /** Who pushed that change first (from the server's history), or null when unknown. */
    by: string | null;
}
/**
 * Conflict is a map key or list element where concurrent changes left
 * several values (PROTOCOL.md, "Conflicts"); the first value is the one
 * `get` shows.
 */
export interface Conflict {
    path: Path;
    values: ConflictValue[];
}
/** Unsubscribe stops a subscription. */
export type Unsubscribe = () => void;
/**
 * Collection is one collection of records. Calls that name a record this
 * device has never held (`get`, `change`, `delete`, `undelete`, `heads`)
 * ask the server for it first, when the server answers within
 * `requestTimeoutMs`; offline they see only what this device holds.
 *
 * Root keys starting with `$` belong to the protocol (`$deleted` marks a
 * deleted record): they never appear in what `get`, `list`, `deleted` and
 * `subscribe` return, `create` refuses them, and a change function that
 * writes one is refused (`invalid_argument`, nothing is written).
 */
export interface Collection<T extends JSONObject = JSONObject> {
    /** name is the collection's name. */
    readonly name: CollectionName;
    /**
     * create stores a new record and resolves with its id (a new UUID unless
     * given) once it is durable in IndexedDB.
     */
    create(doc: T, options?: CreateOptions): Promise<RecordId>;
    /**
     * change applies an Automerge change function to the record and resolves
     * once the change is durable in IndexedDB. It rejects with `not_found`
     * for a record neither this database nor the server holds, and with
     * `deleted` for a deleted record. A function that changes nothing writes
     * nothing.
     */
    change(id: string, fn: ChangeFn<T>): Promise<void>;
    /**
     * delete marks the record deleted (an Automerge change, so it works
     * offline and merges with concurrent edits, which stay in its history)
     * and resolves once that is durable in IndexedDB. Deleting a deleted
     * record does nothing; an unknown one rejects with `not_found`.
     */
    delete(id: string): Promise<void>;
    /**
     * undelete brings a deleted record back, with every edit made to it
     * meanwhile, and resolves once that is durable in IndexedDB. Undeleting
     * a record that is not deleted does nothing.
     */
    undelete(id: string): Promise<void>;
    /** get resolves with the record as plain JSON (frozen), or undefined when it is unknown or deleted. */
    get(id: string): Promise<T | undefined>;
    /** list resolves with every record of the collection that is not deleted, in id order. */
    list(): Promise<Entry<T>[]>;
    /** deleted resolves with the deleted records this device holds, in id order. */
    deleted(): Promise<Entry<T>[]>;
    /**
     * subscribe calls `fn` with the collection (as {@link list}) once at
     * once and then after every local or remote change, delete and undelete
     * included, also when made in other tabs. It returns the unsubscribe
     * function.
     */
    subscribe(fn: (all: Entry<T>[]) => void): Unsubscribe;
    /** heads resolves with the record's current heads (deleted or not), or undefined. */
    heads(id: string): Promise<string[] | undefined>;
    /**
     * history resolves with one page of the record's changes, newest first,
     * from the server (`GET …/docs/{id}/changes`, with who pushed each and
     * when); the first page starts with this device's changes the server has
     * not acknowledged (`pending`, `by` and `at` null). When the server
     * cannot be reached, or the database was opened with `sync: false`, the
     * page comes from this device's copy (`local: true`). Server refusals
     * (`forbidden`, `not_found`, …) reject with the typed error.
     */
    history(id: string, options?: HistoryOptions): Promise<HistoryPage>;
    /**
     * getAt resolves with the record as it was at `heads` (hashes from
     * {@link heads} or {@link history}), as plain JSON the way `get`
     * returns it: undefined when the record was deleted at that point or is
     * unknown. Heads this device does not hold reject with `invalid_argument`.
     */
    getAt(id: string, heads: string[]): Promise<T | undefined>;
    /**
     * restore makes one local change that turns the record back into its
     * state at `heads` and resolves once it is durable in IndexedDB; it
     * works offline and syncs like any edit. Text is restored by splicing
     * the difference (a concurrent edit of the same text keeps both),
     * counters by incrementing, and `$deleted` too: restoring a version from
     * before a delete undeletes. Nothing of the history is removed;
     * restoring the current state writes nothing.
     */
    restore(id: string, heads: string[]): Promise<void>;
    /**
     * conflicts resolves with every map key and list element of the record
     * that holds concurrent values (reserved keys left out), the shown value
     * first, each with the change that wrote it; `by` comes from the
     * server's history when it can be read, else null. [] when none.
     */
    conflicts(id: string): Promise<Conflict[]>;
    /**
     * resolve settles a conflict by writing `value` at `path` (one change,
     * like `change`): every replica then shows that value alone. Writing
     * the key in an ordinary change resolves it too.
     */
    resolve(id: string, path: Path, value: JSONValue): Promise<void>;
}
