// Purge (PROTOCOL.md, Record lifecycle): a record the server answers `gone`
// for, or lists as `purged: true` in its feed, is dropped from IndexedDB,
// and local changes lost with it show in status.rejected. Most cases
// rewrite the server's answers with a fetch wrapper, to reach every path;
// the last runs a server that purges within seconds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lib, dbName, fast, fileServer, startServer, until, syncDocs } from "./helpers.mjs";

const { open, isDynamergeError } = lib;
const srv = fileServer();

/**
 * purging returns a fetch that answers per-doc `gone` for the ids in
 * `gone` and marks them `purged: true` in feed pages (adding the entry
 * when the page lacks it).
 */
function purging(gone) {
  return async (url, init) => {
    const u = String(url);
    const res = await fetch(url, init);
    if (u.endsWith("/v1/sync") && res.ok) {
      const body = await res.json();
      for (const d of body.docs) {
        if (gone.has(d.id)) {
          delete d.changes;
          d.heads = [];
          d.error = { code: "gone", message: "purged" };
        }
      }
      return Response.json(body);
    }
    if (u.includes("/feed") && res.ok) {
      const page = await res.json();
      for (const id of gone) {
        const e = page.docs.find((d) => d.id === id);
        if (e) e.purged = true;
        else page.docs.push({ id, heads: [], purged: true });
      }
      return Response.json(page);
    }
    return res;
  };
}

test("a per-doc gone drops the record and reports its unsent changes", async () => {
  const gone = new Set();
  const name = dbName("gone");
  let offline = false;
  const inner = purging(gone);
  const net = (url, init) => (offline ? Promise.reject(new TypeError("offline")) : inner(url, init));
  let db = await open({ url: srv.url, name, fetch: net, live: false, ...fast });
  try {
    const c = db.collection("purge");
    const id = await c.create({ title: "old" });
    const other = await c.create({ title: "fine" });
    await db.sync();
    // Edited offline for too long: the server purged the record meanwhile.
    offline = true;
    await c.change(id, (d) => (d.title = "edited"));
    await c.change(id, (d) => (d.more = true));
    gone.add(id);
    let seen = [];
    c.subscribe((all) => (seen = all.map((e) => e.id)));
    offline = false;
    // Whichever round hears the gone first, sync() or a background retry,
    // drops the record; sync() rejects when it is the one.
    const err = await db.sync().then(() => undefined, (e) => e);
    if (err) assert.ok(isDynamergeError(err, "gone") && err.id === id, String(err));
    assert.equal(await c.get(id), undefined);
    assert.equal(await c.heads(id), undefined);
    assert.deepEqual(await c.deleted(), []);
    assert.deepEqual((await c.list()).map((e) => e.id), [other]);
    await until(() => seen.length === 1, "subscribe to drop the purged record");
    await until(() => db.status.pending === 0 && db.status.rejected.length === 1, "the report in status");
    const r = db.status.rejected[0];
    assert.equal(r.collection, "purge");
    assert.equal(r.id, id);
    assert.equal(r.error.code, "gone");
    assert.equal(r.unsent, 2);
    assert.deepEqual(r.doc, { title: "edited", more: true });
    db.close();

    // The report survives a reload, until a record of that id exists again.
    gone.clear();
    db = await open({ url: srv.url, name, live: false, ...fast });
    await until(() => db.status.rejected.length === 1, "the report after reopen");
    await db.collection("purge").create({ title: "new history" }, { id });
    await until(() => db.status.rejected.length === 0, "the report to go");
  } finally {
    db.close();
  }
});

test("purged: true in the feed drops a synced record without reporting anything", async () => {
  const gone = new Set();
  const db = await open({ url: srv.url, name: dbName("feedpurge"), fetch: purging(gone), live: false, ...fast });
  try {
    const c = db.collection("fpurge");
    const id = await c.create({ title: "x" });
    await c.delete(id);
    await db.sync();
    assert.equal((await c.deleted()).length, 1);
    gone.add(id);
    await db.sync();
    assert.deepEqual(await c.deleted(), []);
    assert.equal(await c.heads(id), undefined);
    assert.deepEqual(db.status.rejected, []);
    assert.equal(db.status.error, null);
  } finally {
    db.close();
  }
});

test("a deleted record this device never held is not pulled from the feed", async () => {
  const a = await open({ url: srv.url, name: dbName("a"), live: false, ...fast });
  let id;
  try {
    const c = a.collection("fdel");
    id = await c.create({ title: "x" });
    await c.delete(id);
    await a.sync();
  } finally {
    a.close();
  }
  const log = [];
  const b = await open({
    url: srv.url,
    name: dbName("b"),
    live: false,
    ...fast,
    fetch: async (url, init) => {
      if (String(url).endsWith("/v1/sync")) log.push(syncDocs(init).map((d) => d.id));
      return fetch(url, init);
    },
  });
  try {
    const c = b.collection("fdel");
    await b.sync();
    assert.ok(!log.flat().includes(id), `the deleted record was pulled: ${JSON.stringify(log)}`);
    assert.deepEqual(await c.deleted(), []);
    // Asked for by id, it is fetched, and shows as deleted.
    assert.equal(await c.get(id), undefined);
    assert.equal((await c.deleted()).length, 1);
  } finally {
    b.close();
  }
});

test("a real purge: the stale device's edit is refused gone and reported; a new history under the id is a new record", async () => {
  // Records deleted for 2 s are purged, swept every 200 ms.
  const purger = await startServer({ args: ["--purge-deleted-after", "2s"] });
  let offline = false;
  const net = (url, init) => (offline ? Promise.reject(new TypeError("offline")) : fetch(url, init));
  const a = await open({ url: purger.url, name: dbName("pa"), live: false, ...fast });
  const b = await open({ url: purger.url, name: dbName("pb"), fetch: net, live: false, ...fast });
  try {
    const ca = a.collection("real");
    const cb = b.collection("real");
    const id = await ca.create({ title: "soon gone" });
    await a.sync();
    await b.sync();
    assert.deepEqual(await cb.get(id), { title: "soon gone" });
    // b goes offline and edits; a deletes, and the server purges it.
    offline = true;
    await cb.change(id, (d) => (d.title = "edited offline"));
    await ca.delete(id);
    await a.sync();
    await until(async () => {
      const res = await fetch(`${purger.url}/v1/collections/real/docs/${id}`);
      return res.status === 410;
    }, "the server to purge the record", 20_000);
    // a learns it from the feed and drops its copy.
    await a.sync();
    assert.deepEqual(await ca.deleted(), []);
    assert.equal(await ca.heads(id), undefined);
    // b comes back: its edit is refused gone, the record dropped, and the
    // lost edit reported.
    offline = false;
    await b.sync().catch((e) => assert.ok(isDynamergeError(e, "gone"), String(e)));
    await until(() => b.status.rejected.length === 1, "b's report");
    assert.equal(b.status.rejected[0].error.code, "gone");
    assert.deepEqual(b.status.rejected[0].doc, { title: "edited offline" });
    assert.equal(await cb.get(id), undefined);
    // A new history under the same id is a new record, on both devices.
    await ca.create({ title: "reborn" }, { id });
    await a.sync();
    await b.sync();
    assert.deepEqual(await cb.get(id), { title: "reborn" });
  } finally {
    a.close();
    b.close();
    await purger.stop();
  }
});
