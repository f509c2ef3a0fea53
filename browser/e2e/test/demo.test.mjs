// The demo app at "/", driven as a person would: clicks and typing only.
// Two people edit the same item while one of them is offline (the app's own
// switch), a reload shows the list before any network, a tab closed offline
// delivers when the app is opened again, two tabs stay in step, and a
// screenshot of the result is saved (DYNAMERGE_SCREENSHOT=docs/demo.png
// refreshes the README's picture).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { startServer, launchBrowser, serverDoc, waitFor, waitForEqual, collectErrors, repoRoot } from "../harness.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** withServer runs fn against a server of its own, so each test starts from an empty list. */
async function withServer(fn) {
  const server = await startServer();
  try {
    await fn(server);
  } finally {
    await server.stop();
  }
}

/** openApp loads the demo in a new page of ctx and waits for its first render. */
async function openApp(ctx, base) {
  const page = await ctx.newPage();
  await page.setViewportSize({ width: 900, height: 720 });
  await page.goto(`${base}/`);
  await page.locator("#items[data-ready]").waitFor({ state: "attached" });
  return page;
}

/** addItem types a new item and submits it with Enter. */
async function addItem(page, text) {
  await page.locator("#new-text").click();
  await page.keyboard.type(text);
  await page.keyboard.press("Enter");
}

const item = (page, n) => page.locator("#items > li").nth(n);
const titleOf = (page, n) => item(page, n).locator(".title").inputValue();
const notesOf = (page, n) => item(page, n).locator(".notes").inputValue();
const doneOf = (page, n) => item(page, n).locator(".done").isChecked();
const pending = async (page) => Number(await page.locator("#pending").textContent());

/** assertFields checks the fields of want in doc (the demo adds createdAt, whose value is the clock's). */
function assertFields(doc, want) {
  assert.ok(doc, "the server has no such record");
  for (const [k, v] of Object.entries(want)) assert.deepEqual(doc[k], v, `field ${k} of ${JSON.stringify(doc)}`);
}

/** typeAt clicks into a field, moves the caret to the start or the end, and types. */
async function typeAt(field, where, text) {
  await field.click();
  await field.press(where === "start" ? "Control+Home" : "Control+End");
  await field.pressSequentially(text);
}

