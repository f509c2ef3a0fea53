/**
 * Tabs: what the tabs sharing one IndexedDB database tell each other on the
 * BroadcastChannel `dynamerge:<name>` — which records they wrote (so every
 * tab's views and subscriptions update at once), the leader's sync status,
 * the collections opened, and `sync()` calls made in a tab that does not
 * sync, which the leader runs and answers.
 */
import { ClosedError, DynamergeError, toDynamergeError, type SerializedError } from "./errors.js";
import type { LoopStatus } from "./sync.js";

/** Message is what one tab tells the others. */
export type Message =
  /** Records written (or purged) in IndexedDB; `local` for the app's own changes. */
  | { t: "rows"; keys: [string, string][]; local: boolean }
  /** The leader's sync status. */
  | { t: "status"; s: WireStatus }
  /** A tab opened: the leader answers with its status. */
  | { t: "hello" }
  /** The app opened a collection, which is followed from now on. */
  | { t: "collection"; c: string }
  /** A `sync()` call for the leader to run; `rid` names the answer. */
  | { t: "sync"; rid: string }
  /** The leader's answer to a `sync` message. */
  | { t: "synced"; rid: string; error?: SerializedError };

/** WireStatus is a {@link LoopStatus} as it travels between tabs. */
export interface WireStatus {
  online: boolean;
  syncing: boolean;
  lastSyncAt: number | null;
  error: SerializedError | null;
}

/** toWire is the form of a loop status that another tab can receive. */
export function toWire(s: LoopStatus): WireStatus {
  return { online: s.online, syncing: s.syncing, lastSyncAt: s.lastSyncAt, error: s.error ? s.error.toJSON() : null };
}

/** fromWire rebuilds a loop status another tab sent. */
export function fromWire(s: WireStatus): LoopStatus {
  return { ...s, error: s.error ? toDynamergeError(s.error) : null };
}

/** serialize is how a `sync()` failure travels back to the tab that asked. */
export function serialize(err: unknown): SerializedError {
  return err instanceof DynamergeError ? err.toJSON() : { code: "internal", message: String(err) };
}

type Envelope = Message & { from: string };

function isEnvelope(m: unknown): m is Envelope {
  return (
    typeof m === "object" &&
    m !== null &&
    typeof (m as { t?: unknown }).t === "string" &&
    typeof (m as { from?: unknown }).from === "string"
  );
}

/**
 * Tabs is this tab's end of the channel. Where BroadcastChannel does not
 * exist, posting does nothing and nothing arrives.
 */
export class Tabs {
  /** id names this tab in what it posts; its own messages never come back to it. */
  readonly id = crypto.randomUUID();
  private readonly channel: BroadcastChannel | undefined;
  private closed = false;

  constructor(name: string, onMessage: (m: Message) => void) {
    if (typeof BroadcastChannel === "function") {
      this.channel = new BroadcastChannel(`dynamerge:${name}`);
      this.channel.onmessage = (ev: MessageEvent) => {
        if (isEnvelope(ev.data) && ev.data.from !== this.id) onMessage(ev.data);
      };
    }
  }

  /** post tells the other tabs. After close only `rows` still go out (writes in flight finish). */
  post(m: Message): void {
    if (this.closed && m.t !== "rows") return;
    try {
      this.channel?.postMessage({ ...m, from: this.id });
    } catch {
      // The channel is closed: this tab is closing.
    }
  }

  close(): void {
    this.closed = true;
    this.channel?.close();
  }
}

/** How often a `sync()` asks the leader again while no answer comes. */
const ASK_AGAIN_MS = 5000;

/**
 * RemoteSyncs are the `sync()` calls of a tab that does not sync, waiting
 * for the leader's answer. A call asks again while no answer comes: the
 * leader may close and hand the lock to a tab that never heard it, or to
 * this tab, which then runs the sync itself.
 */
export class RemoteSyncs {
  private readonly waiting = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();

  /**
   * run asks the leader (through `ask`) until it answers, or until `local`
   * returns a sync this tab runs now that it leads.
   */
  run(ask: (rid: string) => void, local: () => Promise<void> | undefined): Promise<void> {
    const rid = crypto.randomUUID();
    return new Promise<void>((resolve, reject) => {
      const tryOnce = () => {
        const mine = local();
        if (mine) {
          clearInterval(timer);
          this.waiting.delete(rid);
          mine.then(resolve, reject);
          return;
        }
        ask(rid);
      };
      const timer = setInterval(tryOnce, ASK_AGAIN_MS);
      this.waiting.set(rid, {
        resolve: () => {
          clearInterval(timer);
          resolve();
        },
        reject: (e) => {
          clearInterval(timer);
          reject(e);
        },
      });
      tryOnce();
    });
  }

  /** answer settles the call `rid` with the leader's answer (nothing when it is not this tab's). */
  answer(rid: string, error: SerializedError | undefined): void {
    const w = this.waiting.get(rid);
    if (!w) return;
    this.waiting.delete(rid);
    if (error) w.reject(toDynamergeError(error));
    else w.resolve();
  }

  /** close rejects every waiting call with a `closed` error. */
  close(): void {
    for (const w of this.waiting.values()) w.reject(new ClosedError());
    this.waiting.clear();
  }
}
