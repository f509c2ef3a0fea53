// collection.history against a fake server that speaks PROTOCOL.md's
// `GET …/docs/{id}/changes` (the real route is another change's): pages
// through `before`/`limit`, this device's unacknowledged changes first and
// once, the local fallback when the server cannot answer, refusals and
// malformed answers, and conflicts' `by` filled from the history.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as A from "@automerge/automerge";
import { lib, dbName } from "./helpers.mjs";

const { open, isDynamergeError } = lib;
const BASE = "http://fake.invalid";

/**
 * fakeServer answers history pages from `pages` (cursor "" for the first,
 * then each page's own cursor), a lookup pull of `record` (its changes) with
 * 200, and every other request with 503, so that local changes stay pending.
 * `history` overrides the history answer. It records the history URLs asked.
 */
function fakeServer({ pages = {}, record, history } = {}) {
  const asked = [];
  const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  const f = async (url, init = {}) => {
    const u = new URL(String(url));
    const m = u.pathname.match(/^\/v1\/collections\/([^/]+)\/docs\/([^/]+)\/changes$/);
    if (m && init.method === "GET") {
      asked.push(u.pathname + u.search);
      if (history) return history(u);
      const page = pages[u.searchParams.get("before") ?? ""];
      return page ? json(200, page) : json(400, { error: { code: "bad_request", message: "unknown cursor" } });
    }
    if (u.pathname === "/v1/sync" && record) {
      const { docs } = JSON.parse(init.body);
      if (docs.length === 1 && docs[0].have.length === 0 && !docs[0].changes) {
        const d = docs[0];
        return json(200, { docs: [{ collection: d.collection, id: d.id, heads: A.getHeads(record), changes: Buffer.concat(A.getAllChanges(record)).toString("base64") }] });
      }
    }
    return json(503, { error: { code: "unavailable", message: "fake" } });
  };
  f.asked = asked;
  return f;
}

/** wire is a server history entry for a change of a document. */
function wire(bytes, by, at) {
  const c = A.decodeChange(bytes);
  return { hash: c.hash, actor: c.actor, seq: c.seq, deps: c.deps, time: c.time, message: c.message ?? null, ops: c.ops.length, by, at };
}

const slow = { retryInitialMs: 60_000, retryMaxMs: 60_000, live: false, requestTimeoutMs: 2_000 };

test("history: server pages after this device's pending changes, each change once", async () => {
  // Five local changes; the server says it accepted the first two (their
  // acknowledgement has not reached this device) and holds one older
  // change of someone else's.
  const name = dbName("h");
  let db = await open({ name, sync: false });
  const c0 = db.collection("todos");
  const id = await c0.create({ title: "a" });
  for (const t of ["b", "c", "d", "e"]) await c0.change(id, (d) => (d.title = t));
  const mine = (await c0.history(id)).changes; // newest first, from the local copy
  db.close();
  assert.equal(mine.length, 5);
  const served = (c, by, at) => ({ hash: c.hash, actor: c.actor, seq: c.seq, deps: c.deps, time: c.time, message: c.message, ops: c.ops, by, at });
  const page1 = { changes: [served(mine[3], "bob", "2026-12-05T10:01:00Z"), served(mine[4], "alice", "2026-12-05T10:00:00Z")], cursor: "p2", more: true };
  // A Go server may send a first change's empty deps as null.
  const page2 = { changes: [{ ...wire(A.getAllChanges(A.from({ x: 1 }))[0], "carol", "2026-12-04T09:00:00Z"), deps: null }], cursor: "p3", more: false };
  const fetch = fakeServer({ pages: { "": page1, p2: page2 } });

  db = await open({ url: BASE, name, fetch, ...slow });
  try {
    const c = db.collection("todos");
    const first = await c.history(id, { limit: 2 });
    assert.equal(first.local, false);
    assert.deepEqual(
      first.changes.map((x) => [x.hash, x.pending, x.by]),
      [
        [mine[0].hash, true, null],
        [mine[1].hash, true, null],
        [mine[2].hash, true, null],
        [mine[3].hash, false, "bob"],
        [mine[4].hash, false, "alice"],
      ],
    );
    // Pending entries carry the change's own fields, as the server would.
    const p = first.changes[0];
    assert.equal(p.at, null);
    assert.equal(p.seq, 5);
    assert.equal(p.ops, 2, "a new string title: the put and its one character");
    assert.deepEqual(p.deps, [mine[1].hash]);
    assert.ok(p.time > 1.7e9 && p.time < 1e10, `time ${p.time} in Unix seconds`);
    assert.equal(first.changes[3].at, "2026-12-05T10:01:00Z");
    assert.equal(first.more, true);
    const second = await c.history(id, { before: first.cursor, limit: 2 });
    assert.deepEqual(second, { changes: [{ ...page2.changes[0], deps: [], pending: false }], cursor: "p3", more: false, local: false });
    assert.deepEqual(fetch.asked, [`/v1/collections/todos/docs/${id}/changes?limit=2`, `/v1/collections/todos/docs/${id}/changes?before=p2&limit=2`]);
    await assert.rejects(c.history(id, { limit: 0 }), (e) => isDynamergeError(e, "invalid_argument"));
  } finally {
    db.close();
  }
});

