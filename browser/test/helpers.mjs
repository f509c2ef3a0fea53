// Test helpers: a real dynamerge server per test file, fake-indexeddb, an
// in-memory Web Locks implementation, and polling until a condition holds.
import "fake-indexeddb/auto";
import { after, before } from "node:test";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");

/** libPath is the file of the library under test: a fresh build of src/ (npm test builds it first). */
export const libPath = process.env.DYNAMERGE_LIB ?? resolve(here, "../.build-test/dynamerge.js");
/** lib is the library under test. */
export const lib = await import(libPath);

let binary;
/**
 * serverBinary builds cmd/dynamerge once per test process (or uses
 * $DYNAMERGE_BIN) and returns its path.
 */
export function serverBinary() {
  if (process.env.DYNAMERGE_BIN) return process.env.DYNAMERGE_BIN;
  if (binary) return binary;
  const dir = mkdtempSync(join(tmpdir(), "dynamerge-bin-"));
  binary = join(dir, "dynamerge");
  execFileSync(process.env.GO ?? "go", ["build", "-o", binary, "./cmd/dynamerge"], { cwd: repo, stdio: "inherit" });
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return binary;
}

/** freePort returns a loopback port nobody listens on right now. */
export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/**
 * startServer starts dynamerge on 127.0.0.1 with a bolt store in a new
 * temporary folder (or `opts.dir`), and resolves once it listens. `stop()`
 * kills it (the folder stays when `opts.dir` was given).
 */
export async function startServer(opts = {}) {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "dynamerge-srv-"));
  const args = [
    "--addr",
    `127.0.0.1:${opts.port ?? 0}`,
    "--store",
    `bolt:${join(dir, "db")}`,
    "--log-format",
    "json",
    "--log-level",
    "info",
    "--workers",
    "1",
    ...(opts.args ?? []),
  ];
  const child = spawn(serverBinary(), args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  const url = await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`dynamerge did not start in 30s:\n${log}`)), 30_000);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d) => {
      log += d;
      for (const line of log.split("\n")) {
        if (!line.includes('"dynamerge started"')) continue;
        clearTimeout(t);
        res(JSON.parse(line).url.replace(/\/$/, ""));
        return;
      }
    });
    child.once("exit", (code) => {
      clearTimeout(t);
      rej(new Error(`dynamerge exited with ${code}:\n${log}`));
    });
  });
  const exited = new Promise((r) => child.once("exit", r));
  return {
    url,
    dir,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        // A graceful shutdown waits up to 5 s for a connection Node's fetch
        // opens and leaves unused after an aborted event stream (Go counts a
        // connection that never sent a request as busy that long). These
        // tests are not about shutdown, and bolt has fsync'd every
        // acknowledged change, so do not wait that out.
        const t = setTimeout(() => child.kill("SIGKILL"), 500);
        await exited;
        clearTimeout(t);
      }
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Locks is an in-memory Web Locks implementation (exclusive mode), shared by
 * the "tabs" of one test as navigator.locks is shared by a browser's tabs.
 */
export class Locks {
  #held = new Map();
  #queues = new Map();
  request(name, options, callback) {
    return new Promise((resolve, reject) => {
      const entry = { callback, resolve, reject };
      const q = this.#queues.get(name) ?? [];
      this.#queues.set(name, q);
      options.signal?.addEventListener("abort", () => {
        const at = q.indexOf(entry);
        if (at >= 0) {
          q.splice(at, 1);
          reject(new DOMException("aborted", "AbortError"));
        }
      });
      q.push(entry);
      this.#pump(name);
    });
  }
  #pump(name) {
    if (this.#held.get(name)) return;
    const q = this.#queues.get(name);
    const next = q?.shift();
    if (!next) return;
    this.#held.set(name, true);
    Promise.resolve()
      .then(() => next.callback({ name, mode: "exclusive" }))
      .then(next.resolve, next.reject)
      .finally(() => {
        this.#held.set(name, false);
        this.#pump(name);
      });
  }
}

/** until polls `fn` until it returns a truthy value (or throws after `ms`). */
export async function until(fn, what, ms = 15_000) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let names = 0;
/** dbName returns a database name no other test of this process uses. */
export function dbName(prefix = "t") {
  return `${prefix}-${process.pid}-${++names}`;
}

/** fast are sync settings that keep tests quick. */
export const fast = { retryInitialMs: 20, retryMaxMs: 200, requestTimeoutMs: 5_000 };

/**
 * fileServer starts one server for the calling test file (in its `before`)
 * and stops it in its `after`; the returned object gains the server's
 * `url` once it runs.
 */
export function fileServer(opts = {}) {
  const srv = {};
  before(async () => {
    Object.assign(srv, await startServer(opts));
  });
  after(async () => {
    await srv.stop?.();
  });
  return srv;
}

/**
 * syncDocs returns the docs of a /v1/sync request a fetch wrapper sees,
 * inflating a gzipped body (the library gzips large ones).
 */
export function syncDocs(init) {
  const gz = new Headers(init?.headers).get("Content-Encoding") === "gzip";
  const body = gz ? gunzipSync(Buffer.from(init.body)).toString() : init.body;
  return JSON.parse(body).docs;
}
