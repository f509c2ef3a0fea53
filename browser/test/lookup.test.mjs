// Reads of records this device has never held: get, change, delete and
// heads of an unknown id ask the server first (bounded by the request
// timeout; offline they see only what is here), opened collections are
// remembered and followed from the next open, and sync() reads their feeds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lib, dbName, fast, freePort, fileServer, until, syncDocs } from "./helpers.mjs";

const { open, isDynamergeError } = lib;
const srv = fileServer();

/** seed creates records on another device and returns their ids. */
async function seed(collection, docs) {
  const a = await open({ url: srv.url, name: dbName("seed"), live: false, ...fast });
  try {
    const c = a.collection(collection);
    const ids = [];
    for (const d of docs) ids.push(await c.create(d));
    await a.sync();
    return ids;
  } finally {
    a.close();
  }
}

/** counting wraps fetch and counts the lookups: pulls of one record this device lacks. */
function counting() {
  const f = (url, init) => {
    if (String(url).endsWith("/v1/sync")) {
      const docs = syncDocs(init);
      if (docs.length === 1 && docs[0].have.length === 0 && !docs[0].changes) f.lookups++;
    }
    return fetch(url, init);
  };
  f.lookups = 0;
  return f;
}

test("a second device: sync() then get() and change() of a collection it never opened", async () => {
  const [id1, id2] = await seed("second", [{ title: "one" }, { title: "two" }]);
  const b = await open({ url: srv.url, name: dbName("b"), live: false, ...fast });
  try {
    await b.sync();
    const c = b.collection("second");
    assert.deepEqual(await c.get(id1), { title: "one" });
    await c.change(id2, (d) => (d.done = true));
    assert.deepEqual(await c.get(id2), { title: "two", done: true });
    await b.sync();
    const res = await fetch(`${srv.url}/v1/collections/second/docs/${id2}`);
    assert.deepEqual((await res.json()).doc, { title: "two", done: true });
    // An id the server does not have either: undefined, and not_found.
    assert.equal(await c.get("nothing-here"), undefined);
    await assert.rejects(c.change("nothing-here", () => {}), (e) => isDynamergeError(e, "not_found"));
  } finally {
    b.close();
  }
});

test("delete and heads of an unknown id fetch it first", async () => {
  const [id] = await seed("unknown", [{ title: "x" }]);
  const f = counting();
  const b = await open({ url: srv.url, name: dbName("b"), live: false, fetch: f, ...fast });
  try {
    const c = b.collection("unknown");
    const heads = await c.heads(id);
    assert.equal(heads.length, 1);
    assert.equal(f.lookups, 1);
    const before = f.lookups;
    await c.delete(id);
    assert.equal(f.lookups, before, "a held record was fetched again");
    assert.equal((await c.deleted()).length, 1);
  } finally {
    b.close();
  }
});

test("offline, a lookup finds nothing, and waits at most requestTimeoutMs", async () => {
  const [id] = await seed("offline", [{ title: "x" }]);
  // A server that never answers: every request hangs until it is aborted.
  const hanging = (url, init) =>
    new Promise((_, reject) => init.signal.addEventListener("abort", () => reject(init.signal.reason), { once: true }));
  const b = await open({ url: srv.url, name: dbName("hang"), fetch: hanging, live: false, ...fast, requestTimeoutMs: 300 });
  try {
    const t0 = Date.now();
    assert.equal(await b.collection("offline").get(id), undefined);
    const ms = Date.now() - t0;
    assert.ok(ms >= 250 && ms < 3000, `get took ${ms} ms`);
  } finally {
    b.close();
  }
  // Unreachable (nothing listens): get is undefined, change not_found.
  const url = `http://127.0.0.1:${await freePort()}`;
  let asked = 0;
  const watching = (u, init) => {
    if (String(u).endsWith("/v1/sync") && init.body.includes(id)) asked++;
    return fetch(u, init);
  };
  const d = await open({ url, name: dbName("down"), live: false, fetch: watching, ...fast });
  try {
    const c = d.collection("offline");
    assert.equal(await c.get(id), undefined);
    await assert.rejects(c.change(id, () => {}), (e) => isDynamergeError(e, "not_found"));
    // Once the loop knows the server is down, lookups do not even try.
    await until(() => d.status.error?.code === "network", "the loop to fail");
    const before = asked;
    assert.equal(await c.get(id), undefined);
    assert.equal(asked, before);
  } finally {
    d.close();
  }
});

test("a refusal of the lookup is the caller's error", async () => {
  const forbidding = async (url, init) => {
    if (String(url).endsWith("/v1/sync") && syncDocs(init).some((d) => d.collection === "secret")) {
      return Response.json({ error: { code: "forbidden", message: "no" } }, { status: 403 });
    }
    return fetch(url, init);
  };
  const b = await open({ url: srv.url, name: dbName("forbid"), fetch: forbidding, live: false, ...fast });
  try {
    await assert.rejects(b.collection("secret").get("some-id"), (e) => isDynamergeError(e, "forbidden"));
  } finally {
    b.close();
  }
});

test("opened collections are remembered and followed from the next open", async () => {
  const name = dbName("follow");
  let b = await open({ url: srv.url, name, live: false, ...fast });
  b.collection("followed");
  await b.sync();
  b.close();
  const ids = await seed("followed", [{ n: 1 }, { n: 2 }]);
  b = await open({ url: srv.url, name, live: false, ...fast });
  try {
    // sync() before the app names the collection in this session.
    await b.sync();
    const all = await b.collection("followed").list();
    assert.deepEqual(all.map((e) => e.id).sort(), [...ids].sort());
  } finally {
    b.close();
  }
});