test("history falls back to this device's copy when the server cannot answer, paged", async () => {
  const fetch = fakeServer({ history: () => new Response("busy", { status: 503 }) });
  const db = await open({ url: BASE, name: dbName("local"), fetch, ...slow });
  try {
    const c = db.collection("todos");
    const id = await c.create({ title: "a" });
    await c.change(id, (d) => (d.done = true));
    await c.delete(id);
    const one = await c.history(id, { limit: 2 });
    assert.equal(one.local, true);
    assert.equal(one.more, true);
    assert.deepEqual(one.changes.map((x) => [x.seq, x.pending, x.by, x.at]), [[3, true, null, null], [2, true, null, null]]);
    const two = await c.history(id, { before: one.cursor, limit: 2 });
    assert.deepEqual(two.changes.map((x) => x.seq), [1]);
    assert.equal(two.more, false);
    assert.equal(fetch.asked.length, 1, "a local cursor is not sent to the server");
    // Offline, an id this device does not hold is not_found.
    await assert.rejects(c.history("other"), (e) => isDynamergeError(e, "not_found"));
  } finally {
    db.close();
  }
});

test("history rejects the server's refusals and malformed answers", async () => {
  const answers = [
    [new Response(JSON.stringify({ error: { code: "forbidden", message: "no" } }), { status: 403 }), "forbidden"],
    [new Response(JSON.stringify({ changes: [{ hash: "x" }], cursor: "", more: false }), { status: 200 }), "bad_response"],
    [new Response("not json", { status: 200 }), "bad_response"],
  ];
  for (const [res, code] of answers) {
    const db = await open({ url: BASE, name: dbName("bad"), fetch: fakeServer({ history: () => res }), ...slow });
    try {
      const c = db.collection("todos");
      const id = await c.create({ title: "a" });
      await assert.rejects(c.history(id), (e) => isDynamergeError(e, code), code);
    } finally {
      db.close();
    }
  }
});

test("conflicts name who wrote each value from the server's history", async () => {
  // Two actors set the title concurrently; the fake server holds the record.
  const base = A.from({ title: "t" }, { actor: "aaaa" });
  const x = A.change(A.clone(base, { actor: "bbbb" }), (d) => (d.title = "from bob"));
  const y = A.change(A.clone(base, { actor: "cccc" }), (d) => (d.title = "from carol"));
  const record = A.merge(A.clone(x), y);
  const [cx] = A.getChanges(base, x);
  const [cy] = A.getChanges(base, y);
  const history = { changes: [wire(cy, "carol", "2026-12-05T10:02:00Z"), wire(cx, "bob", "2026-12-05T10:01:00Z")], cursor: "p2", more: true };
  const fetch = fakeServer({ record, pages: { "": history } });
  const db = await open({ url: BASE, name: dbName("conf"), fetch, ...slow });
  try {
    const c = db.collection("todos");
    const got = await c.conflicts("r1");
    assert.deepEqual(got, [
      {
        path: ["title"],
        values: [
          { value: "from carol", hash: A.decodeChange(cy).hash, by: "carol" },
          { value: "from bob", hash: A.decodeChange(cx).hash, by: "bob" },
        ],
      },
    ]);
    assert.equal((await c.get("r1")).title, "from carol");
    assert.equal(fetch.asked.length, 1, "one page named both writers");
    await c.resolve("r1", ["title"], "from bob");
    assert.deepEqual(await c.conflicts("r1"), []);
    assert.equal((await c.get("r1")).title, "from bob");
  } finally {
    db.close();
  }
});

