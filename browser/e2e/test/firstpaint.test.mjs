// First paint before the WebAssembly, in Chromium: the demo reloads with
// records in IndexedDB and draws its whole list while every request for
// Automerge's WebAssembly is held back (so first paint cannot be waiting for
// it); the first change then waits for it, and it is loaded once, by
// streaming compilation of the content-hashed file (the library's
// background preload, a second after open, or the change itself, whichever
// asks first), never the base64 fallback. And the server's answer
// for that file: application/wasm, a URL naming its content, immutable.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { startServer, launchBrowser, openLibrary, collectErrors, repoRoot } from "../harness.mjs";

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const dist = join(repoRoot, "browser", "dist");
const wasmName = async () => (await readdir(dist)).find((f) => /^automerge\.[0-9a-f]{16}\.wasm$/.test(f));

test("the WebAssembly is served as application/wasm under its content hash, cacheable for good", async () => {
  const name = await wasmName();
  assert.ok(name, "dist/ holds no automerge.<hash>.wasm");
  const bytes = await readFile(join(dist, name));
  const sum = createHash("sha256").update(bytes).digest("hex");
  assert.equal(name, `automerge.${sum.slice(0, 16)}.wasm`, "the file's name is not its content's hash");
  const bundle = await (await fetch(`${server.url}/dynamerge.js`)).text();
  assert.ok(bundle.includes(`new URL("./${name}",import.meta.url)`), "the bundle does not fetch the file by its hashed name");

  const resp = await fetch(`${server.url}/${name}`);
  assert.equal(resp.status, 200);
  assert.equal(resp.headers.get("content-type"), "application/wasm");
  assert.equal(resp.headers.get("cache-control"), "public, max-age=31536000, immutable");
  // fetch asks for gzip; the body arrives decoded, byte for byte the file.
  assert.equal(resp.headers.get("content-encoding"), "gzip");
  assert.ok(Buffer.from(await resp.arrayBuffer()).equals(bytes), "the served WebAssembly differs from dist/: rebuild the binary");

  // The fallback chunk is served too, revalidated like the bundle.
  const fallback = await fetch(`${server.url}/automerge-wasm.js`);
  assert.equal(fallback.status, 200);
  assert.equal(fallback.headers.get("content-type"), "text/javascript; charset=utf-8");
  assert.equal(fallback.headers.get("cache-control"), "no-cache");
  await fallback.arrayBuffer();
});

test("the demo draws its list from IndexedDB with the WebAssembly held back; the first change waits for it; it loads once", async () => {
  const N = 200;
  const ctx = await browser.newContext();
  try {
    const seed = await ctx.newPage();
    await openLibrary(seed, server.url, { name: "dynamerge-demo", collection: "todos" });
    await seed.evaluate(async (n) => {
      for (let i = 0; i < n; i++) await window.lib.col.create({ title: `Item ${i}`, done: false, notes: "", createdAt: 1_700_000_000_000 + i });
      await window.lib.db.sync();
    }, N);
    await seed.close();

    const page = await ctx.newPage();
    const errors = collectErrors(page);
    const wasmRequests = [];
    const fallbackRequests = [];
    const held = [];
    page.on("request", (r) => {
      if (r.url().endsWith(".wasm")) wasmRequests.push(r.url());
      if (r.url().endsWith("/automerge-wasm.js")) fallbackRequests.push(r.url());
    });
    await page.route("**/*.wasm", (route) => held.push(route));
    await page.goto(`${server.url}/`);
    await page.locator("#items[data-ready]").waitFor({ state: "attached", timeout: 30_000 });
    assert.equal(await page.locator("#items > li").count(), N, "the list is not drawn in full");
    assert.ok(held.length <= 1, `${held.length} requests for the WebAssembly`);

    // The first change needs Automerge: it waits for the held file.
    await page.evaluate(() => {
      window.firstChange = (async () => {
        const [first] = await window.demo.todos.list();
        await window.demo.todos.change(first.id, (d) => {
          d.done = true;
        });
        return first.id;
      })();
    });
    const t0 = Date.now();
    while (held.length === 0 && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 20));
    assert.equal(held.length, 1, "nothing asked for the WebAssembly");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await page.evaluate(() => Promise.race([window.firstChange.then(() => "done"), new Promise((r) => setTimeout(() => r("waiting"), 50))])), "waiting", "the change finished without Automerge");
    const wasmResponse = page.waitForResponse((r) => r.url().endsWith(".wasm"));
    await held[0].continue();
    const id = await page.evaluate(() => window.firstChange);
    const resp = await wasmResponse;
    assert.equal(resp.headers()["content-type"], "application/wasm");
    assert.equal((await page.evaluate((id) => window.demo.todos.get(id), id)).done, true);

    // Loaded once for the page, from the hashed file: more changes fetch
    // nothing, and the base64 fallback was never needed.
    await page.evaluate(async () => {
      const all = await window.demo.todos.list();
      for (const e of all.slice(1, 4)) await window.demo.todos.change(e.id, (d) => { d.done = true; });
      await window.demo.db.sync();
    });
    assert.equal(wasmRequests.length, 1);
    assert.match(wasmRequests[0], /\/automerge\.[0-9a-f]{16}\.wasm$/);
    assert.deepEqual(fallbackRequests, []);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});
