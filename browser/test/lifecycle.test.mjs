// Record lifecycle (PROTOCOL.md): delete and undelete as Automerge changes,
// reserved `$` keys, purge (per-doc `gone`, `purged: true` in the feed).
// Runs against the real server; purge.test.mjs covers the purge answers.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as A from "@automerge/automerge";
import { lib, dbName, fast, fileServer, until } from "./helpers.mjs";

const { open, isDynamergeError } = lib;
const srv = fileServer();

test("delete and undelete work offline, are durable, and hide the record from get and list", async () => {
  const name = dbName("del");
  let db = await open({ name, sync: false });
  let c = db.collection("todos");
  const keep = await c.create({ title: "keep" });
  const id = await c.create({ title: "Buy milk", done: false });
  const seen = [];
  c.subscribe((all) => seen.push(all.map((e) => e.id)));
  await until(() => seen.length === 1, "the first callback");
  await c.delete(id);
  assert.equal(await c.get(id), undefined);
  assert.deepEqual((await c.list()).map((e) => e.id), [keep]);
  assert.deepEqual(await c.deleted(), [{ id, doc: { title: "Buy milk", done: false } }]);
  assert.ok(await c.heads(id), "a deleted record keeps its heads");
  assert.equal(db.status.pending, 3);
  await until(() => seen.length === 2 && !seen[1].includes(id), "subscribe to fire on delete");
  // Deleting again writes nothing; editing a deleted record is refused.
  await c.delete(id);
  assert.equal(db.status.pending, 3);
  await assert.rejects(c.change(id, (d) => (d.done = true)), (e) => isDynamergeError(e, "deleted"));
  await assert.rejects(c.delete("nope"), (e) => isDynamergeError(e, "not_found"));
  await assert.rejects(c.undelete("nope"), (e) => isDynamergeError(e, "not_found"));
  db.close();

  // Durable: a new open still has it deleted, and undelete brings it back.
  db = await open({ name, sync: false });
  c = db.collection("todos");
  assert.equal(await c.get(id), undefined);
  assert.equal((await c.deleted()).length, 1);
  const seen2 = [];
  c.subscribe((all) => seen2.push(all.length));
  await until(() => seen2.length === 1, "the first callback");
  await c.undelete(id);
  assert.deepEqual(await c.get(id), { title: "Buy milk", done: false });
  assert.deepEqual(await c.deleted(), []);
  await until(() => seen2.at(-1) === 2, "subscribe to fire on undelete");
  await c.undelete(id);
  assert.equal(db.status.pending, 4);
  db.close();
});

test("reserved $ keys are never shown and cannot be written by accident", async () => {
  const db = await open({ name: dbName("res"), sync: false });
  const c = db.collection("todos");
  await assert.rejects(c.create({ $deleted: true, title: "x" }), (e) => isDynamergeError(e, "invalid_argument"));
  const id = await c.create({ title: "x", nested: { $ok: 1 } });
  const heads = await c.heads(id);
  for (const fn of [(d) => (d.$deleted = true), (d) => (d.$other = 1)]) {
    await assert.rejects(c.change(id, fn), (e) => isDynamergeError(e, "invalid_argument"));
  }
  assert.deepEqual(await c.heads(id), heads, "a refused change wrote something");
  // Below the root, $ keys are the app's.
  await c.change(id, (d) => (d.nested.$ok = 2));
  await c.delete(id);
  assert.deepEqual(await c.deleted(), [{ id, doc: { title: "x", nested: { $ok: 2 } } }]);
  // Reading a reserved key inside a change is harmless; removing it is refused.
  await c.undelete(id);
  await c.change(id, (d) => {
    d.title = String(d.$deleted);
  });
  assert.deepEqual(await c.get(id), { title: "undefined", nested: { $ok: 2 } });
  db.close();
});

test("records from the server show without their reserved keys", async () => {
  // A client of the protocol other than this library writes $-keys.
  const doc = A.from({ title: "from elsewhere", $meta: { v: 1 }, $deleted: false });
  const changes = Buffer.concat(A.getAllChanges(doc)).toString("base64");
  const res = await fetch(`${srv.url}/v1/sync`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ docs: [{ collection: "raw", id: "r1", have: [], changes }] }),
  });
  assert.equal(res.status, 200);
  const db = await open({ url: srv.url, name: dbName("raw"), live: false, ...fast });
  try {
    const c = db.collection("raw");
    await db.sync();
    assert.deepEqual(await c.list(), [{ id: "r1", doc: { title: "from elsewhere" } }]);
    assert.deepEqual(await c.get("r1"), { title: "from elsewhere" });
    // $meta is the protocol's: even an unchanged value may not be rewritten.
    await c.change("r1", (d) => (d.title = "edited"));
    await assert.rejects(c.change("r1", (d) => (d.$meta.v = 2)), (e) => isDynamergeError(e, "invalid_argument"));
  } finally {
    db.close();
  }
});

test("a delete reaches other devices, and an edit made meanwhile shows after undelete", async () => {
  const a = await open({ url: srv.url, name: dbName("a"), ...fast });
  const b = await open({ url: srv.url, name: dbName("b"), ...fast });
  try {
    const ca = a.collection("shared");
    const cb = b.collection("shared");
    const id = await ca.create({ title: "Buy milk", done: false });
    await a.sync();
    await until(async () => (await cb.get(id)) !== undefined, "b to get the record");
    let seen = [];
    cb.subscribe((all) => (seen = all));
    // Concurrent: a deletes, b edits, neither has the other's change.
    await Promise.all([ca.delete(id), cb.change(id, (d) => (d.done = true))]);
    await Promise.all([a.sync(), b.sync()]);
    await a.sync();
    for (const [n, c] of [["a", ca], ["b", cb]]) {
      await until(async () => (await c.get(id)) === undefined && (await c.deleted()).length === 1, `${n} to show it deleted`);
    }
    await until(() => seen.length === 0, "b's subscription to drop it");
    await ca.undelete(id);
    await a.sync();
    for (const [n, c] of [["a", ca], ["b", cb]]) {
      await until(async () => (await c.get(id))?.done === true, `${n} to show the edit after undelete`);
    }
    await until(() => seen.length === 1, "b's subscription to show it again");
  } finally {
    a.close();
    b.close();
  }
});
