// Harness of the real-browser tests: the real dynamerge binary on a fresh
// bbolt file, and Debian's Chromium driven by playwright-core. Nothing here
// is a stand-in: the tests exercise what a user runs.
import { spawn, execFile } from "node:child_process";
import { mkdtemp, rm, access } from "node:fs/promises";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify, isDeepStrictEqual } from "node:util";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
/** repoRoot is the Go module's root, two levels above browser/e2e. */
export const repoRoot = resolve(here, "..", "..");

/** CHROMIUM is the browser the tests drive: Debian's package, installed by scripts/install-chromium.sh. */
export const CHROMIUM = process.env.DYNAMERGE_CHROMIUM || "/usr/bin/chromium";

/**
 * chromiumArgs keep the browser quiet and self-contained: no sandbox (CI runs
 * as root, where Chromium's sandbox cannot start), and none of the background
 * traffic (updates, metrics, safe browsing, translation) that would reach
 * for the internet or add noise to timings.
 */
export const chromiumArgs = [
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-background-timer-throttling",
  "--disable-backgrounding-occluded-windows",
  "--disable-renderer-backgrounding",
  "--disable-component-update",
  "--disable-default-apps",
  "--disable-domain-reliability",
  "--disable-extensions",
  "--disable-sync",
  "--disable-breakpad",
  "--disable-client-side-phishing-detection",
  "--disable-features=Translate,OptimizationHints,MediaRouter,CalculateNativeWinOcclusion",
  "--metrics-recording-only",
  "--no-first-run",
  "--no-default-browser-check",
  "--password-store=basic",
  "--use-mock-keychain",
];

const run = promisify(execFile);
let built; // Promise<string>: the binary, built once per test process

/**
 * buildServer compiles ./cmd/dynamerge into a temporary directory (once per
 * process), or returns $DYNAMERGE_BIN when the caller built it already.
 */
export function buildServer() {
  if (process.env.DYNAMERGE_BIN) return Promise.resolve(process.env.DYNAMERGE_BIN);
  built ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), "dynamerge-e2e-bin-"));
    const bin = join(dir, "dynamerge");
    await run(process.env.GO || "go", ["build", "-o", bin, "./cmd/dynamerge"], {
      cwd: repoRoot,
      maxBuffer: 16 << 20,
    });
    // "exit" handlers must be synchronous: remove the binary's directory
    // however the test process ends.
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    return bin;
  })();
  return built;
}

/**
 * startServer starts the binary on a free loopback port with a fresh bbolt
 * file and returns its base URL and a stop function (SIGTERM, then the data
 * directory is removed). The port is the one the server reports in its
 * "dynamerge started" log line, so there is no race for a free port. `args`
 * are more flags (e.g. `["--cors-origins", origin]`).
 */
export async function startServer({ dataDir, args = [] } = {}) {
  const bin = await buildServer();
  const ownDir = !dataDir;
  dataDir ??= await mkdtemp(join(tmpdir(), "dynamerge-e2e-data-"));
  const proc = spawn(
    bin,
    ["--addr", "127.0.0.1:0", "--store", `bolt:${join(dataDir, "db")}`, "--log-format", "json", "--workers", "1", ...args],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  // The tail of the server's log, for failure messages.
  let log = "";
  const started = new Promise((resolveURL, reject) => {
    const timer = setTimeout(() => reject(new Error(`dynamerge did not start within 30 s; log:\n${log}`)), 30_000);
    let partial = "";
    let seen = false;
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (chunk) => {
      log = (log + chunk).slice(-64 << 10);
      if (seen) return;
      const lines = (partial + chunk).split("\n");
      partial = lines.pop();
      for (const line of lines) {
        let m;
        try {
          m = JSON.parse(line);
        } catch {
          continue;
        }
        if (m.msg === "dynamerge started" && m.addr) {
          seen = true;
          clearTimeout(timer);
          resolveURL(`http://${m.addr}`);
          return;
        }
      }
    });
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`dynamerge exited (${code ?? signal}) before it started; log:\n${log}`));
    });
  });
  let url;
  try {
    url = await started;
  } catch (err) {
    proc.kill("SIGKILL");
    if (ownDir) await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const exited = new Promise((r) => proc.once("exit", r));
  // A test process that dies without calling stop() must not leave a
  // server behind.
  const reap = () => proc.kill("SIGKILL");
  process.once("exit", reap);
  exited.then(() => process.off("exit", reap));
  return {
    url,
    dataDir,
    /** log returns what the server wrote to stderr so far. */
    log: () => log,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 15_000);
        await exited;
        clearTimeout(t);
      }
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** launchBrowser starts headless Chromium, or says how to install it. */
export async function launchBrowser() {
  try {
    await access(CHROMIUM);
  } catch {
    throw new Error(`${CHROMIUM} is missing: run scripts/install-chromium.sh (make deps-chromium)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs });
}

/**
 * openLibrary opens the library in a page of the server's origin, with
 * the page's window.lib = {db, col, dynamerge}. The page is /healthz: any
 * page of the origin can import /dynamerge.js, and this one has no app of
 * its own that would open the database first.
 */
export async function openLibrary(page, base, { name = "e2e", collection = "todos", options = {} } = {}) {
  if (!page.url().startsWith(base)) await page.goto(`${base}/healthz`);
  await page.evaluate(
    async ({ name, collection, options }) => {
      const dynamerge = await import("/dynamerge.js");
      const db = await dynamerge.open({ name, ...options });
      window.lib = { dynamerge, db, col: db.collection(collection) };
    },
    { name, collection, options },
  );
}

/** serverDoc fetches a record as JSON from the server, or undefined on 404. */
export async function serverDoc(base, collection, id) {
  const resp = await fetch(`${base}/v1/collections/${collection}/docs/${id}`);
  if (resp.status === 404) return undefined;
  if (!resp.ok) throw new Error(`GET ${collection}/${id}: ${resp.status} ${await resp.text()}`);
  return (await resp.json()).doc;
}

/** waitFor polls fn until it returns a truthy value, or fails after timeoutMs with what it last saw. */
export async function waitFor(fn, { timeoutMs = 15_000, intervalMs = 50, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * waitForEqual polls fn until its value deep-equals want (key order aside),
 * or fails after timeoutMs showing the last value it saw.
 */
export async function waitForEqual(fn, want, { timeoutMs = 15_000, intervalMs = 50, what = "value" } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await fn();
    if (isDeepStrictEqual(got, want)) return got;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: want ${JSON.stringify(want)}, last ${JSON.stringify(got)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * collectErrors records the page's uncaught errors and console errors, so
 * that a test can assert the page stayed healthy. Network failures caused on
 * purpose (offline) are the caller's to filter.
 */
export function collectErrors(page) {
  const errors = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  return errors;
}
