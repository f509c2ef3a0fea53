/**
 * Errors the library reports: one class, {@link DynamergeError}, keyed by
 * `code` (one of {@link ERROR_CODES}). A few codes also have a subclass, for
 * `instanceof`; `toDynamergeError` is the one place that picks it.
 */

import { PROTOCOL_CODES } from "./protocol.gen.js";

/**
 * ERROR_CODES lists every `code` a {@link DynamergeError} can have: first
 * the protocol's (PROTOCOL.md; what the server answers), then the library's
 * own for what happened on this side. It is the one list: {@link ErrorCode}
 * is derived from it, and unknown server codes are checked against it. The
 * protocol's part is generated from the server's Go package protocol
 * (protocol.gen.ts), so the two cannot drift.
 */
export const ERROR_CODES = [
  ...PROTOCOL_CODES,
  "network",
  "bad_response",
  "closed",
  "invalid_argument",
] as const;
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

// subclasses makes the typed error of the codes that have a subclass.
const subclasses: { readonly [C in ErrorCode]?: (message: string, details: ErrorDetails) => DynamergeError } = {
  network: (m, d) => new NetworkError(m, d),
  unauthorized: (m, d) => new UnauthorizedError(m, d),
  forbidden: (m, d) => new ForbiddenError(m, d),
  invalid_change: (m, d) => new InvalidChangeError(m, d),
  too_large: (m, d) => new TooLargeError(m, d),
  invalid_id: (m, d) => new InvalidIdError(m, d),
  unavailable: (m, d) => new UnavailableError("unavailable", m, d),
  rate_limited: (m, d) => new UnavailableError("rate_limited", m, d),
  closed: (m) => new ClosedError(m),
};

/** @internal toDynamergeError rebuilds the typed error from its serialized form (or from a protocol error body). */
export function toDynamergeError(e: SerializedError): DynamergeError {
  const details: ErrorDetails = {
    status: e.status,
    collection: e.collection,
    id: e.id,
    retryAfterMs: e.retryAfterMs,
  };
  const code = knownCode(e.code);
  return subclasses[code]?.(e.message, details) ?? new DynamergeError(code, e.message, details);
}

const codes: ReadonlySet<string> = new Set<string>(ERROR_CODES);

// knownCode keeps an unknown server code visible instead of dropping the
// error: it becomes "bad_response" only when the code is not one we know,
// and the message says what the server sent.
function knownCode(code: string): ErrorCode {
  return codes.has(code) ? (code as ErrorCode) : "bad_response";
}
