/**
 * Ids: the protocol's patterns for collection names and record ids
 * (PROTOCOL.md), with the guards that turn a string into the branded type
 * and the checks that throw an `invalid_id` error instead.
 */
import { InvalidIdError } from "./errors.js";
import { COLLECTION_PATTERN as collectionPattern, ID_PATTERN as idPattern } from "./protocol.gen.js";
import type { CollectionName, RecordId } from "./types.js";

/** isCollectionName tells whether `s` matches `^[a-z0-9][a-z0-9_-]{0,63}$`. */
export function isCollectionName(s: unknown): s is CollectionName {
  return typeof s === "string" && collectionPattern.test(s);
}

/** isRecordId tells whether `s` matches `^[A-Za-z0-9_-]{1,128}$`. */
export function isRecordId(s: unknown): s is RecordId {
  return typeof s === "string" && idPattern.test(s);
}

/** collectionName returns `s` as a {@link CollectionName}, or throws an `invalid_id` error. */
export function collectionName(s: unknown): CollectionName {
  if (!isCollectionName(s)) {
    throw new InvalidIdError(`dynamerge: collection name ${JSON.stringify(s)} does not match ${collectionPattern}`);
  }
  return s;
}

/** recordId returns `s` as a {@link RecordId}, or throws an `invalid_id` error. */
export function recordId(s: unknown): RecordId {
  if (!isRecordId(s)) {
    throw new InvalidIdError(`dynamerge: id ${JSON.stringify(s)} does not match ${idPattern}`);
  }
  return s;
}
