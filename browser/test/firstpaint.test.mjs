// First paint before the WebAssembly: get/list/deleted/subscribe answer from
// the JSON views in IndexedDB without loading Automerge, which loads (once)
// when a change must be made; and the JSON view stored beside each record's
// Automerge bytes always equals what those bytes hold, through local changes,
// merges from sync, deletes, undeletes and restores.
//
// A "fresh page" is a second instance of the built library (imported under
// another URL), so it has its own Automerge, not yet loaded, while sharing
// this process's fake IndexedDB with the first.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import * as Automerge from "@automerge/automerge";
import { lib, libPath, dbName, fast, fileServer } from "./helpers.mjs";

const { open } = lib;
let pages = 0;
// freshPage imports the library again: a page whose Automerge is not loaded.
const freshPage = () => import(`${pathToFileURL(libPath).href}?page=${++pages}`);

// wasmServer serves the build's automerge.<hash>.wasm as application/wasm,
// counting requests; while `held`, answers wait for release().
function wasmServer() {
  const dir = dirname(libPath);
  const file = readdirSync(dir).find((f) => /^automerge\.[0-9a-f]{16}\.wasm$/.test(f));
  assert.ok(file, `no automerge.<hash>.wasm in ${dir}`);
  const bytes = readFileSync(join(dir, file));
  const s = { requests: 0, held: true, waiting: [] };
  s.release = () => {
    s.held = false;
    for (const w of s.waiting.splice(0)) w();
  };
  const server = createServer((req, res) => {
    s.requests++;
    const answer = () => {
      res.writeHead(200, { "Content-Type": "application/wasm", "Content-Length": bytes.length });
      res.end(bytes);
    };
    if (s.held) s.waiting.push(answer);
    else answer();
  });
  s.start = () => new Promise((r) => server.listen(0, "127.0.0.1", () => r(`http://127.0.0.1:${server.address().port}/${file}`)));
  s.stop = () => {
    s.release();
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  };
  return s;
}

const srv = fileServer();

