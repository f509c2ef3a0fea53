// Local storage without a server (sync: false): records, the JSON view,
// the outbox, durability across reopen, compaction, validation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lib, dbName, until } from "./helpers.mjs";

const { open, isDynamergeError } = lib;

test("create, change, get and list work offline and survive reopen", async () => {
  const name = dbName();
  let db = await open({ name, sync: false });
  const todos = db.collection("todos");
  const id = await todos.create({ title: "Buy milk", done: false });
  assert.match(id, /^[0-9a-f-]{36}$/);
  await todos.change(id, (doc) => {
    doc.done = true;
  });
  assert.deepEqual(await todos.get(id), { title: "Buy milk", done: true });
  assert.equal(await todos.get("nope"), undefined);
  assert.equal(db.status.pending, 2);
  assert.equal(db.status.leader, false);
  db.close();

  // A closed tab loses nothing: the next open has the records and the outbox.
  db = await open({ name, sync: false });
  const again = db.collection("todos");
  assert.deepEqual(await again.list(), [{ id, doc: { title: "Buy milk", done: true } }]);
  assert.equal(db.status.pending, 2);
  await again.change(id, (doc) => {
    doc.title = "Buy oat milk";
  });
  assert.equal((await again.get(id)).title, "Buy oat milk");
  assert.equal(db.status.pending, 3);
  db.close();
});

test("a change function that changes nothing writes nothing", async () => {
  const db = await open({ name: dbName(), sync: false });
  const c = db.collection("notes");
  const id = await c.create({ n: 1 });
  const heads = await c.heads(id);
  await c.change(id, () => {});
  assert.deepEqual(await c.heads(id), heads);
  assert.equal(db.status.pending, 1);
  db.close();
});

test("a change function that throws changes nothing", async () => {
  const db = await open({ name: dbName(), sync: false });
  const c = db.collection("notes");
  const id = await c.create({ n: 1 });
  await assert.rejects(
    c.change(id, (doc) => {
      doc.n = 2;
      throw new Error("boom");
    }),
    /boom/,
  );
  assert.deepEqual(await c.get(id), { n: 1 });
  assert.equal(db.status.pending, 1);
  // The document is still usable after the failed change.
  await c.change(id, (doc) => {
    doc.n = 3;
  });
  assert.deepEqual(await c.get(id), { n: 3 });
  db.close();
});

test("values map to the server's JSON view", async () => {
  const db = await open({ name: dbName(), sync: false });
  const c = db.collection("kinds");
  const when = new Date("2026-01-02T03:04:05.000Z");
  const id = await c.create({ s: "text", n: 1.5, b: true, z: null, list: [1, "a"], nested: { x: 1 }, when, bytes: new Uint8Array([1, 2, 3]) });
  assert.deepEqual(await c.get(id), {
    s: "text",
    n: 1.5,
    b: true,
    z: null,
    list: [1, "a"],
    nested: { x: 1 },
    when: "2026-01-02T03:04:05.000Z",
    bytes: "AQID",
  });
  // What get and list return is frozen: records change only through change().
  const got = await c.get(id);
  assert.throws(() => {
    "use strict";
    got.s = "x";
  }, TypeError);
  db.close();
});

test("many changes are compacted and reload to the same document", async () => {
  const name = dbName();
  let db = await open({ name, sync: false, compactAfter: 4, maxLoadedDocs: 1 });
  const c = db.collection("counters");
  const id = await c.create({ n: 0, log: [] });
  const other = await c.create({ n: 0, log: [] });
  for (let i = 1; i <= 25; i++) {
    // Alternating records with maxLoadedDocs 1 forces reloads from chunks.
    await c.change(id, (doc) => {
      doc.n = i;
      doc.log.push(i);
    });
    await c.change(other, (doc) => {
      doc.n = -i;
    });
  }
  const want = { n: 25, log: Array.from({ length: 25 }, (_, i) => i + 1) };
  assert.deepEqual(await c.get(id), want);
  const heads = await c.heads(id);
  db.close();
  db = await open({ name, sync: false, compactAfter: 4 });
  const c2 = db.collection("counters");
  assert.deepEqual(await c2.heads(id), heads);
  await c2.change(id, (doc) => {
    doc.n = 26;
  });
  assert.equal((await c2.get(id)).n, 26);
  assert.equal(db.status.pending, 2 + 25 * 2 + 1);
  db.close();
});

test("bad input is refused with typed errors and changes nothing", async () => {
  const db = await open({ name: dbName(), sync: false });
  assert.throws(() => db.collection("Bad Name"), (e) => isDynamergeError(e, "invalid_id"));
  const c = db.collection("todos");
  await assert.rejects(c.create({ a: 1 }, { id: "has space" }), (e) => isDynamergeError(e, "invalid_id"));
  await assert.rejects(c.get("x/y"), (e) => isDynamergeError(e, "invalid_id"));
  await assert.rejects(c.create([1, 2]), (e) => isDynamergeError(e, "invalid_argument"));
  await assert.rejects(c.create({ f: () => 1 }), (e) => isDynamergeError(e, "invalid_argument"));
  await assert.rejects(c.create({ a: [1, undefined] }), (e) => isDynamergeError(e, "invalid_argument") && /doc\.a\[1\]/.test(e.message));
  await assert.rejects(c.create({ n: NaN }), (e) => isDynamergeError(e, "invalid_argument"));
  await assert.rejects(
    c.change("missing", (d) => {
      d.x = 1;
    }),
    (e) => isDynamergeError(e, "not_found"),
  );
  const id = await c.create({ a: 1 }, { id: "fixed-id" });
  assert.equal(id, "fixed-id");
  await assert.rejects(c.create({ a: 2 }, { id: "fixed-id" }), (e) => isDynamergeError(e, "invalid_argument"));
  assert.deepEqual(await c.get("fixed-id"), { a: 1 });
  assert.equal(db.status.pending, 1);
  await assert.rejects(db.sync(), (e) => isDynamergeError(e, "invalid_argument"));
  await assert.rejects(open({ url: "not a url", name: dbName() }), (e) => isDynamergeError(e, "invalid_argument"));
  await assert.rejects(open({ name: dbName() }), (e) => isDynamergeError(e, "invalid_argument") && /options\.url/.test(e.message));
  db.close();
  await assert.rejects(c.get("fixed-id"), (e) => isDynamergeError(e, "closed"));
});

test("subscribe sees the collection at once and after every change", async () => {
  const db = await open({ name: dbName(), sync: false });
  const c = db.collection("todos");
  const calls = [];
  const off = c.subscribe((all) => calls.push(all.map((e) => e.doc.t)));
  await until(() => calls.length === 1, "the first call");
  assert.deepEqual(calls, [[]]);
  const id = await c.create({ t: "a" });
  await until(() => calls.length === 2, "the call after create");
  await c.change(id, (d) => {
    d.t = "b";
  });
  await until(() => calls.length === 3, "the call after change");
  assert.deepEqual(calls, [[], ["a"], ["b"]]);
  off();
  await c.change(id, (d) => {
    d.t = "c";
  });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(calls.length, 3);
  db.close();
});

test("collections are separate", async () => {
  const db = await open({ name: dbName(), sync: false });
  const a = db.collection("a");
  const b = db.collection("b");
  await a.create({ x: 1 }, { id: "same" });
  await b.create({ x: 2 }, { id: "same" });
  assert.deepEqual(await a.get("same"), { x: 1 });
  assert.deepEqual(await b.get("same"), { x: 2 });
  assert.equal((await a.list()).length, 1);
  assert.equal(db.collection("a"), a);
  db.close();
});
