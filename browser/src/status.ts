/**
 * Status: the `db.status` of one tab, put together from the sync loop's
 * report (this tab's loop, or the leader's as another tab relays it), the
 * outbox count and the refused records (both read from IndexedDB, so every
 * tab counts what all tabs wrote), and whether this tab leads.
 */
import { deepFreeze } from "./collection.js";
import { toDynamergeError } from "./errors.js";
import type { Records } from "./records.js";
import { report } from "./report.js";
import type { LoopStatus } from "./sync.js";
import type { RejectedRecord, Status, Unsubscribe } from "./types.js";

/** StatusBoard keeps the current {@link Status} and calls its listeners on every change. */
export class StatusBoard {
  private readonly records: Records;
  private readonly leading: () => boolean;
  private readonly listeners = new Set<(s: Status) => void>();
  private loopStatus: LoopStatus = { online: false, syncing: false, lastSyncAt: null, error: null };
  private pending = 0;
  private rejected: RejectedRecord[] = [];
  private current: Status;
  private closed = false;
  // recount's state: a count in flight, another one asked for meanwhile,
  // and whether that one must read the refusals too.
  private counting = false;
  private countAgain = false;
  private recountRejected = false;

  /** `leading` tells whether this tab runs the sync loop. */
  constructor(records: Records, leading: () => boolean) {
    this.records = records;
    this.leading = leading;
    this.current = this.compose();
  }

  /** load reads the counts from IndexedDB and publishes them. */
  async load(): Promise<void> {
    this.pending = await this.records.pending();
    await this.readRejected();
    this.publish();
  }

  /** status is the current status (a new frozen object after every change). */
  get status(): Status {
    return this.current;
  }

  /** loop is the sync loop's part of the status, as last reported. */
  get loop(): LoopStatus {
    return this.loopStatus;
  }

  /** reachable tells whether the server answered the last exchange, or no exchange has failed yet. */
  reachable(): boolean {
    return this.current.online || this.loopStatus.error === null;
  }

  /** onStatus calls `fn` on every change; it returns the unsubscribe function. */
  onStatus(fn: (s: Status) => void): Unsubscribe {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** setLoop takes the sync loop's report. */
  setLoop(s: LoopStatus): void {
    this.loopStatus = s;
    this.publish();
  }

  /**
   * localWrite counts a local change at once, so that `status.pending` is
   * right when `create` or `change` resolves; {@link recount} confirms it.
   */
  localWrite(): void {
    this.pending++;
    this.publish();
  }

  /**
   * recount refreshes the pending count (and, when asked, the refusals)
   * from IndexedDB. Calls while a count is in flight are folded into one
   * more count after it: that count may have read before the latest write
   * committed.
   */
  recount(rejectedToo: boolean): void {
    if (this.closed) return;
    this.recountRejected ||= rejectedToo;
    if (this.counting) {
      this.countAgain = true;
      return;
    }
    this.counting = true;
    void (async () => {
      try {
        do {
          this.countAgain = false;
          const rejected = this.recountRejected;
          this.recountRejected = false;
          this.pending = await this.records.pending();
          if (rejected) await this.readRejected();
          this.publish();
        } while (this.countAgain && !this.closed);
      } catch (err) {
        if (!this.closed) report(err);
      } finally {
        this.counting = false;
      }
    })();
  }

  /** hasRejected tells whether any record is refused now (a write may have cleared it). */
  hasRejected(): boolean {
    return this.rejected.length > 0;
  }

  /** publish recomposes the status and calls the listeners when it changed. */
  publish(): void {
    const next = this.compose();
    const prev = this.current;
    if (
      prev.online === next.online &&
      prev.syncing === next.syncing &&
      prev.pending === next.pending &&
      prev.lastSyncAt === next.lastSyncAt &&
      prev.error === next.error &&
      prev.rejected === next.rejected &&
      prev.leader === next.leader
    ) {
      return;
    }
    this.current = next;
    for (const fn of this.listeners) {
      try {
        fn(next);
      } catch (err) {
        report(err);
      }
    }
  }

  /** close stops counting. */
  close(): void {
    this.closed = true;
  }

  private async readRejected(): Promise<void> {
    const rows = await this.records.rejected();
    const purged = await this.records.purgeReports();
    this.rejected = [
      ...rows.map((r): RejectedRecord => ({ collection: r.collection, id: r.id, error: toDynamergeError(r.error!) })),
      ...purged.map(
        (p): RejectedRecord => ({
          collection: p.collection,
          id: p.id,
          error: toDynamergeError(p.error),
          unsent: p.unsent,
          doc: deepFreeze(p.json),
        }),
      ),
    ];
  }

  private compose(): Status {
    return Object.freeze({
      online: this.loopStatus.online,
      syncing: this.loopStatus.syncing,
      pending: this.pending,
      lastSyncAt: this.loopStatus.lastSyncAt,
      error: this.loopStatus.error ?? this.rejected[0]?.error ?? null,
      rejected: this.rejected,
      leader: this.leading(),
    });
  }
}
