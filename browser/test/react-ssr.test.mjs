// dynamerge/react under server rendering: react-dom/server renders the
// provider and every hook without opening the database or touching
// IndexedDB (this process has no IndexedDB and no window: any access to the
// trap below fails the test), and the hooks report loading.
import { test } from "node:test";
import assert from "node:assert/strict";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createElement as h } from "react";
import { renderToString } from "react-dom/server";

const here = dirname(fileURLToPath(import.meta.url));

// Any use of IndexedDB on a server is a bug: set before the library loads.
const touched = [];
Object.defineProperty(globalThis, "indexedDB", {
  configurable: true,
  get() {
    touched.push(new Error("indexedDB read during server rendering").stack);
    return undefined;
  },
});

const react = await import(process.env.DYNAMERGE_REACT ?? resolve(here, "../.build-test/react.js"));
const { DynamergeProvider, useCollection, useRecord, useStatus, useHistory, useDatabase } = react;


function Page() {
  const todos = useCollection("todos");
  const rec = useRecord("todos", "a1");
  const status = useStatus();
  const history = useHistory("todos", "a1");
  const db = useDatabase();
  return h(
    "p",
    null,
    `todos:${todos === undefined ? "loading" : todos.length} record:${rec.status} status:${status === undefined ? "none" : "some"} history:${history.status} db:${db === null ? "null" : "open"}`,
  );
}

test("renderToString renders loading states and opens nothing", () => {
  let opens = 0;
  const open = () => {
    opens++;
    return new Promise(() => {});
  };
  const html = renderToString(h(DynamergeProvider, { open, options: { name: "ssr" } }, h(Page)));
  assert.equal(html, "<p>todos:loading record:loading status:none history:loading db:null</p>");
  assert.equal(opens, 0, "the provider opened the database during server rendering");
  assert.deepEqual(touched, []);
});

test("the default open is not called either (no open prop)", () => {
  const html = renderToString(h(DynamergeProvider, null, h(Page)));
  assert.match(html, /todos:loading/);
  assert.deepEqual(touched, []);
});

test("a hook outside the provider says so", () => {
  assert.throws(() => renderToString(h(Page)), /useCollection must be called inside <DynamergeProvider>/);
});
