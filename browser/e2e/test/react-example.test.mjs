// The React example (browser/examples/react-todos), built as an app
// developer builds it — `npm pack` of the library, `npm install` of the
// tarball into a Vite + React + TypeScript (strict) app, `vite build` — by
// examples/build.sh, then served from its own origin against a real server
// (which allows that origin: CORS) and driven in two browsers: edits appear
// in the other, the app's offline switch holds changes back until it is
// turned off, and a change to one record re-renders only the components
// that read it (the app counts renders in window.dynamergeRenders).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { promisify } from "node:util";
import { startServer, launchBrowser, waitFor, waitForEqual, collectErrors, repoRoot } from "../harness.mjs";

const exampleDir = join(repoRoot, "browser", "examples", "react-todos");
let browser, server, site;

before(async () => {
  const started = Date.now();
  const { stdout } = await promisify(execFile)(join(repoRoot, "browser", "examples", "build.sh"), [], {
    cwd: repoRoot,
    maxBuffer: 16 << 20,
    timeout: 600_000,
  });
  console.log(`${stdout.split("\n").filter((l) => /^(npm pack|example build)/.test(l)).join("; ")}; build.sh ${Date.now() - started} ms`);
  site = await serveStatic(join(exampleDir, "dist"));
  server = await startServer({ args: ["--cors-origins", site.url] });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
  await site?.close();
});

/** serveStatic serves a built app (index.html for "/") on a free loopback port. */
function serveStatic(root) {
  const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml" };
  const srv = createServer(async (req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const file = normalize(join(root, path === "/" ? "index.html" : path));
    if (!file.startsWith(root)) return res.writeHead(403).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { "Content-Type": types[extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) =>
    srv.listen(0, "127.0.0.1", () =>
      resolve({ url: `http://127.0.0.1:${srv.address().port}`, close: () => new Promise((r) => srv.close(r)) }),
    ),
  );
}

/** openApp loads the example in a new page of ctx, on the test's server. */
async function openApp(ctx, hash = "") {
  const page = await ctx.newPage();
  const errors = collectErrors(page);
  await page.goto(`${site.url}/?server=${encodeURIComponent(server.url)}${hash}`);
  await page.locator("[data-testid=status]").filter({ hasText: /online|syncing/ }).waitFor();
  return { page, errors };
}

/** rows returns {title: id} of the rows the page shows. */
const rows = (page) =>
  page.evaluate(() =>
    Object.fromEntries([...document.querySelectorAll("li[data-testid=row]")].map((li) => [li.querySelector("input.title").value, li.dataset.id])),
  );
const titles = async (page) => Object.keys(await rows(page)).sort();
const renders = (page) => page.evaluate(() => ({ ...window.dynamergeRenders }));

async function add(page, title) {
  await page.locator("[data-testid=new-title]").fill(title);
  await page.keyboard.press("Enter");
}

async function setTitle(page, id, title) {
  await page.locator(`li[data-id="${id}"] input.title`).fill(title);
  await page.locator(`li[data-id="${id}"] input.title`).blur();
}

test("two browsers: edits appear in the other, offline holds them back, renders stay bounded", async () => {
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  try {
    const a = await openApp(ctxA);
    const b = await openApp(ctxB);
    for (const t of ["one", "two", "three"]) await add(a.page, t);
    await waitForEqual(() => titles(b.page), ["one", "three", "two"], { what: "A's todos in B" });
    const ids = await rows(b.page);

    // One record changes in A: in B its row renders (once or twice: the
    // record, then nothing else), the list once, the other rows never.
    await b.page.waitForTimeout(500);
    const before = await renders(b.page);
    await setTitle(a.page, ids.two, "two, edited in A");
    await waitForEqual(() => titles(b.page), ["one", "three", "two, edited in A"], { what: "A's edit in B" });
    await b.page.waitForTimeout(500);
    const afterEdit = await renders(b.page);
    const grew = (k) => (afterEdit[k] ?? 0) - (before[k] ?? 0);
    console.log(`renders in B for one change of "two": row two +${grew(`row:${ids.two}`)}, list +${grew("list")}, rows one and three +${grew(`row:${ids.one}`)}/+${grew(`row:${ids.three}`)}, status +${grew("status")}`);
    assert.equal(grew(`row:${ids.one}`), 0, "row one re-rendered for a change of two");
    assert.equal(grew(`row:${ids.three}`), 0, "row three re-rendered for a change of two");
    assert.ok(grew(`row:${ids.two}`) >= 1 && grew(`row:${ids.two}`) <= 2, `row two rendered ${grew(`row:${ids.two}`)} times`);
    assert.ok(grew("list") >= 1 && grew("list") <= 2, `the list rendered ${grew("list")} times`);

    // B goes offline (the app's switch): A's edit does not reach it, its
    // own edit waits unsent; back online, both converge.
    const sent = [];
    b.page.on("request", (r) => {
      if (r.url().startsWith(server.url)) sent.push(r.url());
    });
    await b.page.locator("[data-testid=offline]").check();
    await b.page.locator("[data-testid=status]").filter({ hasText: "offline" }).waitFor();
    await setTitle(a.page, ids.one, "one, edited in A");
    await setTitle(b.page, ids.three, "three, edited offline in B");
    await b.page.locator("[data-testid=pending]").filter({ hasText: "1 unsent" }).waitFor();
    await a.page.waitForTimeout(1500);
    assert.deepEqual(await titles(b.page), ["one", "three, edited offline in B", "two, edited in A"]);
    assert.deepEqual(await titles(a.page), ["one, edited in A", "three", "two, edited in A"]);
    assert.deepEqual(sent, [], "B reached the server while offline");

    await b.page.locator("[data-testid=offline]").uncheck();
    const want = ["one, edited in A", "three, edited offline in B", "two, edited in A"];
    await waitForEqual(() => titles(b.page), want, { what: "B after going online" });
    await waitForEqual(() => titles(a.page), want, { what: "A after B went online" });
    await b.page.locator("[data-testid=pending]").filter({ hasText: "0 unsent" }).waitFor();
    assert.deepEqual(a.errors, []);
    assert.deepEqual(
      b.errors.filter((e) => !/offline|Failed to fetch|ERR_/.test(e)),
      [],
    );
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});

test("a third browser opens one record by id: loading, then the server's record", async () => {
  const ctxA = await browser.newContext();
  const ctxC = await browser.newContext();
  try {
    const a = await openApp(ctxA);
    await add(a.page, "looked up");
    const id = await waitFor(async () => (await rows(a.page))["looked up"], { what: "the new row" });
    await waitFor(async () => (await a.page.locator("[data-testid=pending]").textContent()).includes("0 unsent"), { what: "A synced" });
    const c = await openApp(ctxC, `#${id}`);
    await c.page.locator("[data-testid=details-status]").filter({ hasText: "ready" }).waitFor();
    assert.equal(await c.page.locator("[data-testid=details-title]").textContent(), "looked up");
    // The server's history of the record: A's create, attributed (no
    // tokens here: "anonymous") and timed by the server.
    await waitFor(async () => (await c.page.locator("[data-testid=history] li").count()) > 0, { what: "the history section" });
    assert.match(await c.page.locator("[data-testid=history] li").first().textContent(), /^\d{4}-\d\d-\d\dT.* anonymous: \d+ ops$/);
    assert.deepEqual(c.errors, []);
  } finally {
    await ctxA.close();
    await ctxC.close();
  }
});
