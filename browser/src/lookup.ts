/**
 * Lookup reads a record this device has never held from the server, on
 * demand: `get`, `change`, `delete`, `undelete` and `heads` of an unknown id
 * ask the server first (one `POST /v1/sync` pull, bounded by the request
 * timeout), so that an app does not depend on the feed having been read.
 * Offline (the request cannot reach the server, or the last exchange
 * already failed) a lookup finds nothing, and the call behaves as if the
 * record did not exist.
 *
 * Any tab looks up by itself: it is one request the app asked for, not a
 * loop that every tab would run twice.
 */
import * as A from "@automerge/automerge/slim";
import { DynamergeError, isDynamergeError, toDynamergeError, type ErrorCode, type SerializedError } from "./errors.js";
import type { Client, SyncDocResponse } from "./http.js";
import { fromBase64 } from "./plain.js";
import { key, type Records, type Write } from "./records.js";

/** LookupHost is what a lookup needs from the database. */
export interface LookupHost {
  readonly records: Records;
  /** applied tells the app (and the other tabs) about a record the lookup wrote. */
  applied(writes: Write[]): void;
  /** purge drops a record the server says was purged. */
  purge(c: string, i: string, err: DynamergeError): Promise<boolean>;
  /** reachable tells whether asking the server makes sense now (false after a failed exchange). */
  reachable(): boolean;
}

/**
 * unreachable holds the failures that mean "the server cannot answer now":
 * a lookup then finds nothing, as offline, and a history falls back to this
 * device's copy.
 */
export const unreachable: ReadonlySet<ErrorCode> = new Set<ErrorCode>(["network", "unavailable", "rate_limited"]);

/** Lookup fetches unknown records from the server. */
export class Lookup {
  private readonly host: LookupHost;
  private readonly client: Client;
  private readonly signal: AbortSignal;
  // One request per record at a time: concurrent calls share it.
  private readonly inflight = new Map<string, Promise<void>>();

  constructor(host: LookupHost, client: Client, signal: AbortSignal) {
    this.host = host;
    this.client = client;
    this.signal = signal;
  }

  /**
   * fetch pulls the record from the server into IndexedDB. It resolves
   * when the record is stored, when the server does not have it, and when
   * the server cannot be reached; it rejects with the server's refusal
   * (`forbidden`, `unauthorized`, …).
   */
  fetch(c: string, i: string): Promise<void> {
    if (!this.host.reachable()) return Promise.resolve();
    const k = key(c, i);
    let p = this.inflight.get(k);
    if (!p) {
      p = this.fetchNow(c, i, true).finally(() => this.inflight.delete(k));
      this.inflight.set(k, p);
    }
    return p;
  }

  private async fetchNow(c: string, i: string, retry: boolean): Promise<void> {
    let a: SyncDocResponse;
    try {
      [a] = (await this.client.sync([{ collection: c, id: i, have: [] }], this.signal)) as [SyncDocResponse];
    } catch (err) {
      if (!isDynamergeError(err)) throw err;
      if (unreachable.has(err.code)) return;
      if (err.code === "unauthorized" && retry && this.client.refreshToken()) return this.fetchNow(c, i, false);
      throw err;
    }
    if (a.error) {
      const e = toDynamergeError({
        code: a.error.code as SerializedError["code"],
        message: `dynamerge: ${c}/${i}: ${a.error.code}: ${a.error.message}`,
        collection: c,
        id: i,
      });
      if (e.code === "gone") {
        await this.host.purge(c, i, e);
        return;
      }
      throw e;
    }
    if (!a.changes) return; // The server has no such record.
    let bytes: Uint8Array;
    try {
      bytes = fromBase64(a.changes);
    } catch (err) {
      throw new DynamergeError("bad_response", `dynamerge: ${c}/${i}: the server sent changes that are not base64`, { collection: c, id: i, cause: err });
    }
    let w: Write;
    try {
      w = await this.host.records.update(c, i, (doc) => ({
        doc: A.loadIncremental(doc ?? A.init<unknown>(), bytes),
        server: a.heads,
      }));
    } catch (err) {
      if (isDynamergeError(err)) throw err;
      throw new DynamergeError("bad_response", `dynamerge: ${c}/${i}: cannot apply the server's changes: ${String(err)}`, { collection: c, id: i, cause: err });
    }
    this.host.applied([w]);
  }
}
