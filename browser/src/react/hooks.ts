/**
 * The hooks that read records and status. Each reads a shared store (see
 * stores.ts) through useSyncExternalStore, so a component re-renders only
 * when what it reads changes. On a server, and until the provider's
 * database is open, they report loading and touch nothing.
 */
import { useSyncExternalStore } from "react";
import type { Entry, JSONObject, Status, Unsubscribe } from "../index.js";
import { useProviderState } from "./provider.js";
import { LOADING, collectionStore, recordStore, statusStore } from "./stores.js";
import type { RecordState } from "./stores.js";

const noSubscribe = (): Unsubscribe => () => {};
const nothing = (): undefined => undefined;
const loading = (): RecordState<never> => LOADING;

/**
 * useCollection returns the records of a collection that are not deleted,
 * in id order (as `collection.list()`), or undefined while loading. It
 * re-renders the component when a record of this collection is created,
 * changed, deleted or undeleted — here, in another tab, or by sync — and
 * not when another collection changes. A name outside the protocol's
 * pattern throws the library's `invalid_id` error.
 */
export function useCollection<T extends JSONObject = JSONObject>(name: string): readonly Entry<T>[] | undefined {
  const { db } = useProviderState("useCollection");
  const store = db ? collectionStore<T>(db, name) : undefined;
  return useSyncExternalStore(store?.subscribe ?? noSubscribe, store?.getSnapshot ?? nothing, nothing);
}

/**
 * useRecord returns one record's state (see {@link RecordState}): `ready`
 * with its plain JSON, `loading` while a record this device has never held
 * is fetched from the server, `missing` when it does not exist (or is
 * deleted), `error` when the lookup failed. The component re-renders only
 * when this record's state changes, not for other records of its
 * collection.
 */
export function useRecord<T extends JSONObject = JSONObject>(collection: string, id: string): RecordState<T> {
  const { db } = useProviderState("useRecord");
  const store = db ? recordStore<T>(db, collection, id) : undefined;
  return useSyncExternalStore<RecordState<T>>(store?.subscribe ?? noSubscribe, store?.getSnapshot ?? loading, loading);
}

/**
 * useStatus returns the database's sync status (`db.status`), or undefined
 * while it opens and on a server; it re-renders on every status change.
 */
export function useStatus(): Status | undefined {
  const { db } = useProviderState("useStatus");
  const store = db ? statusStore(db) : undefined;
  return useSyncExternalStore(store?.subscribe ?? noSubscribe, store?.getSnapshot ?? nothing, nothing);
}
