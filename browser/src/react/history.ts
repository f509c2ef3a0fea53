/**
 * useHistory: a record's change history through `collection.history(id,
 * { limit })`: the server's `GET /v1/collections/{collection}/docs/{id}/changes`
 * (PROTOCOL.md) after this device's unacknowledged changes, or this
 * device's copy when the server cannot be reached.
 */
import { useEffect, useMemo, useSyncExternalStore } from "react";
import type { Change, Collection, JSONObject } from "../index.js";
import { useRecord } from "./hooks.js";
import { useProviderState } from "./provider.js";

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
export type HistoryState =
  | { readonly status: "loading"; readonly changes: undefined }
  | { readonly status: "ready"; readonly changes: readonly Change[]; readonly more: boolean; readonly local: boolean }
  | { readonly status: "error"; readonly changes: undefined; readonly error: unknown };

const LOADING: HistoryState = Object.freeze({ status: "loading", changes: undefined });

/**
 * HistoryReader reads one record's history for one component: at most one
 * request in flight, and when the record changes meanwhile, one more after
 * it (not one per change: typing in a text field makes a change per key).
 */
class HistoryReader {
  private state: HistoryState = LOADING;
  private running = false;
  private again = false;
  private closed = false;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly col: Collection<JSONObject> | undefined,
    private readonly id: string,
    private readonly limit: number | undefined,
  ) {}

  subscribe = (onChange: () => void): (() => void) => {
    this.listeners.add(onChange);
    return () => this.listeners.delete(onChange);
  };

  getSnapshot = (): HistoryState => this.state;

  /** refresh reads the history now, or once more after the read in flight. */
  refresh(): void {
    if (!this.col || this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.col.history(this.id, this.limit === undefined ? undefined : { limit: this.limit }).then(
      (page) => this.done(Object.freeze({ status: "ready", changes: Object.freeze([...page.changes]), more: page.more, local: page.local })),
      (error: unknown) => this.done(Object.freeze({ status: "error", changes: undefined, error })),
    );
  }

  // open and close follow the component's effects: Strict Mode closes and
  // opens the same reader again, which must keep working.
  open(): void {
    this.closed = false;
  }

  close(): void {
    this.closed = true;
  }

  private done(state: HistoryState): void {
    this.running = false;
    if (this.closed) return;
    this.state = state;
    for (const fn of this.listeners) fn();
    if (this.again) {
      this.again = false;
      this.refresh();
    }
  }
}

const noReader = new HistoryReader(undefined, "", undefined);
const loading = (): HistoryState => LOADING;

/**
 * useHistory returns the record's history, newest first, and reads it
 * again whenever the record changes (here or by sync; changes made while a
 * read is in flight cost one more read, not one each). Offline it shows
 * this device's copy (`local`).
 */
export function useHistory(collection: string, id: string, options: UseHistoryOptions = {}): HistoryState {
  const { db } = useProviderState("useHistory");
  const limit = options.limit;
  const reader = useMemo(
    () => (db ? new HistoryReader(db.collection(collection), id, limit) : undefined),
    [db, collection, id, limit],
  );
  useEffect(() => {
    reader?.open();
    return () => reader?.close();
  }, [reader]);
  // The record's doc changes identity exactly when the record changes.
  const { doc } = useRecord(collection, id);
  useEffect(() => reader?.refresh(), [reader, doc]);
  const r = reader ?? noReader;
  const state = useSyncExternalStore(r.subscribe, r.getSnapshot, loading);
  return reader ? state : LOADING;
}
