/**
 * Retry delays: exponential backoff with jitter, and the server's
 * Retry-After honoured as a floor.
 */

/** Backoff computes retry delays; {@link reset} after a success. */
export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(initialMs: number, maxMs: number, random: () => number = Math.random) {
    this.initialMs = Math.max(1, initialMs);
    this.maxMs = Math.max(this.initialMs, maxMs);
    this.random = random;
  }

  /**
   * next returns the delay before the next attempt: a random point in the
   * upper half of min(max, initial·2^attempt) ("equal jitter", so tabs and
   * devices that failed together do not retry together, yet no retry comes
   * right away), and never less than `retryAfterMs` when the server gave it.
   */
  next(retryAfterMs?: number): number {
    const cap = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    const d = cap / 2 + this.random() * (cap / 2);
    return Math.round(retryAfterMs !== undefined ? Math.max(retryAfterMs, d) : d);
  }

  /** reset starts over from the initial delay. */
  reset(): void {
    this.attempt = 0;
  }

  /** failures is how many delays were taken since the last reset. */
  get failures(): number {
    return this.attempt;
  }
}
