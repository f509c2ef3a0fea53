/**
 * useHistory: a record's change history, as the server answers
 * `GET /v1/collections/{collection}/docs/{id}/changes` (PROTOCOL.md), read
 * through `collection.history(id, { limit })` when the library has it. The
 * hook checks for the method at run time, so it works — answering
 * `unsupported` — with a library that does not have it yet.
 */
import { useEffect, useMemo, useSyncExternalStore } from "react";
import type { Collection, JSONObject } from "../index.js";
import { useRecord } from "./hooks.js";
import { useProviderState } from "./provider.js";

/** HistoryChange is one change of a record's history, as PROTOCOL.md describes it. */
export interface HistoryChange {
  /** hash is the change's hash (64 lowercase hex characters). */
  hash: string;
  /** actor is the Automerge actor id (lowercase hex); chosen by a client, it proves nothing. */
  actor: string;
  /** seq is the change's sequence number among its actor's changes. */
  seq: number;
  /** deps are the hashes of the changes it depends on. */
  deps: string[];
  /** time is the change's own timestamp (Unix seconds; 0 if none). */
  time: number;
  /** message is the change's message, or null. */
  message: string | null;
  /** ops is how many operations it holds. */
  ops: number;
  /** by is the token subject that first pushed it (null without authentication): the server's word. */
  by: string | null;
  /** at is when the server first accepted it (RFC 3339): the server's word. */
  at: string;
}

/** HistoryPage is one page of history, newest first. */
export interface HistoryPage {
  changes: HistoryChange[];
  /** cursor continues after this page (the request's `before`). */
  cursor: string;
  /** more says whether older changes remain. */
  more: boolean;
}

/** HistoryOptions configures {@link useHistory}. */
export interface HistoryOptions {
  /** limit is how many of the newest changes to read. Defaults to the server's page size. */
  limit?: number;
}

/**
 * HistoryState is what {@link useHistory} returns: `loading` until the
 * first page arrives; `ready` with the newest changes first (kept on
 * screen while a newer page is read after the record changed);
 * `unsupported` when the browser library has no `collection.history`;
 * `error` when the server could not be asked (offline, say).
 */
export type HistoryState =
  | { readonly status: "loading"; readonly changes: undefined }
  | { readonly status: "ready"; readonly changes: readonly HistoryChange[]; readonly more: boolean }
  | { readonly status: "unsupported"; readonly changes: undefined }
  | { readonly status: "error"; readonly changes: undefined; readonly error: unknown };

/**
 * HistoryMethod is the signature useHistory expects of `collection.history`.
 * It accepts an answer that is a page or a bare list of changes.
 */
export type HistoryMethod = (id: string, options?: { limit?: number; before?: string }) => Promise<HistoryPage | HistoryChange[]>;

const LOADING: HistoryState = Object.freeze({ status: "loading", changes: undefined });
const UNSUPPORTED: HistoryState = Object.freeze({ status: "unsupported", changes: undefined });

/** historyMethod returns the collection's history method, or undefined when the library lacks one. */
export function historyMethod(col: Collection<JSONObject>): HistoryMethod | undefined {
  const m = (col as unknown as { history?: unknown }).history;
  return typeof m === "function" ? (m.bind(col) as HistoryMethod) : undefined;
}

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
    private readonly history: HistoryMethod | undefined,
    private readonly id: string,
    private readonly limit: number | undefined,
  ) {
    if (!history) this.state = UNSUPPORTED;
  }

  subscribe = (onChange: () => void): (() => void) => {
    this.listeners.add(onChange);
    return () => this.listeners.delete(onChange);
  };

  getSnapshot = (): HistoryState => this.state;

  /** refresh reads the history now, or once more after the read in flight. */
  refresh(): void {
    if (!this.history || this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.history(this.id, this.limit === undefined ? undefined : { limit: this.limit }).then(
      (page) => {
        const changes = Array.isArray(page) ? page : page.changes;
        const more = Array.isArray(page) ? false : page.more;
        this.done(Object.freeze({ status: "ready", changes: Object.freeze([...changes]), more }));
      },
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
 * read is in flight cost one more read, not one each). It needs the
 * server: offline it answers `error`.
 */
export function useHistory(collection: string, id: string, options: HistoryOptions = {}): HistoryState {
  const { db } = useProviderState("useHistory");
  const limit = options.limit;
  const reader = useMemo(
    () => (db ? new HistoryReader(historyMethod(db.collection(collection)), id, limit) : undefined),
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