test("list, get, deleted and subscribe answer before Automerge loads; the first change loads it once", async () => {
  const name = dbName("paint");
  const db = await open({ name, sync: false });
  const todos = db.collection("todos");
  const ids = [];
  for (let i = 0; i < 40; i++) ids.push(await todos.create({ title: `Item ${i}`, done: i % 2 === 0, tags: ["a", `t${i}`], meta: { n: i } }));
  await todos.delete(ids[3]);
  const want = await todos.list();
  const wantDeleted = await todos.deleted();
  const wantHeads = await todos.heads(ids[0]);
  db.close();

  const wasm = wasmServer();
  const url = await wasm.start();
  try {
    const page = await freshPage();
    assert.notEqual(page.open, open, "the fresh page must be another instance of the library");
    const db2 = await page.open({ name, sync: false, wasmUrl: url, wasmPreload: false });
    try {
      const t2 = db2.collection("todos");
      assert.deepEqual(await t2.list(), want);
      assert.equal(want.length, 39);
      assert.deepEqual(await t2.get(ids[5]), { title: "Item 5", done: false, tags: ["a", "t5"], meta: { n: 5 } });
      assert.equal(await t2.get(ids[3]), undefined, "a deleted record is not in get");
      assert.deepEqual(await t2.deleted(), wantDeleted);
      assert.deepEqual(await t2.heads(ids[0]), wantHeads);
      let seen;
      const off = t2.subscribe((all) => (seen = all));
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(seen, want);
      assert.equal(wasm.requests, 0, "reading must not ask for Automerge's WebAssembly");

      // A change needs Automerge: it waits for the (held) WebAssembly, and
      // nothing is written until it is there.
      const changing = t2.change(ids[5], (d) => {
        d.done = true;
      });
      let settled = false;
      changing.then(
        () => (settled = true),
        () => (settled = true),
      );
      for (let n = 0; n < 100 && wasm.requests === 0; n++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(wasm.requests, 1, "the first change fetches the WebAssembly");
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(settled, false, "the change cannot finish before Automerge is loaded");
      assert.equal((await t2.get(ids[5])).done, false);
      wasm.release();
      await changing;
      assert.equal((await t2.get(ids[5])).done, true);
      // Loaded once for the page: later changes and creates fetch nothing.
      await t2.change(ids[6], (d) => {
        d.title = "Item six";
      });
      const made = await t2.create({ title: "new" });
      await t2.undelete(ids[3]);
      assert.equal(wasm.requests, 1);
      assert.deepEqual(await t2.get(made), { title: "new" });
      assert.equal((await t2.get(ids[3])).title, "Item 3");
      off();
    } finally {
      db2.close();
    }
  } finally {
    await wasm.stop();
  }
});

test("by default the WebAssembly preloads after open, in the background; reads answer before it", async () => {
  const name = dbName("preload");
  const db = await open({ name, sync: false });
  const id = await db.collection("todos").create({ title: "offline later" });
  db.close();

  const wasm = wasmServer();
  const url = await wasm.start();
  try {
    const page = await freshPage();
    const t0 = Date.now();
    const db2 = await page.open({ name, sync: false, wasmUrl: url });
    try {
      const t2 = db2.collection("todos");
      assert.deepEqual(await t2.list(), [{ id, doc: { title: "offline later" } }]);
      assert.equal(wasm.requests, 0, "the preload must not start before the first reads");
      // No change is made: the preload alone asks for the file.
      for (let n = 0; n < 250 && wasm.requests === 0; n++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(wasm.requests, 1, "the WebAssembly was not preloaded");
      assert.ok(Date.now() - t0 >= 900, `preloaded ${Date.now() - t0} ms after open; it waits about a second`);
      wasm.release();
      // The change uses the preloaded (or preloading) module: no second request.
      await t2.change(id, (d) => {
        d.title = "changed";
      });
      assert.equal((await t2.get(id)).title, "changed");
      assert.equal(wasm.requests, 1);
    } finally {
      db2.close();
    }
  } finally {
    await wasm.stop();
  }
});

test("an unreachable wasmUrl falls back to the base64 copy: changes still work", async () => {
  const name = dbName("fallback");
  const page = await freshPage();
  const warned = [];
  const warn = console.warn;
  console.warn = (...a) => warned.push(a.join(" "));
  // Port 9 (discard) on loopback: nothing listens, the fetch fails at once.
  const db = await page.open({ name, sync: false, wasmUrl: "http://127.0.0.1:9/automerge.wasm" });
  try {
    const c = db.collection("notes");
    const id = await c.create({ text: "hello" });
    await c.change(id, (d) => {
      d.text = "hello, world";
    });
    assert.deepEqual(await c.get(id), { text: "hello, world" });
    assert.equal(warned.length, 1, `one warning that says why, got ${JSON.stringify(warned)}`);
    assert.match(warned[0], /127\.0\.0\.1:9.*base64/);
  } finally {
    console.warn = warn;
    db.close();
  }
});

test("a wasmUrl that is not a string or URL is refused", async () => {
  await assert.rejects(open({ name: dbName(), sync: false, wasmUrl: 42 }), (e) => e.code === "invalid_argument" && /wasmUrl/.test(e.message));
});

// storedRows reads the raw `records` rows and `chunks` of a collection from
// IndexedDB, the way idb.ts lays them out.
async function storedRows(name, collection) {
  const idb = await new Promise((res, rej) => {
    const r = indexedDB.open(name);
    r.onsuccess = () => res(r.result);
    r.onerror = () => rej(r.error);
  });
  try {
    const tx = idb.transaction(["records", "chunks"], "readonly");
    const all = (store) =>
      new Promise((res, rej) => {
        const r = tx.objectStore(store).getAll();
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
    const [records, chunks] = await Promise.all([all("records"), all("chunks")]);
    return records
      .filter((r) => r.c === collection)
      .map((r) => ({ row: r, chunks: chunks.filter((c) => c.c === collection && c.i === r.i).sort((a, b) => a.n - b.n) }));
  } finally {
    idb.close();
  }
}

// assertInStep checks every record of the collection: the stored JSON view
// and deleted flag are what the stored Automerge bytes say (reserved root
// keys apart), and the stored heads are the bytes' heads.
async function assertInStep(name, collection, when) {
  const rows = await storedRows(name, collection);
  assert.ok(rows.length > 0, `${when}: no rows`);
  for (const { row, chunks } of rows) {
    assert.ok(chunks[0]?.snap, `${when}: ${row.i} has no snapshot`);
    let doc = Automerge.load(chunks[0].bytes);
    for (const c of chunks.slice(1)) doc = Automerge.loadIncremental(doc, c.bytes);
    const js = Automerge.toJS(doc);
    const deleted = js.$deleted === true;
    for (const k of Object.keys(js)) if (k.startsWith("$")) delete js[k];
    assert.deepEqual(row.json, js, `${when}: ${row.i}: the JSON view differs from the Automerge bytes`);
    assert.equal(row.d === 1, deleted, `${when}: ${row.i}: deleted flag`);
    assert.deepEqual([...row.heads].sort(), [...Automerge.getHeads(doc)].sort(), `${when}: ${row.i}: heads`);
  }
}

test("the JSON view stays in step with the Automerge bytes: local changes, merges, deletes, undeletes, restores", async () => {
  const nameA = dbName("stepA");
  const nameB = dbName("stepB");
  const a = await open({ url: srv.url, name: nameA, ...fast, compactAfter: 3 });
  const b = await open({ url: srv.url, name: nameB, ...fast, compactAfter: 3 });
  try {
    const ta = a.collection("step");
    const tb = b.collection("step");
    const id = await ta.create({ title: "one", list: [1, 2], nested: { x: "y" } });
    const other = await ta.create({ title: "two" });
    await assertInStep(nameA, "step", "after create");
    const v1 = await ta.heads(id);
    for (let n = 0; n < 4; n++) {
      await ta.change(id, (d) => {
        d.list.push(n);
      });
    }
    await assertInStep(nameA, "step", "after local changes (a compaction among them)");
    await a.sync();
    await b.sync();
    assert.deepEqual(await tb.get(id), await ta.get(id));
    await assertInStep(nameB, "step", "after a pull into an empty device");

    // Concurrent edits on both sides, merged by sync on each.
    await ta.change(id, (d) => {
      d.title = "one (a)";
    });
    await tb.change(id, (d) => {
      d.nested.z = "from b";
    });
    await a.sync();
    await b.sync();
    await a.sync();
    const merged = await ta.get(id);
    assert.equal(merged.title, "one (a)");
    assert.equal(merged.nested.z, "from b");
    assert.deepEqual(await tb.get(id), merged);
    await assertInStep(nameA, "step", "after merging b's change");
    await assertInStep(nameB, "step", "after merging a's change");

    await tb.delete(other);
    await b.sync();
    await a.sync();
    assert.equal(await ta.get(other), undefined);
    await assertInStep(nameA, "step", "after a delete merged from sync");
    await ta.undelete(other);
    await assertInStep(nameA, "step", "after a local undelete");
    assert.deepEqual(await ta.get(other), { title: "two" });

    await ta.restore(id, v1);
    assert.deepEqual(await ta.get(id), { title: "one", list: [1, 2], nested: { x: "y" } });
    await assertInStep(nameA, "step", "after a restore");
    await a.sync();
    await b.sync();
    assert.deepEqual(await tb.get(id), { title: "one", list: [1, 2], nested: { x: "y" } });
    await assertInStep(nameB, "step", "after merging the restore");
  } finally {
    a.close();
    b.close();
  }
});
