// Code generated from the Go package protocol (go test ./protocol -update). DO NOT EDIT.

/** PROTOCOL_CODES lists every error code the server sends. */
export const PROTOCOL_CODES = [
  "bad_request",
  "conflict",
  "deleted",
  "forbidden",
  "gone",
  "internal",
  "invalid_change",
  "invalid_id",
  "method_not_allowed",
  "missing_deps",
  "not_found",
  "precondition_failed",
  "rate_limited",
  "too_large",
  "unauthorized",
  "unavailable",
] as const;

/** ProtocolCode is one of PROTOCOL_CODES. */
export type ProtocolCode = (typeof PROTOCOL_CODES)[number];

/** DOC_CODES lists the codes of per-record errors in a sync answer. */
export const DOC_CODES = ["forbidden", "gone", "invalid_change", "missing_deps", "too_large"] as const;

const STATUS_CODES: Readonly<Record<number, ProtocolCode>> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  408: "bad_request",
  409: "conflict",
  410: "gone",
  412: "precondition_failed",
  413: "too_large",
  429: "rate_limited",
  500: "internal",
  502: "unavailable",
  503: "unavailable",
  504: "unavailable",
};

/**
 * codeOfStatus is the code of an error answer whose body is not the
 * protocol's (a proxy's page): its status's code, or internal for other
 * 5xx, bad_request for other 4xx.
 */
export function codeOfStatus(status: number): ProtocolCode {
  return STATUS_CODES[status] ?? (status >= 500 ? "internal" : "bad_request");
}

/** Patterns of collection names, record ids and change hashes. */
export const COLLECTION_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
export const HASH_PATTERN = /^[0-9a-f]{64}$/;