test("two people edit one item, one offline through the app's switch; everything merges", async () => {
  await withServer(async (server) => {
    const [a, b] = await Promise.all([browser.newContext(), browser.newContext()]);
    try {
      const [pa, pb] = [await openApp(a, server.url), await openApp(b, server.url)];
      const errors = [...collectErrors(pa), ...collectErrors(pb)];
      await addItem(pa, "Buy milk");
      await waitFor(async () => (await item(pb, 0).count()) === 1 && (await titleOf(pb, 0)) === "Buy milk", {
        what: "B to show A's new item",
      });

      // B goes offline with the app's switch: from now on it sends nothing.
      await pb.locator("#offline").click();
      assert.equal(await pb.locator("body").getAttribute("data-sync"), "offline");
      const sent = [];
      pb.on("request", (r) => {
        if (new URL(r.url()).pathname.startsWith("/v1/")) sent.push(`${r.method()} ${r.url()}`);
      });

      await typeAt(item(pb, 0).locator(".title"), "end", " and bread");
      await item(pb, 0).locator(".done").click();
      await typeAt(item(pb, 0).locator(".notes"), "end", "B: the big one. ");
      await addItem(pb, "Call the plumber");
      await waitFor(async () => (await pending(pb)) >= 2, { what: "B to count its offline changes as pending" });

      // A edits the same item at the same time.
      await typeAt(item(pa, 0).locator(".title"), "start", "Today: ");
      await typeAt(item(pa, 0).locator(".notes"), "end", "A: organic. ");
      const id = await item(pa, 0).getAttribute("data-id");
      await waitForEqual(
        async () => {
          const d = await serverDoc(server.url, "todos", id);
          return [d?.title, d?.notes];
        },
        ["Today: Buy milk", "A: organic. "],
        { what: "A's edits to reach the server" },
      );
      assert.equal(await item(pa, 1).count(), 0, "A sees B's offline item");
      // Nothing reaches B either: the switch also cut its live stream.
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await titleOf(pb, 0), "Buy milk and bread", "B received A's edit while offline");

      assert.deepEqual(sent, [], "the offline switch let requests through");
      await pb.locator("#offline").click();

      const want = "Today: Buy milk and bread";
      for (const [name, p] of [["A", pa], ["B", pb]]) {
        await waitFor(
          async () => (await titleOf(p, 0)) === want && (await doneOf(p, 0)) && (await item(p, 1).count()) === 1 && (await pending(p)) === 0,
          { what: `${name} to converge`, timeoutMs: 20_000 },
        );
      }
      // Concurrent notes both survive; their order is Automerge's, the same everywhere.
      const [na, nb] = [await notesOf(pa, 0), await notesOf(pb, 0)];
      assert.equal(na, nb);
      assert.ok(na.includes("A: organic. ") && na.includes("B: the big one. "), `notes lost an edit: ${JSON.stringify(na)}`);
      assert.equal(await titleOf(pa, 1), "Call the plumber");
      assertFields(await serverDoc(server.url, "todos", id), { title: want, done: true, notes: na });

      // A finishes the second item, then the picture for the README.
      await item(pa, 1).locator(".done").click();
      await addItem(pa, "Book the venue for Saturday");
      await typeAt(item(pa, 2).locator(".notes"), "end", "Ask about the garden room");
      await waitFor(async () => (await pending(pa)) === 0 && (await item(pb, 2).count()) === 1, { what: "the last edits to sync" });
      await pa.evaluate(() => document.activeElement?.blur());
      await pa.mouse.move(0, 0);
      const out = resolve(repoRoot, process.env.DYNAMERGE_SCREENSHOT || join(".cache", "e2e", "demo.png"));
      await mkdir(dirname(out), { recursive: true });
      const png = await pa.screenshot({ path: out, fullPage: true });
      assert.ok(png.length > 10_000 && png.subarray(1, 4).toString() === "PNG", "the screenshot is not a PNG");
      console.log(`# screenshot: ${out} (${png.length} bytes)`);
      assert.deepEqual(errors, []);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

test("a reload shows the list from IndexedDB before any network", async () => {
  await withServer(async (server) => {
    const ctx = await browser.newContext();
    try {
      const page = await openApp(ctx, server.url);
      await addItem(page, "First");
      await addItem(page, "Second");
      await typeAt(item(page, 1).locator(".notes"), "end", "with a note");
      const second = await item(page, 1).getAttribute("data-id");
      await waitFor(async () => (await serverDoc(server.url, "todos", second))?.notes === "with a note", { what: "the items to sync" });

      const held = [];
      await page.route(`${server.url}/v1/**`, (route) => held.push(route));
      await page.reload();
      await page.locator("#items[data-ready]").waitFor({ state: "attached" });
      assert.equal(await titleOf(page, 0), "First");
      assert.equal(await titleOf(page, 1), "Second");
      assert.equal(await notesOf(page, 1), "with a note");
      const timing = await page.evaluate(() => {
        const [nav] = performance.getEntriesByType("navigation");
        const at = (n) => performance.getEntriesByName(n)[0]?.startTime;
        return { rendered: at("demo:rendered"), open: at("demo:open") - at("demo:start"), dom: nav?.domContentLoadedEventEnd };
      });
      console.log(`# reload with the network held: list rendered ${timing.rendered?.toFixed(0)} ms after navigation (open ${timing.open?.toFixed(0)} ms); ${held.length} API requests held`);

      await page.unroute(`${server.url}/v1/**`);
      await Promise.all(held.map((r) => r.continue().catch(() => {})));
      await item(page, 0).locator(".done").click();
      await waitFor(async () => (await pending(page)) === 0, { what: "the page to sync after the network returns" });
      const id = await item(page, 0).getAttribute("data-id");
      await waitFor(async () => (await serverDoc(server.url, "todos", id))?.done === true, { what: "the server to see the click" });
    } finally {
      await ctx.close();
    }
  });
});

test("a tab closed while offline delivers its changes when the app is opened again", async () => {
  await withServer(async (server) => {
    const ctx = await browser.newContext();
    try {
      const first = await openApp(ctx, server.url);
      await addItem(first, "Pay the rent");
      await item(first, 0).waitFor();
      const id = await item(first, 0).getAttribute("data-id");
      await waitFor(() => serverDoc(server.url, "todos", id), { what: "the item to sync" });

      await ctx.setOffline(true);
      await typeAt(item(first, 0).locator(".title"), "end", " on Friday");
      await item(first, 0).locator(".done").click();
      await addItem(first, "Offline idea");
      // Rendered means stored: the list is drawn from IndexedDB.
      await waitFor(async () => (await item(first, 1).count()) === 1 && (await titleOf(first, 1)) === "Offline idea", { what: "the offline item to be stored" });
      await waitFor(async () => (await pending(first)) >= 2, { what: "the offline edits to be pending" });
      await first.close();
      assertFields(await serverDoc(server.url, "todos", id), { title: "Pay the rent", done: false });

      await ctx.setOffline(false);
      const second = await openApp(ctx, server.url);
      // The reopened app shows the offline edits at once, and delivers them.
      assert.equal(await titleOf(second, 0), "Pay the rent on Friday");
      assert.equal(await titleOf(second, 1), "Offline idea");
      await waitFor(async () => (await serverDoc(server.url, "todos", id))?.done === true, { what: "the server to receive the closed tab's edits" });
      assert.equal((await serverDoc(server.url, "todos", id)).title, "Pay the rent on Friday");
      await waitFor(async () => (await pending(second)) === 0, { what: "pending to drop to 0" });
    } finally {
      await ctx.close();
    }
  });
});

test("two tabs of one browser stay in step, offline switch included", async () => {
  await withServer(async (server) => {
    const ctx = await browser.newContext();
    try {
      const [t1, t2] = [await openApp(ctx, server.url), await openApp(ctx, server.url)];
      const roles = [await t1.locator("#role").textContent(), await t2.locator("#role").textContent()].sort();
      assert.deepEqual(roles, ["another tab syncs", "this tab syncs"]);

      await addItem(t1, "Shared between tabs");
      await waitFor(async () => (await item(t2, 0).count()) === 1 && (await titleOf(t2, 0)) === "Shared between tabs", { what: "tab two to show the item" });
      await typeAt(item(t2, 0).locator(".notes"), "end", "typed in tab two");
      await waitFor(async () => (await notesOf(t1, 0)) === "typed in tab two", { what: "tab one to show tab two's notes" });

      // The switch is one for the whole browser.
      await t1.locator("#offline").click();
      await waitFor(async () => t2.locator("#offline").isChecked(), { what: "tab two to follow the offline switch" });
      await t2.locator("#offline").click();
      await waitFor(async () => !(await t1.locator("#offline").isChecked()), { what: "tab one to follow the switch back" });
      await waitFor(async () => (await pending(t1)) === 0 && (await pending(t2)) === 0, { what: "both tabs to drain" });
      const id = await item(t1, 0).getAttribute("data-id");
      assert.equal((await serverDoc(server.url, "todos", id)).notes, "typed in tab two");
    } finally {
      await ctx.close();
    }
  });
});

/** readmeTodo is the body of the README's "One sync with curl" request. */
async function readmeTodo() {
  const readme = await readFile(join(repoRoot, "README.md"), "utf8");
  const m = /curl -s http:\/\/127\.0\.0\.1:8080\/v1\/sync .*? -d '([^']+)'/s.exec(readme);
  assert.ok(m, "the README's curl example is missing");
  return m[1];
}

test("the README's curl todo shows in the demo; delete, Recently deleted and undo work in both browsers", async () => {
  await withServer(async (server) => {
    const res = await fetch(`${server.url}/v1/sync`, { method: "POST", headers: { "Content-Type": "application/json" }, body: await readmeTodo() });
    assert.equal(res.status, 200);
    const [a, b] = await Promise.all([browser.newContext(), browser.newContext()]);
    try {
      const [pa, pb] = [await openApp(a, server.url), await openApp(b, server.url)];
      const errors = [...collectErrors(pa), ...collectErrors(pb)];
      for (const [name, p] of [["A", pa], ["B", pb]]) {
        await waitFor(async () => (await item(p, 0).count()) === 1 && (await titleOf(p, 0)) === "Buy milk", { what: `${name} to show the curl todo` });
      }
      const trash = (p) => p.locator("#deleted > li");
      assert.equal(await pa.locator("#trash").isVisible(), false, "Recently deleted shows while empty");

      await item(pa, 0).locator(".delete").click();
      for (const [name, p] of [["A", pa], ["B", pb]]) {
        await waitFor(
          async () => (await item(p, 0).count()) === 0 && (await trash(p).count()) === 1 && (await trash(p).locator(".deleted-title").textContent()) === "Buy milk",
          { what: `${name} to move the item to Recently deleted` },
        );
      }
      assert.equal(await pb.locator("#trash").isVisible(), true);

      // B undoes A's delete; the item comes back everywhere, as it was.
      await trash(pb).locator(".undo").click();
      for (const [name, p] of [["A", pa], ["B", pb]]) {
        await waitFor(async () => (await item(p, 0).count()) === 1 && (await trash(p).count()) === 0, { what: `${name} to show the item again` });
        assert.equal(await titleOf(p, 0), "Buy milk");
      }
      await waitFor(async () => (await pending(pb)) === 0, { what: "B's undo to sync" });
      assert.deepEqual(await serverDoc(server.url, "todos", "groceries"), { title: "Buy milk", done: false });
      assert.deepEqual(errors, []);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

/** historyOf opens (if closed) item n's history panel and returns its lines, newest first, once they satisfy ok. */
async function historyOf(page, n, ok, what) {
  const row = item(page, n);
  if (await row.locator(".history").isHidden()) await row.locator(".history-toggle").click();
  const lines = () => row.locator(".history .change .what").allTextContents();
  await waitFor(async () => ok(await lines()), { what });
  return lines();
}

/** noOverflow checks that nothing of the page sticks out sideways at the viewport's width. */
async function noOverflow(page, what) {
  const { scroll, width } = await page.evaluate(() => ({ scroll: document.scrollingElement.scrollWidth, width: window.innerWidth }));
  assert.ok(scroll <= width, `${what}: the page is ${scroll} px wide in a ${width} px window`);
}

test("the history panel says what changed in words, and restores offline; the other browser follows", async () => {
  await withServer(async (server) => {
    const [a, b] = await Promise.all([browser.newContext(), browser.newContext()]);
    try {
      const [pa, pb] = [await openApp(a, server.url), await openApp(b, server.url)];
      await pb.setViewportSize({ width: 390, height: 800 });
      const errors = [...collectErrors(pa), ...collectErrors(pb)];
      await addItem(pa, "Buy milk");
      await typeAt(item(pa, 0).locator(".notes"), "end", "organic");
      await item(pa, 0).locator(".done").click();
      await waitFor(async () => (await doneOf(pb, 0)) && (await notesOf(pb, 0)) === "organic", { what: "B to get A's edits" });

      // A works offline (the app's switch): the panel reads this browser's copy.
      await pa.locator("#offline").click();
      const want = ["marked it done", "typed 7 characters in notes", "created “Buy milk”"];
      const lines = await historyOf(pa, 0, (l) => l.length === 3, "A's history panel to list three changes");
      assert.deepEqual(lines, want);
      assert.equal(await item(pa, 0).locator(".history-note").isVisible(), true, "the panel does not say it is this browser's copy");
      assert.equal(await item(pa, 0).locator(".history .change").first().locator(".restore").isVisible(), false, "the current state offers a restore");

      // Back to the item as it was created: one change, made offline.
      await item(pa, 0).locator(".history .change").nth(2).locator(".restore").click();
      await waitFor(async () => !(await doneOf(pa, 0)) && (await notesOf(pa, 0)) === "", { what: "A to show the restored item" });
      await historyOf(
        pa,
        0,
        (l) => l[0] === "restored an earlier version: deleted 7 characters from notes, marked it not done" && l.length === 4,
        "A's panel to show the restore on top",
      );
      assert.equal(await item(pa, 0).locator(".history .change").first().locator(".who").textContent(), "you, not synced yet");
      assert.equal(await pending(pa), 1);

      await pa.locator("#offline").click();
      await waitFor(async () => !(await doneOf(pb, 0)) && (await notesOf(pb, 0)) === "", { what: "B to show A's restore" });
      const id = await item(pa, 0).getAttribute("data-id");
      assertFields(await serverDoc(server.url, "todos", id), { title: "Buy milk", notes: "", done: false });
      // B's panel at 390 px, offline too (online it reads the server's
      // history, tested below): the same story, nothing sticking out.
      await pb.locator("#offline").click();
      assert.deepEqual(await historyOf(pb, 0, (l) => l.length === 4, "B's history panel"), [
        "restored an earlier version: deleted 7 characters from notes, marked it not done",
        ...want,
      ]);
      await noOverflow(pb, "B with the history open at 390 px");
      await noOverflow(pa, "A with the history open at 900 px");
      assert.deepEqual(errors.filter((e) => !/offline|Failed to fetch|ERR_INTERNET_DISCONNECTED/.test(e)), []);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

test("online, the history panel reads the server's history (needs GET …/docs/{id}/changes)", async () => {
  await withServer(async (server) => {
    const ctx = await browser.newContext();
    try {
      const page = await openApp(ctx, server.url);
      const errors = collectErrors(page);
      await addItem(page, "Water the plants");
      await typeAt(item(page, 0).locator(".title"), "end", " today");
      await waitFor(async () => (await pending(page)) === 0, { what: "the edits to sync" });
      const lines = await historyOf(page, 0, (l) => l.length === 2, "the panel to list two changes");
      assert.deepEqual(lines, ["typed 6 characters in title", "created “Water the plants”"]);
      assert.equal(await item(page, 0).locator(".history-note").isVisible(), false, "online, the panel fell back to this browser's copy");
      // No authentication on this server: the changes are anonymous, with the time the server took them.
      assert.deepEqual(await item(page, 0).locator(".history .who").allTextContents(), ["anonymous", "anonymous"]);
      assert.deepEqual(errors, []);
    } finally {
      await ctx.close();
    }
  });
});

test("a field edited at the same time is marked, and a click picks the value to keep (390 and 900 px)", async () => {
  await withServer(async (server) => {
    const [a, b] = await Promise.all([browser.newContext(), browser.newContext()]);
    try {
      const [pa, pb] = [await openApp(a, server.url), await openApp(b, server.url)];
      await pb.setViewportSize({ width: 390, height: 800 });
      const errors = [...collectErrors(pa), ...collectErrors(pb)];
      await addItem(pa, "Pay rent");
      await waitFor(async () => (await item(pb, 0).count()) === 1, { what: "B to get the item" });

      // B ticks it offline while A ticks it and unticks it: "done" gets two values.
      await pb.locator("#offline").click();
      await item(pb, 0).locator(".done").click();
      await item(pa, 0).locator(".done").click();
      await item(pa, 0).locator(".done").click();
      await waitFor(async () => (await pending(pa)) === 0 && (await pending(pb)) === 1, { what: "A to sync and B to hold its click" });
      await pb.locator("#offline").click();

      for (const [name, p] of [["A", pa], ["B", pb]]) {
        await waitFor(async () => (await item(p, 0).locator(".conflict .pick").count()) === 2, { what: `${name} to mark the conflict` });
        assert.match(await item(p, 0).locator(".done").getAttribute("class"), /conflicted/, `${name} does not mark the field`);
      }
      const picks = await item(pb, 0).locator(".conflict .pick").allTextContents();
      assert.deepEqual(picks.map((t) => t.replace(/ · shown$/, "")).sort(), ["done", "not done"]);
      await noOverflow(pb, "B with a conflict at 390 px");
      await noOverflow(pa, "A with a conflict at 900 px");

      // B keeps "done": the mark goes away in both browsers.
      await item(pb, 0).locator(".conflict .pick", { hasText: /^done/ }).click();
      for (const [name, p] of [["A", pa], ["B", pb]]) {
        await waitFor(async () => (await item(p, 0).locator(".conflict").count()) === 0 && (await doneOf(p, 0)), { what: `${name} to show it resolved` });
        assert.doesNotMatch((await item(p, 0).locator(".done").getAttribute("class")) ?? "", /conflicted/);
      }
      const id = await item(pa, 0).getAttribute("data-id");
      await waitFor(async () => (await serverDoc(server.url, "todos", id))?.done === true, { what: "the server to hold the pick" });
      assert.deepEqual(errors.filter((e) => !/404/.test(e)), []);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
