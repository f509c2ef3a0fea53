/**
 * Leader election: of the tabs that share one IndexedDB database, the one
 * holding the Web Lock `dynamerge:<name>:sync` runs the sync loop. The lock
 * is held until the tab closes; then the browser grants it to another
 * waiting tab, which takes over.
 */
import type { LockManagerLike } from "./types.js";

/** Election waits for the sync lock on behalf of one tab. */
export class Election {
  private readonly locks: LockManagerLike | null;
  private readonly name: string;
  private readonly abort = new AbortController();
  private release: (() => void) | undefined;
  private closed = false;

  /** `locks` null means no Web Locks here: then this tab leads at once. */
  constructor(locks: LockManagerLike | null, name: string) {
    this.locks = locks;
    this.name = name;
  }

  /** start calls `lead` once this tab holds the lock (never after close). */
  start(lead: () => void): void {
    if (!this.locks) {
      // No Web Locks (Node, old browsers): nothing can coordinate the
      // instances, so each one syncs (the server takes duplicates in stride).
      lead();
      return;
    }
    this.locks
      .request(`dynamerge:${this.name}:sync`, { mode: "exclusive", signal: this.abort.signal }, () => {
        if (this.closed) return Promise.resolve();
        lead();
        return new Promise<void>((r) => (this.release = r));
      })
      .catch(() => {
        // Aborted by close() before the lock was granted.
      });
  }

  /** close gives the lock up, or stops waiting for it. Idempotent. */
  close(): void {
    this.closed = true;
    this.abort.abort();
    this.release?.();
  }
}
