// dynamerge/react in a DOM (happy-dom) on fake-indexeddb and a real server:
// what each hook returns, and how often components render — a change to one
// record re-renders the components that read it and no other.
import { Window } from "happy-dom";
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { lib, dbName, fast, fileServer } from "./helpers.mjs";

// React DOM needs a document; the library needs none.
const win = new Window();
globalThis.window = win;
globalThis.document = win.document;
globalThis.navigator ??= win.navigator;
globalThis.IS_REACT_ACT_ENVIRONMENT = true;

const here = dirname(fileURLToPath(import.meta.url));
const { createElement: h, memo, act } = await import("react");
const { createRoot } = await import("react-dom/client");
const { DynamergeProvider, useCollection, useRecord, useStatus, useHistory, useDatabase, useOpenError } = await import(
  process.env.DYNAMERGE_REACT ?? resolve(here, "../.build-test/react.js")
);

const srv = fileServer();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Roots still mounted: a failed test's are unmounted after all, which
// closes their databases, so that the process can end.
const mounted = new Set();
after(async () => {
  for (const m of mounted) await m.unmount();
  await win.happyDOM.close();
});

/** mount renders element into a fresh root; unmount() removes it. */
async function mount(element) {
  const el = document.createElement("div");
  document.body.appendChild(el);
  const root = createRoot(el);
  await act(async () => root.render(element));
  const m = {
    el,
    text: () => el.textContent,
    async unmount() {
      if (!mounted.delete(m)) return;
      await act(async () => root.unmount());
      el.remove();
    },
  };
  mounted.add(m);
  return m;
}

// A hung test fails instead of holding up the suite.
const limit = { timeout: 60_000 };

/** settle lets React and the library run until cond() holds (or fails after ms). */
async function settle(cond, what, ms = 10_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await act(() => sleep(10));
  }
  // Whatever else is queued (a second notification) shows up too.
  await act(() => sleep(30));
}

/** provider opens a local database (no server) or one syncing with srv, and exposes it. */
function provider(children, { name = dbName("react"), options = { sync: false } } = {}) {
  const got = {};
  const open = async (o) => (got.db = await lib.open({ name, locks: null, ...o }));
  return { got, element: h(DynamergeProvider, { open, options }, children) };
}

test("useCollection and useRecord: one change re-renders only what reads that record", limit, async () => {
  const renders = {};
  const count = (k) => (renders[k] = (renders[k] ?? 0) + 1);
  const Row = memo(function Row({ id }) {
    count(`row:${id}`);
    const r = useRecord("todos", id);
    return h("li", null, `${id}=${r.status === "ready" ? r.doc.title : r.status}`);
  });
  function List() {
    count("list");
    const all = useCollection("todos");
    if (!all) return h("p", null, "loading");
    return h("ul", null, all.map((e) => h(Row, { key: e.id, id: e.id })));
  }
  function Notes() {
    count("notes");
    const all = useCollection("notes");
    return h("p", null, `notes:${all?.length ?? "loading"}`);
  }
  const { got, element } = provider([h(List, { key: "l" }), h(Notes, { key: "n" })]);
  const m = await mount(element);
  await settle(() => got.db, "open");
  const todos = got.db.collection("todos");
  for (const id of ["a", "b", "c"]) await todos.create({ title: id.toUpperCase() }, { id });
  await settle(() => m.text().includes("c=C") && m.text().includes("notes:0"), "three rows");
  assert.equal(m.text(), "a=Ab=Bc=Cnotes:0");

  const before = { ...renders };
  await act(() => todos.change("b", (d) => (d.title = "B2")));
  await settle(() => m.text().includes("b=B2"), "the change of b");
  assert.equal(renders["row:b"], before["row:b"] + 1, "row b renders once for its change");
  assert.equal(renders["row:a"], before["row:a"], "row a did not re-render");
  assert.equal(renders["row:c"], before["row:c"], "row c did not re-render");
  assert.equal(renders.list, before.list + 1, "the list re-renders once: its collection changed");
  assert.equal(renders.notes, before.notes, "another collection's reader did not re-render");

  // A change to another collection re-renders its reader only.
  const mid = { ...renders };
  await act(() => got.db.collection("notes").create({ text: "n" }));
  await settle(() => m.text().includes("notes:1"), "the note");
  assert.equal(renders.notes, mid.notes + 1);
  assert.deepEqual({ ...renders, notes: 0 }, { ...mid, notes: 0 });

  // Deleting a record: the list loses it, its readers see missing.
  await act(() => todos.delete("a"));
  await settle(() => !m.text().includes("a="), "the delete of a");
  assert.equal(m.text(), "b=B2c=Cnotes:1");
  await m.unmount();
});

