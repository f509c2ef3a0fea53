// Purge (PROTOCOL.md, Record lifecycle): a record the server answers `gone`
// for, or lists as `purged: true` in its feed, is dropped from IndexedDB,
// and local changes lost with it show in status.rejected. Today's server
// does not purge: its answers are rewritten by a fetch wrapper.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lib, dbName, fast, fileServer, until } from "./helpers.mjs";

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
  const marking = async (url, init) => {
    const res = await fetch(url, init);
    if (!String(url).includes("/feed") || !res.ok) return res;
    const page = await res.json();
    // Today's server does not flag deleted records yet: do it here.
    for (const d of page.docs) if (d.id === id) d.deleted = true;
    return Response.json(page);
  };
  const b = await open({
    url: srv.url,
    name: dbName("b"),
    live: false,
    ...fast,
    fetch: async (url, init) => {
      if (String(url).endsWith("/v1/sync")) log.push(JSON.parse(init.body).docs.map((d) => d.id));
      return marking(url, init);
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
