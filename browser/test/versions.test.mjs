// Versions of a record: getAt (the state at some heads), restore (one local
// change back to it: offline, text by splices, undelete, nothing to do at
// the current heads) and conflicts from two replicas, resolved.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lib, dbName, fast, fileServer, until } from "./helpers.mjs";

const { open, isDynamergeError, updateText } = lib;
const srv = fileServer();

test("getAt shows a past state the way get does, and refuses heads it does not hold", async () => {
  const db = await open({ name: dbName("at"), sync: false });
  try {
    const c = db.collection("todos");
    const id = await c.create({ title: "Buy milk", done: false, tags: ["a"] });
    const v1 = await c.heads(id);
    await c.change(id, (d) => {
      updateText(d, ["title"], "Buy oat milk");
      d.done = true;
      d.tags.push("b");
    });
    const v2 = await c.heads(id);
    await c.delete(id);
    const v3 = await c.heads(id);
    assert.deepEqual(await c.getAt(id, v1), { title: "Buy milk", done: false, tags: ["a"] });
    const at2 = await c.getAt(id, v2);
    assert.deepEqual(at2, { title: "Buy oat milk", done: true, tags: ["a", "b"] });
    assert.ok(Object.isFrozen(at2) && Object.isFrozen(at2.tags), "getAt's JSON is frozen like get's");
    assert.equal(await c.getAt(id, v3), undefined, "deleted at those heads");
    assert.deepEqual(await c.getAt(id, []), {}, "before the first change");
    for (const bad of [["00".repeat(32)], ["nothex"], "abc", [1]]) {
      await assert.rejects(c.getAt(id, bad), (e) => isDynamergeError(e, "invalid_argument"), JSON.stringify(bad));
    }
    assert.equal(await c.getAt("unknown", v1), undefined);
  } finally {
    db.close();
  }
});

test("restore works offline, is one change, undeletes, and does nothing at the current heads", async () => {
  const db = await open({ name: dbName("restore"), sync: false });
  try {
    const c = db.collection("todos");
    const id = await c.create({ title: "Plan trip", notes: "book train", done: false, n: 1, nested: { a: 1, b: [1, 2, 3] } });
    const v1 = await c.heads(id);
    await c.change(id, (d) => {
      updateText(d, ["notes"], "book train and hotel");
      d.done = true;
      d.extra = "x";
      delete d.n;
      d.nested.a = 2;
      d.nested.b.splice(1, 1, 20, 21);
    });
    await c.delete(id);
    assert.equal(await c.get(id), undefined);
    const pending = db.status.pending;

    await c.restore(id, v1);
    assert.equal(db.status.pending, pending + 1, "restore is one change");
    assert.deepEqual(await c.get(id), { title: "Plan trip", notes: "book train", done: false, n: 1, nested: { a: 1, b: [1, 2, 3] } });
    assert.deepEqual(await c.deleted(), [], "restoring from before the delete undeletes");
    const page = await c.history(id);
    assert.equal(page.local, true);
    assert.match(page.changes[0].message, /^restore /, "the restore change says what it is");

    // Restoring the state it is in writes nothing.
    const heads = await c.heads(id);
    await c.restore(id, heads);
    await c.restore(id, v1);
    assert.deepEqual(await c.heads(id), heads);
    assert.equal(db.status.pending, pending + 1);

    // Unknown heads: refused, nothing written.
    await assert.rejects(c.restore(id, ["ab".repeat(32)]), (e) => isDynamergeError(e, "invalid_argument"));
    assert.deepEqual(await c.heads(id), heads);
    await assert.rejects(c.restore("nope", v1), (e) => isDynamergeError(e, "not_found"));
  } finally {
    db.close();
  }
});

/** pair opens two synced databases a and b with the record `doc` in both. */
async function pair(collection, doc) {
  const a = await open({ url: srv.url, name: dbName("a"), ...fast });
  const b = await open({ url: srv.url, name: dbName("b"), ...fast });
  const ca = a.collection(collection);
  const cb = b.collection(collection);
  const id = await ca.create(doc);
  await a.sync();
  await until(async () => (await cb.get(id)) !== undefined, "b to get the record");
  return { a, b, ca, cb, id };
}

test("a restore merges with a concurrent edit of the same text, and reaches the other replica", async () => {
  const { a, b, ca, cb, id } = await pair("texts", { notes: "The quick fox" });
  try {
    await ca.change(id, (d) => updateText(d, ["notes"], "The quick brown fox"));
    const v2 = await ca.heads(id);
    await ca.change(id, (d) => updateText(d, ["notes"], "The quick brown fox jumps"));
    await a.sync();
    await until(async () => (await cb.get(id))?.notes === "The quick brown fox jumps", "b to get a's edits");
    // Concurrently: a restores the version without " jumps", b types at the start.
    await Promise.all([ca.restore(id, v2), cb.change(id, (d) => updateText(d, ["notes"], "Oh! The quick brown fox jumps"))]);
    await Promise.all([a.sync(), b.sync()]);
    await a.sync();
    for (const [n, c] of [["a", ca], ["b", cb]]) {
      await until(async () => (await c.get(id))?.notes === "Oh! The quick brown fox", `${n} to show both edits merged`);
    }
  } finally {
    a.close();
    b.close();
  }
});

