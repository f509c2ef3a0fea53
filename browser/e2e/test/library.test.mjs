// The browser library in real Chromium against the real server, through its
// public API only (import "/dynamerge.js"): offline edits in two browsers
// merge with nothing lost, IndexedDB answers before the network does, a tab
// closed offline still delivers, and two tabs of one browser stay in step.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, openLibrary, serverDoc, waitFor, waitForEqual, collectErrors } from "../harness.mjs";

let server;
let browser;
before(async () => {
  [server, browser] = await Promise.all([startServer(), launchBrowser()]);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** get reads a record through the library of page. */
const get = (page, id) => page.evaluate((id) => window.lib.col.get(id), id);
/** status returns the library's status of page, without its error object. */
const status = (page) =>
  page.evaluate(() => {
    const s = window.lib.db.status;
    return { online: s.online, syncing: s.syncing, pending: s.pending, error: s.error ? String(s.error.code) : null, leader: s.leader };
  });

/** unexpected drops the errors a test caused on purpose (an offline browser's failed requests). */
const unexpected = (errors) => errors.filter((e) => !/ERR_INTERNET_DISCONNECTED|Failed to fetch|NetworkError|network/i.test(e));

/**
 * twoBrowsers runs fn with two browsers (contexts a and b), each with a page
 * that opened the library on collection C, and the pages' errors.
 */
async function twoBrowsers(C, fn) {
  const [a, b] = await Promise.all([browser.newContext(), browser.newContext()]);
  try {
    const [pa, pb] = await Promise.all([a.newPage(), b.newPage()]);
    const errors = [...collectErrors(pa), ...collectErrors(pb)];
    await Promise.all([openLibrary(pa, server.url, { collection: C }), openLibrary(pb, server.url, { collection: C })]);
    await fn({ a, b, pa, pb, errors });
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

test("two browsers edit the same records, one offline; both converge with every edit kept", async () => {
  // A collection of its own: the server is shared by the tests of this file.
  const C = "converge";
  await twoBrowsers(C, async ({ a, b, pa, pb, errors }) => {

    const id = await pa.evaluate(async () => {
      const id = await window.lib.col.create({ title: "Buy milk", done: false, notes: "" });
      await window.lib.db.sync();
      return id;
    });
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "create returns a new UUID");
    // B hears of it by itself (live events or the feed), with no sync call.
    await waitFor(() => get(pb, id), { what: "B to receive A's record" });

    await b.setOffline(true);
    const created = await pb.evaluate(async (id) => {
      const { col, dynamerge } = window.lib;
      await col.change(id, (d) => {
        dynamerge.updateText(d, ["title"], "Buy oat milk");
        d.done = true;
      });
      return col.create({ title: "Bread", done: false, notes: "from B" });
    }, id);
    assert.deepEqual(await get(pb, id), { title: "Buy oat milk", done: true, notes: "" });
    await waitFor(async () => (await status(pb)).pending >= 2, { what: "B's offline changes to be pending" });
    assert.equal(await serverDoc(server.url, C, created), undefined, "an offline browser reached the server");

    // Meanwhile A edits the same record, concurrently.
    await pa.evaluate(async (id) => {
      const { col, db, dynamerge } = window.lib;
      await col.change(id, (d) => {
        dynamerge.updateText(d, ["title"], "Buy milk today");
        dynamerge.updateText(d, ["notes"], "from A");
      });
      await db.sync();
    }, id);

    await b.setOffline(false);
    await pb.evaluate(() => window.lib.db.sync());
    assert.equal((await status(pb)).pending, 0, "B's sync() resolved with changes still pending");

    // Text merges character-wise; the flag and the new record survive.
    const want = { title: "Buy oat milk today", done: true, notes: "from A" };
    for (const [name, p] of [["A", pa], ["B", pb]]) {
      await waitForEqual(() => get(p, id), want, { what: `${name} to converge` });
      await waitFor(() => get(p, created), { what: `${name} to hold the record B created offline` });
    }
    assert.deepEqual(await serverDoc(server.url, C, id), want);
    assert.deepEqual(await serverDoc(server.url, C, created), { title: "Bread", done: false, notes: "from B" });

    // Both list the same collection.
    const list = (p) => p.evaluate(async () => [...(await window.lib.col.list())].sort((x, y) => (x.id < y.id ? -1 : 1)));
    assert.deepEqual(await list(pa), await list(pb));
    assert.deepEqual(unexpected(errors), []);
  });
});

test("a reload shows the data from IndexedDB before any network", async () => {
  const C = "reload"; // a collection of its own: the server is shared by the tests of this file
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    await openLibrary(page, server.url, { name: "reload", collection: C });
    const ids = await page.evaluate(async () => {
      const ids = [];
      for (const title of ["one", "two", "three"]) ids.push(await window.lib.col.create({ title, done: false }));
      await window.lib.db.sync();
      return ids;
    });

    // Hold every API request: none gets an answer while the page reads.
    const held = [];
    await page.route(`${server.url}/v1/**`, (route) => held.push(route));
    await page.reload();
    const t0 = Date.now();
    await openLibrary(page, server.url, { name: "reload", collection: C });
    const list = await page.evaluate(() => window.lib.col.list());
    const ms = Date.now() - t0;
    assert.deepEqual(
      list.map((e) => e.doc.title).sort(),
      ["one", "three", "two"],
      "the reloaded page does not show the records from IndexedDB",
    );
    assert.deepEqual(list.map((e) => e.id).sort(), [...ids].sort());
    assert.deepEqual(await get(page, ids[0]), { title: "one", done: false });
    console.log(`# reload: open + list of 3 records from IndexedDB with the network held: ${ms} ms; ${held.length} API requests held`);

    // Let the network through again: the page syncs normally.
    await page.unroute(`${server.url}/v1/**`);
    await Promise.all(held.map((r) => r.continue().catch(() => {})));
    await page.evaluate(async (id) => {
      await window.lib.col.change(id, (d) => { d.done = true; });
      await window.lib.db.sync();
    }, ids[0]);
    assert.deepEqual(await serverDoc(server.url, C, ids[0]), { title: "one", done: true });
  } finally {
    await ctx.close();
  }
});

test("a tab closed while offline delivers its changes when the app is opened again", async () => {
  const C = "closed"; // a collection of its own: the server is shared by the tests of this file
  const ctx = await browser.newContext();
  try {
    const first = await ctx.newPage();
    await openLibrary(first, server.url, { name: "closed", collection: C });
    const id = await first.evaluate(async () => {
      const id = await window.lib.col.create({ title: "Water the plants", done: false });
      await window.lib.db.sync();
      return id;
    });
    await ctx.setOffline(true);
    const later = await first.evaluate(async (id) => {
      const { col, dynamerge } = window.lib;
      await col.change(id, (d) => {
        d.done = true;
        dynamerge.updateText(d, ["title"], "Water the plants twice");
      });
      return col.create({ title: "Written offline", done: false });
    }, id);
    await waitFor(async () => (await status(first)).pending >= 2, { what: "the offline changes to be pending" });
    await first.close();

    assert.deepEqual(await serverDoc(server.url, C, id), { title: "Water the plants", done: false });
    assert.equal(await serverDoc(server.url, C, later), undefined);

    await ctx.setOffline(false);
    const second = await ctx.newPage();
    await openLibrary(second, server.url, { name: "closed", collection: C });
    // No sync() call: opening the app is enough to deliver the outbox.
    await waitFor(
      async () => (await serverDoc(server.url, C, id))?.done === true && (await serverDoc(server.url, C, later)) !== undefined,
      { what: "the server to receive the closed tab's changes" },
    );
    assert.deepEqual(await serverDoc(server.url, C, id), { title: "Water the plants twice", done: true });
    assert.deepEqual(await serverDoc(server.url, C, later), { title: "Written offline", done: false });
    await waitFor(async () => (await status(second)).pending === 0, { what: "pending to drop to 0" });
  } finally {
    await ctx.close();
  }
});

test("two tabs of one browser stay in step", async () => {
  const C = "tabs"; // a collection of its own: the server is shared by the tests of this file
  const ctx = await browser.newContext();
  try {
    const [t1, t2] = [await ctx.newPage(), await ctx.newPage()];
    await openLibrary(t1, server.url, { name: "tabs", collection: C });
    await openLibrary(t2, server.url, { name: "tabs", collection: C });
    await t2.evaluate(() => {
      window.seen = [];
      window.lib.col.subscribe((all) => window.seen.push(all.length));
    });

    const id = await t1.evaluate(() => window.lib.col.create({ title: "From tab one", done: false, notes: "" }));
    await waitFor(() => get(t2, id), { what: "tab two to see tab one's record" });
    assert.ok((await t2.evaluate(() => window.seen.length)) > 0, "tab two's subscription was not called");

    await t2.evaluate(async (id) => {
      const { col, dynamerge } = window.lib;
      await col.change(id, (d) => {
        dynamerge.updateText(d, ["notes"], "tab two was here");
        d.done = true;
      });
    }, id);
    const want = { title: "From tab one", done: true, notes: "tab two was here" };
    await waitForEqual(() => get(t1, id), want, { what: "tab one to see tab two's change" });

    // One tab talks to the server for both, and both report the same queue.
    const [s1, s2] = [await status(t1), await status(t2)];
    assert.notEqual(s1.leader, s2.leader, `exactly one tab should sync: ${JSON.stringify([s1, s2])}`);
    await t1.evaluate(() => window.lib.db.sync());
    await t2.evaluate(() => window.lib.db.sync());
    await waitFor(async () => (await status(t1)).pending === 0 && (await status(t2)).pending === 0, { what: "both tabs to report nothing pending" });
    assert.deepEqual(await serverDoc(server.url, C, id), want);
  } finally {
    await ctx.close();
  }
});

test("one browser deletes offline while the other edits; both show it deleted, and undelete shows the edit", async () => {
  // A collection of its own: the server is shared by the tests of this file.
  const C = "lifecycle";
  await twoBrowsers(C, async ({ a, b, pa, pb, errors }) => {
    const id = await pa.evaluate(async () => {
      const id = await window.lib.col.create({ title: "Buy milk", done: false });
      await window.lib.db.sync();
      return id;
    });
    await waitFor(() => get(pb, id), { what: "B to receive the record" });
    await pb.evaluate(() => {
      window.seen = [];
      window.lib.col.subscribe((all) => window.seen.push(all.length));
    });

    // A deletes offline; B edits online, meanwhile.
    await a.setOffline(true);
    await pa.evaluate((id) => window.lib.col.delete(id), id);
    assert.equal(await get(pa, id), undefined, "A still shows the record it deleted");
    await waitFor(async () => (await status(pa)).pending >= 1, { what: "A's delete to be pending" });
    await pb.evaluate(async (id) => {
      const { col, db, dynamerge } = window.lib;
      await col.change(id, (d) => {
        dynamerge.updateText(d, ["title"], "Buy oat milk");
        d.done = true;
      });
      await db.sync();
    }, id);
    assert.deepEqual(await serverDoc(server.url, C, id), { title: "Buy oat milk", done: true });

    await a.setOffline(false);
    await pa.evaluate(() => window.lib.db.sync());
    const deletedIds = (p) => p.evaluate(async () => (await window.lib.col.deleted()).map((e) => e.id));
    for (const [name, p] of [["A", pa], ["B", pb]]) {
      await waitFor(async () => (await get(p, id)) === undefined && (await deletedIds(p)).includes(id), { what: `${name} to show it deleted` });
      assert.ok(!(await p.evaluate(async (id) => (await window.lib.col.list()).some((e) => e.id === id), id)), `${name} lists it`);
    }
    await waitFor(() => pb.evaluate(() => window.seen.at(-1) === 0), { what: "B's subscription to hear of the delete" });

    // B undoes the delete: both show the record with B's concurrent edit.
    await pb.evaluate(async (id) => {
      await window.lib.col.undelete(id);
      await window.lib.db.sync();
    }, id);
    const want = { title: "Buy oat milk", done: true };
    for (const [name, p] of [["A", pa], ["B", pb]]) {
      await waitForEqual(() => get(p, id), want, { what: `${name} to show the edit after undelete` });
      assert.deepEqual(await deletedIds(p), []);
    }
    assert.deepEqual(await serverDoc(server.url, C, id), want);
    assert.deepEqual(unexpected(errors), []);
  });
});

test("a second browser: sync() then get() and change() of records it has never seen", async () => {
  const C = "second"; // a collection of its own: the server is shared by the tests of this file
  const [a, b] = await Promise.all([browser.newContext(), browser.newContext()]);
  try {
    const [pa, pb] = await Promise.all([a.newPage(), b.newPage()]);
    await openLibrary(pa, server.url, { collection: C });
    const [id1, id2] = await pa.evaluate(async () => {
      const { col, db } = window.lib;
      const ids = [await col.create({ title: "one" }), await col.create({ title: "two" })];
      await db.sync();
      return ids;
    });
    // B opens the library without naming the collection, syncs, and only
    // then asks for the records by id.
    await pb.goto(`${server.url}/healthz`);
    const got = await pb.evaluate(
      async ({ C, id1, id2 }) => {
        const dynamerge = await import("/dynamerge.js");
        const db = await dynamerge.open({ name: "second" });
        await db.sync();
        const col = db.collection(C);
        const one = await col.get(id1);
        await col.change(id2, (d) => {
          d.title = "two, edited in B";
        });
        await db.sync();
        return { one, two: await col.get(id2), missing: (await col.get("never-written")) ?? null };
      },
      { C, id1, id2 },
    );
    assert.deepEqual(got, { one: { title: "one" }, two: { title: "two, edited in B" }, missing: null });
    assert.deepEqual(await serverDoc(server.url, C, id2), { title: "two, edited in B" });
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test("a restore made offline in one browser appears in the other, merged with its concurrent typing", async () => {
  const C = "versions";
  await twoBrowsers(C, async ({ a, pa, pb, errors }) => {
    const { id, v1 } = await pa.evaluate(async () => {
      const { col, db, dynamerge } = window.lib;
      const id = await col.create({ title: "Plan trip", notes: "book train", done: false });
      await db.sync();
      return { id, v1: await col.heads(id) };
    });
    // B holds the record before it is deleted (devices do not pull records deleted before they saw them).
    await waitFor(() => get(pb, id), { what: "B to receive the record" });
    await pa.evaluate(async (id) => {
      const { col, db, dynamerge } = window.lib;
      await col.change(id, (d) => {
        dynamerge.updateText(d, ["notes"], "book train, then hotel");
        d.done = true;
      });
      await col.delete(id);
      await db.sync();
    }, id);
    await waitFor(async () => (await pb.evaluate((id) => window.lib.col.deleted(), id)).length === 1, { what: "B to hold the deleted record" });

    // A restores the first version offline, which undeletes it too.
    await a.setOffline(true);
    await pa.evaluate(({ id, v1 }) => window.lib.col.restore(id, v1), { id, v1 });
    assert.deepEqual(await get(pa, id), { title: "Plan trip", notes: "book train", done: false });
    const page = await pa.evaluate((id) => window.lib.col.history(id), id);
    assert.equal(page.local, true, "offline, history comes from this browser's copy");
    assert.equal(page.changes[0].pending, true);
    assert.match(page.changes[0].message, /^restore /);
    await a.setOffline(false);
    await pa.evaluate(() => window.lib.db.sync());
    await waitForEqual(() => get(pb, id), { title: "Plan trip", notes: "book train", done: false }, { what: "B to show the restored version" });
    assert.deepEqual(await serverDoc(server.url, C, id), { title: "Plan trip", notes: "book train", done: false });

    // Text restored by splices: B types while A restores a version of the notes.
    const v2 = await pa.evaluate((id) => window.lib.col.heads(id), id);
    await pa.evaluate(async (id) => {
      const { col, db, dynamerge } = window.lib;
      await col.change(id, (d) => dynamerge.updateText(d, ["notes"], "book train and a cab"));
      await db.sync();
    }, id);
    await waitFor(async () => (await get(pb, id))?.notes === "book train and a cab", { what: "B to get A's notes" });
    await a.setOffline(true);
    await pa.evaluate(({ id, v2 }) => window.lib.col.restore(id, v2), { id, v2 });
    await pb.evaluate(async (id) => {
      const { col, db, dynamerge } = window.lib;
      await col.change(id, (d) => dynamerge.updateText(d, ["notes"], "Tue: book train and a cab"));
      await db.sync();
    }, id);
    await a.setOffline(false);
    await pa.evaluate(() => window.lib.db.sync());
    for (const [name, p] of [["A", pa], ["B", pb]]) {
      await waitFor(async () => (await get(p, id))?.notes === "Tue: book train", { what: `${name} to show the restore merged with B's typing` });
    }
    assert.deepEqual(unexpected(errors), []);
  });
});

test("a live edit reaches the second browser in its event, without a POST /v1/sync", async () => {
  const C = "inline";
  await twoBrowsers(C, async ({ pa, pb, errors }) => {
    const id = await pa.evaluate(async () => {
      const id = await window.lib.col.create({ title: "Buy milk", n: 0 });
      await window.lib.db.sync();
      return id;
    });
    await waitFor(() => get(pb, id), { what: "B to receive A's record" });
    await pb.evaluate(() => window.lib.db.sync()); // B settles its first rounds
    const posts = [];
    pb.on("request", (r) => {
      if (r.method() === "POST" && new URL(r.url()).pathname === "/v1/sync") posts.push(r.url());
    });
    for (let n = 1; n <= 3; n++) {
      await pa.evaluate(async ([id, n]) => {
        await window.lib.col.change(id, (d) => {
          d.n = n;
        });
        await window.lib.db.sync();
      }, [id, n]);
      await waitForEqual(async () => (await get(pb, id))?.n, n, { what: `B to see n=${n}` });
    }
    assert.equal(posts.length, 0, `B pulled edits its events carried: ${posts.length} POST /v1/sync`);
    assert.deepEqual(errors, []);
  });
});
