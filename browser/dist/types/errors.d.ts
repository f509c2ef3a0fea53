/**
 * Errors the library reports. Every error carries a `code`: the protocol's
 * own codes (PROTOCOL.md) for what the server said, and three of the
 * library's for what happened on this side.
 */
/**
 * ErrorCode is every `code` a {@link DynamergeError} can have. The first
 * group comes from the server (PROTOCOL.md); `network`, `bad_response`,
 * `closed` and `invalid_argument` are the library's own.
 */
export type ErrorCode = "bad_request" | "invalid_id" | "invalid_change" | "missing_deps" | "too_large" | "forbidden" | "unauthorized" | "not_found" | "deleted" | "gone" | "rate_limited" | "unavailable" | "internal" | "network" | "bad_response" | "closed" | "invalid_argument";
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
/** toDynamergeError rebuilds the typed error from its serialized form (or from a protocol error body). */
export declare function toDynamergeError(e: SerializedError): DynamergeError;