test("a change that changes nothing (an acknowledgement, a no-op) renders nothing", limit, async () => {
  let renders = 0;
  function One() {
    renders++;
    const r = useRecord("todos", "x");
    return h("p", null, r.status === "ready" ? r.doc.title : r.status);
  }
  const { got, element } = provider(h(One));
  const m = await mount(element);
  await settle(() => got.db, "open");
  await got.db.collection("todos").create({ title: "X" }, { id: "x" });
  await settle(() => m.text() === "X", "x");
  const n = renders;
  await act(() => got.db.collection("todos").change("x", () => {}));
  await act(() => sleep(100));
  assert.equal(renders, n);
  await m.unmount();
});

test("useRecord of a record this device never held: loading, then the server's record; missing; invalid ids", limit, async () => {
  const seedDB = await lib.open({ url: srv.url, name: dbName("seed"), live: false, locks: null, ...fast });
  const id = await seedDB.collection("todos").create({ title: "from the server" });
  await seedDB.sync();
  seedDB.close();

  const seen = [];
  function Show({ id }) {
    const r = useRecord("todos", id);
    seen.push(`${id.slice(0, 4)}:${r.status}`);
    return h("p", null, r.status === "ready" ? r.doc.title : r.status === "error" ? `error:${r.error.code}` : r.status);
  }
  const { got, element } = provider([h(Show, { key: 1, id }), h(Show, { key: 2, id: "nosuchrecord" }), h(Show, { key: 3, id: "bad id!" })], {
    options: { url: srv.url, live: false, ...fast },
  });
  const m = await mount(element);
  await settle(() => m.text().startsWith("from the server") && m.text().includes("missing"), "the lookups");
  assert.equal(m.text(), "from the servermissingerror:invalid_id");
  const mine = seen.filter((s) => s.startsWith(id.slice(0, 4)));
  assert.equal(mine[0], `${id.slice(0, 4)}:loading`);
  assert.equal(mine.at(-1), `${id.slice(0, 4)}:ready`);
  assert.ok(mine.length <= 4, `the looked-up record rendered ${mine.length} times: ${mine}`);
  // The record is here now: a new reader needs no lookup and never shows loading.
  assert.ok(await got.db.collection("todos").get(id));
  await m.unmount();
});

test("useStatus follows db.status; the provider closes the database on unmount", limit, async () => {
  let renders = 0;
  function S() {
    renders++;
    const s = useStatus();
    return h("p", null, s ? `pending:${s.pending}` : "none");
  }
  const { got, element } = provider(h(S));
  const m = await mount(element);
  await settle(() => m.text() === "pending:0", "status");
  await act(() => got.db.collection("todos").create({ t: 1 }));
  await settle(() => m.text() === "pending:1", "pending 1");
  const n = renders;
  await act(() => sleep(100));
  assert.equal(renders, n, "no render without a status change");
  await m.unmount();
  assert.throws(() => got.db.collection("todos"), (err) => lib.isDynamergeError(err, "closed"));
});

test("Strict Mode mounts twice: one database stays open, and it is closed on unmount", limit, async () => {
  const { StrictMode } = await import("react");
  const opened = [];
  const name = dbName("strict");
  const open = async (o) => {
    const db = await lib.open({ name, locks: null, ...o });
    opened.push(db);
    return db;
  };
  let current;
  function Probe() {
    current = useDatabase();
    return h("p", null, current ? "open" : "opening");
  }
  const m = await mount(h(StrictMode, null, h(DynamergeProvider, { open, options: { sync: false } }, h(Probe))));
  await settle(() => m.text() === "open" && opened.length === 2, "open");
  const closed = (db) => {
    try {
      db.collection("todos");
      return false;
    } catch (err) {
      return lib.isDynamergeError(err, "closed");
    }
  };
  assert.deepEqual(opened.map(closed), [true, false], "the first mount's database is closed, the second's open");
  assert.equal(current, opened[1]);
  await m.unmount();
  assert.ok(closed(opened[1]));
});