test("conflicts from two replicas: the shown value first, each with its change; resolve settles it", async () => {
  const { a, b, ca, cb, id } = await pair("conflicts", { title: "t", tags: ["x", "y"], meta: { size: 1 } });
  try {
    assert.deepEqual(await ca.conflicts(id), []);
    // Concurrent writes of the same key, list element and nested key.
    await ca.change(id, (d) => {
      d.title = "from a";
      d.tags[1] = "ya";
      d.meta.size = 2;
    });
    await cb.change(id, (d) => {
      d.title = "from b";
      d.tags[1] = "yb";
      d.meta.size = 3;
    });
    const [ha] = await ca.heads(id);
    const [hb] = await cb.heads(id);
    await Promise.all([a.sync(), b.sync()]);
    await a.sync();
    await until(async () => (await ca.heads(id)).length === 2 && (await cb.heads(id)).length === 2, "both to hold both changes");
    const got = await ca.conflicts(id);
    assert.deepEqual(await cb.conflicts(id), got, "both replicas list the same conflicts");
    const doc = await ca.get(id);
    // In document order: Automerge keeps map keys sorted.
    assert.deepEqual(got.map((c) => c.path), [["meta", "size"], ["tags", 1], ["title"]]);
    const shown = [doc.meta.size, doc.tags[1], doc.title];
    for (const [n, c] of got.entries()) {
      assert.equal(c.values.length, 2);
      assert.deepEqual(c.values[0].value, shown[n], `the shown value first at ${c.path}`);
      assert.deepEqual(new Set(c.values.map((v) => v.hash)), new Set([ha, hb]));
      const fromA = c.values.find((v) => v.hash === ha);
      assert.deepEqual(fromA.value, [2, "ya", "from a"][n]);
      // No authentication on this server: nobody is named (and before the history route exists, nothing is known).
      for (const v of c.values) assert.equal(v.by, null);
    }

    // Pick b's title: every replica then shows it alone.
    await ca.resolve(id, ["title"], "from b");
    await ca.resolve(id, ["tags", 1], "ya");
    await ca.change(id, (d) => (d.meta.size = 4));
    assert.deepEqual(await ca.conflicts(id), []);
    await a.sync();
    await until(async () => (await cb.conflicts(id)).length === 0 && (await cb.get(id)).title === "from b", "b to see it resolved");
    assert.deepEqual(await cb.get(id), { title: "from b", tags: ["x", "ya"], meta: { size: 4 } });
    await assert.rejects(ca.resolve(id, ["$deleted"], true), (e) => isDynamergeError(e, "invalid_argument"));
    await assert.rejects(ca.resolve(id, ["nothing", "here"], 1), (e) => isDynamergeError(e, "invalid_argument"));
    await assert.rejects(ca.resolve(id, [], 1), (e) => isDynamergeError(e, "invalid_argument"));
  } finally {
    a.close();
    b.close();
  }
});

test("restore turns counters back by increments (merging with another client's increment) and lists element by element", async () => {
  // A client of the protocol other than this library made the record with a counter.
  const A = await import("@automerge/automerge");
  const push = async (changes) => {
    const body = JSON.stringify({ docs: [{ collection: "counters", id: "c1", have: [], changes: Buffer.concat(changes).toString("base64") }] });
    const res = await fetch(`${srv.url}/v1/sync`, { method: "POST", headers: { "Content-Type": "application/json" }, body });
    assert.equal(res.status, 200);
  };
  const raw = A.from({ n: new A.Counter(5), tags: ["ab", "cd"] });
  await push(A.getAllChanges(raw));
  const db = await open({ url: srv.url, name: dbName("counter"), live: false, ...fast });
  try {
    const c = db.collection("counters");
    assert.deepEqual(await c.get("c1"), { n: 5, tags: ["ab", "cd"] });
    const v1 = await c.heads("c1");
    await c.change("c1", (d) => {
      d.n.increment(3);
      updateText(d, ["tags", 1], "cdef");
      d.tags.push("gh");
    });
    await c.restore("c1", v1);
    assert.deepEqual(await c.get("c1"), { n: 5, tags: ["ab", "cd"] });
    // Meanwhile the other client added 10: the restore took back only this device's 3.
    await push([A.getLastLocalChange(A.change(raw, (d) => d.n.increment(10)))]);
    await db.sync();
    await db.sync();
    assert.deepEqual(await c.get("c1"), { n: 15, tags: ["ab", "cd"] });
  } finally {
    db.close();
  }
});
