// Live events that carry their change, and gzip request bodies, against a
// real dynamerge server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lib, dbName, fast, fileServer, until } from "./helpers.mjs";

const { open } = lib;
const srv = fileServer();

// recording wraps fetch and records every /v1/sync request it sends.
function recording() {
  const syncs = [];
  const fetchFn = (input, init) => {
    if (String(input).endsWith("/v1/sync")) {
      syncs.push({ encoding: new Headers(init?.headers).get("Content-Encoding") });
    }
    return globalThis.fetch(input, init);
  };
  return { syncs, fetchFn };
}

test("a live edit reaches another device in its event, without a sync", async () => {
  const rb = recording();
  const a = await open({ url: srv.url, name: dbName("a"), ...fast });
  const b = await open({ url: srv.url, name: dbName("b"), ...fast, fetch: rb.fetchFn });
  try {
    const ta = a.collection("todos");
    const tb = b.collection("todos");
    let seen = [];
    tb.subscribe((all) => (seen = all));
    const id = await ta.create({ title: "Buy milk", n: 0 });
    await a.sync();
    await until(() => seen.length === 1, "b to get the record");
    await b.sync(); // b settles: its first round and the feed are done
    const before = rb.syncs.length;
    for (let n = 1; n <= 5; n++) {
      await ta.change(id, (doc) => {
        doc.n = n;
      });
      await a.sync();
      await until(() => seen[0]?.doc.n === n, `b to see n=${n}`);
    }
    assert.equal(rb.syncs.length - before, 0, "b sent /v1/sync requests for edits its events carried");
    assert.deepEqual(await tb.heads(id), await ta.heads(id));
  } finally {
    a.close();
    b.close();
  }
});

test("large request bodies go gzipped once the server has shown it takes them", async () => {
  const ra = recording();
  const a = await open({ url: srv.url, name: dbName("gz"), ...fast, fetch: ra.fetchFn });
  try {
    const ta = a.collection("notes");
    await ta.create({ text: "small" });
    await a.sync();
    const id = await ta.create({ text: "lorem ipsum ".repeat(500) });
    await a.sync();
    assert.equal(ra.syncs.at(-1).encoding, "gzip");
    const res = await fetch(`${srv.url}/v1/collections/notes/docs/${id}`);
    assert.equal((await res.json()).doc.text, "lorem ipsum ".repeat(500));
  } finally {
    a.close();
  }
});
