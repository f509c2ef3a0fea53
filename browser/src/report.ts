/**
 * report surfaces an error no caller can receive (a subscriber that threw,
 * a failed background read) instead of dropping it.
 */
export function report(err: unknown): void {
  const r = (globalThis as { reportError?: (e: unknown) => void }).reportError;
  if (typeof r === "function") r(err);
  else console.error(err);
}
