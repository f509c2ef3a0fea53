/**
 * Automerge's WebAssembly, loaded once per page and only when something
 * needs it: a change to make, a server's change to merge, a document to
 * read history or conflicts from. `get`, `list` and `subscribe` answer from
 * the JSON views stored in IndexedDB (records.ts), so opening the app and
 * drawing its records never wait for the 3.6 MB module to compile.
 *
 * The module is streamed from its own content-hashed file (served
 * `application/wasm`, cacheable forever), so the browser compiles it while
 * it downloads and caches the compiled code. When that file cannot be
 * fetched or compiled — a bundler that did not copy it, a server that
 * does not serve it — the base64 copy in a separate chunk is imported and
 * compiled instead: slower, but a change never fails for want of a file.
 *
 * Offline-first needs one more thing: a page opened online that only read
 * must still be able to make changes after the network is gone. So once
 * the page has opened and gone idle, {@link preloadAutomerge} loads the
 * WebAssembly in the background (open's `wasmPreload`, default on): after
 * first paint, never before it is needed.
 */
import * as A from "@automerge/automerge/slim";
import { DynamergeError } from "./errors.js";

// Replaced by scripts/build.mjs with "./automerge.<hash>.wasm", the file it
// writes beside the bundle; a literal by then, so that bundlers see the
// `new URL("./…", import.meta.url)` pattern and ship the file.
declare const __DYNAMERGE_WASM__: string;

let source: string | URL | undefined;
let ready: Promise<void> | undefined;
let preloading = false;

/**
 * PRELOAD_AFTER_MS is how long after `open` the background load waits (and
 * then for an idle moment): first paint, which needs IndexedDB and the
 * main thread, goes first.
 */
export const PRELOAD_AFTER_MS = 1000;

/** setWasmSource names where the WebAssembly comes from; the first call wins. */
export function setWasmSource(url: string | URL | undefined): void {
  source ??= url;
}

/** automergeLoaded tells whether the WebAssembly is initialised (no document can be touched before). */
export function automergeLoaded(): boolean {
  return A.isWasmInitialized();
}

/**
 * loadAutomerge initialises the WebAssembly, once per page; concurrent
 * callers share the one load. A failed load is forgotten, so the next
 * caller tries again.
 */
export function loadAutomerge(): Promise<void> {
  if (A.isWasmInitialized()) return Promise.resolve();
  ready ??= load().catch((err: unknown) => {
    ready = undefined;
    throw new DynamergeError("internal", `dynamerge: cannot load Automerge's WebAssembly: ${String((err as Error)?.message ?? err)}`, { cause: err });
  });
  return ready;
}

/**
 * preloadAutomerge loads the WebAssembly in the background, once per page,
 * {@link PRELOAD_AFTER_MS} after it is called and when the page is idle.
 * A failure is left for the change that needs it to report (and retry).
 */
export function preloadAutomerge(): void {
  if (preloading || A.isWasmInitialized()) return;
  preloading = true;
  const start = () => void loadAutomerge().catch(() => (preloading = false));
  const idle = (globalThis as { requestIdleCallback?: (fn: () => void, o: { timeout: number }) => void }).requestIdleCallback;
  const t = setTimeout(() => (idle ? idle(start, { timeout: 5000 }) : start()), PRELOAD_AFTER_MS);
  // In Node, a pending preload must not keep a finished process alive.
  (t as { unref?: () => void }).unref?.();
}

async function load(): Promise<void> {
  const url = source ?? defaultSource();
  if (url !== undefined) {
    try {
      // initializeWasm fetches the URL and compiles with
      // WebAssembly.instantiateStreaming when it is served as application/wasm.
      await A.initializeWasm(String(url));
      return;
    } catch (err) {
      // Fall back to the copy that travels with the code, and say why:
      // every page load of this app pays for the slower path.
      console.warn(`dynamerge: cannot load Automerge's WebAssembly from ${String(url)} (${String(err)}); using the base64 copy`);
    }
  }
  const { automergeWasmBase64 } = await import("./wasm-base64.js");
  await A.initializeBase64Wasm(automergeWasmBase64);
}

// defaultSource is the file beside the bundle; undefined where the build
// did not name one (the sources run unbundled) or where URLs of the
// module's own location cannot be fetched (file: URLs in Node).
function defaultSource(): URL | undefined {
  if (typeof __DYNAMERGE_WASM__ !== "string") return undefined;
  const url = new URL(__DYNAMERGE_WASM__, import.meta.url);
  return url.protocol === "http:" || url.protocol === "https:" ? url : undefined;
}