test("a failed open is reported by useOpenError", limit, async () => {
  function E() {
    const err = useOpenError();
    return h("p", null, err ? `error:${err.message}` : "none");
  }
  const open = () => Promise.reject(new Error("no IndexedDB here"));
  const m = await mount(h(DynamergeProvider, { open }, h(E)));
  await settle(() => m.text() !== "none", "the error");
  assert.equal(m.text(), "error:no IndexedDB here");
  await m.unmount();
});

test("useHistory: this device's copy without a server; read again on every change", limit, async () => {
  function H() {
    const s = useHistory("todos", "h");
    return h("p", null, s.status === "ready" ? `${s.changes.length}:${s.more}:${s.local}` : s.status);
  }
  // A database that syncs nothing answers from its own copy, and reads
  // it again when the record changes.
  const { got, element } = provider(h(H));
  const m = await mount(element);
  await settle(() => got.db, "the database");
  await act(() => got.db.collection("todos").create({ n: 1 }, { id: "h" }));
  await settle(() => m.text() === "1:false:true", "the local history of the new record");
  await m.unmount();

  // The hook's contract (calls, states, re-reads) with a history answered
  // from the record's own heads, as slow as a server nearby.
  const calls = [];
  const withHistory = async (o) => {
    const db = await lib.open({ name: dbName("hist"), locks: null, ...o });
    const col = db.collection("todos");
    col.history = async (id, opts) => {
      calls.push({ id, opts });
      // As slow as a request to a server nearby.
      await sleep(100);
      const heads = (await col.heads(id)) ?? [];
      return { changes: heads.map((hash) => ({ hash })), cursor: "", more: false, local: false };
    };
    return (got.db = db);
  };
  function H2() {
    const s = useHistory("todos", "h", { limit: 5 });
    return h("p", null, s.status === "ready" ? `${s.changes.map((c) => c.hash.slice(0, 6)).join(",")}` : s.status);
  }
  // In Strict Mode, whose double effects must not leave the reader closed.
  const { StrictMode } = await import("react");
  const m2 = await mount(h(StrictMode, null, h(DynamergeProvider, { open: withHistory, options: { sync: false } }, h(H2))));
  await settle(() => got.db && calls.length > 0, "first read");
  const col = got.db.collection("todos");
  await act(() => col.create({ n: 1 }, { id: "h" }));
  const h1 = (await col.heads("h"))[0].slice(0, 6);
  await settle(() => m2.text() === h1, "history after create");
  await act(() => col.change("h", (d) => (d.n = 2)));
  const h2 = (await col.heads("h"))[0].slice(0, 6);
  await settle(() => m2.text() === h2, "history after change");
  assert.deepEqual(calls.at(-1), { id: "h", opts: { limit: 5 } });
  assert.ok(calls.length <= 6, `history read ${calls.length} times for 2 changes`);
  // Changes made while a read is in flight cost one more read, not one each.
  const n = calls.length;
  await act(async () => {
    for (let i = 3; i < 13; i++) await col.change("h", (d) => (d.n = i));
  });
  const h3 = (await col.heads("h"))[0].slice(0, 6);
  await settle(() => m2.text() === h3, "history after ten changes");
  assert.ok(calls.length - n <= 4, `history read ${calls.length - n} times for 10 changes`);
  await m2.unmount();
});

test("server-rendered HTML hydrates without a mismatch, then shows the records", limit, async () => {
  const { renderToString } = await import("react-dom/server");
  const { hydrateRoot } = await import("react-dom/client");
  const name = dbName("hydrate");
  const seedDB = await lib.open({ name, sync: false, locks: null });
  await seedDB.collection("todos").create({ title: "hydrated" }, { id: "h1" });
  seedDB.close();
  function Page() {
    const all = useCollection("todos");
    const r = useRecord("todos", "h1");
    return h("p", null, `${all ? all.length : "loading"}:${r.status === "ready" ? r.doc.title : r.status}`);
  }
  const open = (o) => lib.open({ name, locks: null, ...o });
  const app = h(DynamergeProvider, { open, options: { sync: false } }, h(Page));
  const html = renderToString(app);
  assert.equal(html, "<p>loading:loading</p>");
  const el = document.createElement("div");
  el.innerHTML = html;
  document.body.appendChild(el);
  const problems = [];
  let root;
  await act(async () => {
    root = hydrateRoot(el, app, { onRecoverableError: (err) => problems.push(String(err)) });
  });
  mounted.add({ unmount: async () => act(async () => root.unmount()) });
  await settle(() => el.textContent === "1:hydrated", "the records after hydration");
  assert.deepEqual(problems, []);
});
