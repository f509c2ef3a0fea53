/**
 * The app's "Work offline" switch. It goes through the library's `fetch`
 * option: while offline every request fails as a network error would, and
 * going offline aborts the requests in flight (the live event stream
 * included), so nothing reaches the server; going back online tells the
 * library to retry now (the window's "online" event).
 */
const live = new Set<AbortController>();
let offline = false;

/** isOffline says whether the switch is on. */
export function isOffline(): boolean {
  return offline;
}

/** gatedFetch is the `fetch` the database uses. */
export function gatedFetch(input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> {
  if (offline) return Promise.reject(new TypeError("offline: the app's switch is on"));
  const ctl = new AbortController();
  const signal = init.signal ? AbortSignal.any([init.signal, ctl.signal]) : ctl.signal;
  live.add(ctl);
  return fetch(input, { ...init, signal }).then(
    (resp) => {
      // Only a stream (the live events) stays open and must stay abortable.
      if (!(resp.headers.get("Content-Type") ?? "").startsWith("text/event-stream")) live.delete(ctl);
      return resp;
    },
    (err: unknown) => {
      live.delete(ctl);
      throw err;
    },
  );
}

/** setOffline turns the switch on or off. */
export function setOffline(on: boolean): void {
  const was = offline;
  offline = on;
  if (on) {
    for (const ctl of live) ctl.abort(new DOMException("offline: the app's switch is on", "AbortError"));
    live.clear();
  } else if (was) {
    window.dispatchEvent(new Event("online"));
  }
}
