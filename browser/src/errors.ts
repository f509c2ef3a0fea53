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
export type ErrorCode =
  | "bad_request"
  | "invalid_id"
  | "invalid_change"
  | "missing_deps"
  | "too_large"
  | "forbidden"
  | "unauthorized"
  | "not_found"
  | "deleted"
  | "gone"
  | "rate_limited"
  | "unavailable"
  | "internal"
  | "network"
  | "bad_response"
  | "closed"
  | "invalid_argument";

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
export class DynamergeError extends Error {
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

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "DynamergeError";
    this.code = code;
    this.status = details.status;
    this.collection = details.collection;
    this.id = details.id;
    this.retryAfterMs = details.retryAfterMs;
  }

  /** toJSON keeps the code when the error is logged or posted to another tab. */
  toJSON(): SerializedError {
    return {
      code: this.code,
      message: this.message,
      status: this.status,
      collection: this.collection,
      id: this.id,
      retryAfterMs: this.retryAfterMs,
    };
  }
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
export class NetworkError extends DynamergeError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("network", message, details);
    this.name = "NetworkError";
  }
}

/** UnauthorizedError: `401 unauthorized`, the token is missing or wrong. */
export class UnauthorizedError extends DynamergeError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("unauthorized", message, details);
    this.name = "UnauthorizedError";
  }
}

/** ForbiddenError: `forbidden`, the token may not read or write that collection. */
export class ForbiddenError extends DynamergeError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("forbidden", message, details);
    this.name = "ForbiddenError";
  }
}

/** InvalidChangeError: `invalid_change`, the server refused the record's change bytes. */
export class InvalidChangeError extends DynamergeError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("invalid_change", message, details);
    this.name = "InvalidChangeError";
  }
}

/** TooLargeError: `too_large`, a change, a record or a request is over the server's limits. */
export class TooLargeError extends DynamergeError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("too_large", message, details);
    this.name = "TooLargeError";
  }
}

/** InvalidIdError: `invalid_id`, a collection or id does not match the protocol's pattern. */
export class InvalidIdError extends DynamergeError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("invalid_id", message, details);
    this.name = "InvalidIdError";
  }
}

/** UnavailableError: `503 unavailable` or `429 rate_limited`; the library retries after `retryAfterMs`. */
export class UnavailableError extends DynamergeError {
  constructor(code: "unavailable" | "rate_limited", message: string, details: ErrorDetails = {}) {
    super(code, message, details);
    this.name = "UnavailableError";
  }
}

/** ClosedError: the database was closed while the call was pending, or used after close. */
export class ClosedError extends DynamergeError {
  constructor(message = "dynamerge: database is closed") {
    super("closed", message);
    this.name = "ClosedError";
  }
}

/**
 * isDynamergeError tells whether `err` is a {@link DynamergeError}, and when
 * `code` is given, whether it has that code.
 */
export function isDynamergeError(err: unknown, code?: ErrorCode): err is DynamergeError {
  return err instanceof DynamergeError && (code === undefined || err.code === code);
}

/** toDynamergeError rebuilds the typed error from its serialized form (or from a protocol error body). */
export function toDynamergeError(e: SerializedError): DynamergeError {
  const details: ErrorDetails = {
    status: e.status,
    collection: e.collection,
    id: e.id,
    retryAfterMs: e.retryAfterMs,
  };
  switch (e.code) {
    case "network":
      return new NetworkError(e.message, details);
    case "unauthorized":
      return new UnauthorizedError(e.message, details);
    case "forbidden":
      return new ForbiddenError(e.message, details);
    case "invalid_change":
      return new InvalidChangeError(e.message, details);
    case "too_large":
      return new TooLargeError(e.message, details);
    case "invalid_id":
      return new InvalidIdError(e.message, details);
    case "unavailable":
    case "rate_limited":
      return new UnavailableError(e.code, e.message, details);
    case "closed":
      return new ClosedError(e.message);
    default:
      return new DynamergeError(knownCode(e.code), e.message, details);
  }
}

const codes: ReadonlySet<string> = new Set<ErrorCode>([
  "bad_request",
  "invalid_id",
  "invalid_change",
  "missing_deps",
  "too_large",
  "forbidden",
  "unauthorized",
  "not_found",
  "deleted",
  "gone",
  "rate_limited",
  "unavailable",
  "internal",
  "network",
  "bad_response",
  "closed",
  "invalid_argument",
]);

// knownCode keeps an unknown server code visible instead of dropping the
// error: it becomes "bad_response" only when the code is not a string we know,
// and the message says what the server sent.
function knownCode(code: string): ErrorCode {
  return codes.has(code) ? (code as ErrorCode) : "bad_response";
}
