// Sync against a real dynamerge server: push, pull, live events, the feed,
// offline start, concurrent edits, missing_deps recovery.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { lib, dbName, fast, freePort, startServer, until, syncDocs } from "./helpers.mjs";

const { open } = lib;
let srv;
before(async () => {
  srv = await startServer();
});
after(async () => {
  await srv?.stop();
});

test("sync pushes local changes and another device pulls them live", async () => {
  const a = await open({ url: srv.url, name: dbName("a"), ...fast });
  const b = await open({ url: srv.url, name: dbName("b"), ...fast });
  try {
    const ta = a.collection("todos");
    const tb = b.collection("todos");
    let seen = [];
    tb.subscribe((all) => (seen = all));
    const id = await ta.create({ title: "Buy milk", done: false });
    await ta.change(id, (doc) => {
      doc.done = true;
    });
    await a.sync();
    assert.equal(a.status.pending, 0);
    assert.equal(a.status.online, true);
    assert.ok(a.status.lastSyncAt > 0);
    // b never calls sync: the event stream tells it.
    await until(() => seen.length === 1 && seen[0].doc.done === true, "b to see a's record");
    assert.deepEqual(await tb.get(id), { title: "Buy milk", done: true });
    assert.deepEqual(await tb.heads(id), await ta.heads(id));
    // The server has it too.
    const res = await fetch(`${srv.url}/v1/collections/todos/docs/${id}`);
    assert.equal(res.status, 200);
    assert.deepEqual((await res.json()).doc, { title: "Buy milk", done: true });
  } finally {
    a.close();
    b.close();
  }
});

test("concurrent offline edits merge on every device", async () => {
  const a = await open({ url: srv.url, name: dbName("a"), ...fast });
  const b = await open({ url: srv.url, name: dbName("b"), ...fast });
  try {
    const ta = a.collection("merge");
    const tb = b.collection("merge");
    const id = await ta.create({ title: "x", tags: [] });
    await a.sync();
    await b.sync();
    await until(async () => (await tb.get(id)) !== undefined, "b to get the record");
    // Both change the record, neither has synced the other's change.
    await Promise.all([
      ta.change(id, (d) => {
        d.title = "from a";
        d.tags.push("a");
      }),
      tb.change(id, (d) => {
        d.done = true;
        d.tags.push("b");
      }),
    ]);
    await Promise.all([a.sync(), b.sync()]);
    await a.sync();
    await until(async () => {
      const [x, y] = [await ta.heads(id), await tb.heads(id)];
      return JSON.stringify(x.sort()) === JSON.stringify(y.sort());
    }, "heads to converge");
    const ja = await ta.get(id);
    assert.deepEqual(ja, await tb.get(id));
    assert.equal(ja.title, "from a");
    assert.equal(ja.done, true);
    assert.deepEqual([...ja.tags].sort(), ["a", "b"]);
  } finally {
    a.close();
    b.close();
  }
});

test("a new device discovers existing records through the feed", async () => {
  const a = await open({ url: srv.url, name: dbName("a"), ...fast });
  const ids = [];
  try {
    const ta = a.collection("feedc");
    for (let i = 0; i < 30; i++) ids.push(await ta.create({ n: i }));
    await a.sync();
  } finally {
    a.close();
  }
  // live: false leaves the feed as the only way to hear of them.
  const b = await open({ url: srv.url, name: dbName("b"), live: false, ...fast });
  try {
    const tb = b.collection("feedc");
    await b.sync();
    const all = await tb.list();
    assert.equal(all.length, 30);
    assert.deepEqual(new Set(all.map((e) => e.id)), new Set(ids));
    assert.deepEqual(await tb.get(ids[7]), { n: 7 });
  } finally {
    b.close();
  }
});

test("many dirty records go in few requests", async () => {
  const requests = [];
  const counting = (url, init) => {
    if (String(url).endsWith("/v1/sync")) requests.push(syncDocs(init).length);
    return fetch(url, init);
  };
  const a = await open({ url: srv.url, name: dbName("a"), fetch: counting, live: false, batchDocs: 40, ...fast });
  try {
    await until(() => a.status.lastSyncAt, "the first round");
    requests.length = 0;
    const t = a.collection("batch");
    await Promise.all(Array.from({ length: 100 }, (_, i) => t.create({ i })));
    await a.sync();
    assert.equal(a.status.pending, 0);
    const docs = requests.reduce((x, y) => x + y, 0);
    assert.ok(docs >= 100, `sent ${docs} docs`);
    assert.ok(Math.max(...requests) <= 40, `batches ${requests}`);
    assert.ok(requests.length <= 8, `100 records took ${requests.length} requests: ${requests}`);
  } finally {
    a.close();
  }
});

test("an app that starts offline works and syncs when the server comes", async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const name = dbName("off");
  const db = await open({ url, name, ...fast });
  let later;
  try {
    const t = db.collection("offline");
    const id = await t.create({ v: 1 });
    await t.change(id, (d) => {
      d.v = 2;
    });
    await assert.rejects(db.sync(), (e) => e.code === "network");
    await until(() => db.status.error?.code === "network" && !db.status.online, "offline status");
    assert.equal(db.status.pending, 2);
    // Close the tab while offline; a later open sends it all.
    db.close();
    later = await startServer({ port });
    const db2 = await open({ url, name, ...fast });
    try {
      await until(() => db2.status.pending === 0, "the outbox to drain without sync()");
      assert.equal(db2.status.online, true);
      assert.equal(db2.status.error, null);
      const res = await fetch(`${url}/v1/collections/offline/docs/${id}`);
      assert.deepEqual((await res.json()).doc, { v: 2 });
    } finally {
      db2.close();
    }
  } finally {
    db.close();
    await later?.stop();
  }
});

test("missing_deps: a server that lost the record gets the whole history again", async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const first = await startServer({ port });
  const codes = [];
  const watching = async (u, init) => {
    const res = await fetch(u, init);
    if (String(u).endsWith("/v1/sync") && res.ok) {
      for (const d of (await res.clone().json()).docs) if (d.error) codes.push(d.error.code);
    }
    return res;
  };
  const db = await open({ url, name: dbName("md"), fetch: watching, ...fast });
  let second;
  try {
    const t = db.collection("md");
    const id = await t.create({ v: 1 });
    await db.sync();
    await first.stop();
    // A new, empty store behind the same address: the client's next change
    // depends on changes this server never saw.
    second = await startServer({ port });
    await t.change(id, (d) => {
      d.v = 2;
    });
    await db.sync();
    assert.deepEqual(codes, ["missing_deps"], "the server asked for the missing history once");
    assert.equal(db.status.pending, 0);
    assert.deepEqual(db.status.rejected, []);
    const res = await fetch(`${url}/v1/collections/md/docs/${id}`);
    assert.deepEqual((await res.json()).doc, { v: 2 });
  } finally {
    db.close();
    await second?.stop();
  }
});
