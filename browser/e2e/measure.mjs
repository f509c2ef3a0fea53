// measure.mjs: the browser-side figures of dynamerge, in real Chromium
// against the real server (a fresh bbolt file on loopback).
//
//   node measure.mjs [--records 1000] [--runs 5] [--changes 100]
//
// 1. Opening with N records in IndexedDB: the library's open() and the
//    demo app's first render of the full list, on a reload (median of runs),
//    and the first change() after that reload (it may have to load Automerge).
// 2. Remote latency: the time from a change in one browser to its arrival
//    in a second browser's subscription, through the server (p50 over M
//    sequential changes).
// Bounded by construction: N creates, runs reloads and M changes, each
// step with a timeout.
import { parseArgs } from "node:util";
import { startServer, launchBrowser, openLibrary, waitFor } from "./harness.mjs";

const { values } = parseArgs({
  options: {
    records: { type: "string", default: "1000" },
    runs: { type: "string", default: "5" },
    changes: { type: "string", default: "100" },
  },
});
const N = Number(values.records);
const RUNS = Number(values.runs);
const M = Number(values.changes);

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ms = (x) => `${x.toFixed(1)} ms`;

const server = await startServer();
const browser = await launchBrowser();
try {
  console.log(`chromium ${browser.version()}, server ${server.url}`);

  // ---- 1. open and render with N records ----------------------------------
  {
    const ctx = await browser.newContext();
    const seed = await ctx.newPage();
    // The demo's own database and collection, seeded through the library.
    await openLibrary(seed, server.url, { name: "dynamerge-demo", collection: "todos" });
    const t0 = Date.now();
    await seed.evaluate(async (n) => {
      const { col } = window.lib;
      for (let i = 0; i < n; i++) {
        await col.create({
          title: `Item ${i}: ${"lorem ipsum ".repeat(3).trim()}`,
          done: i % 3 === 0,
          notes: i % 5 === 0 ? `A note on item ${i}` : "",
          createdAt: 1_700_000_000_000 + i,
        });
      }
      await window.lib.db.sync();
    }, N);
    console.log(`seeded ${N} records through the library (create + sync): ${Date.now() - t0} ms`);
    await seed.close();

    const page = await ctx.newPage();
    await page.setViewportSize({ width: 900, height: 720 });
    const open = [];
    const rendered = [];
    const drawn = [];
    const libOnly = [];
    const empty = [];
    const firstChange = [];
    for (let r = 0; r < RUNS; r++) {
      await page.goto(`${server.url}/`);
      await page.locator("#items[data-ready]").waitFor({ state: "attached", timeout: 60_000 });
      const rows = await page.locator("#items > li").count();
      if (rows !== N) throw new Error(`the demo rendered ${rows} rows, want ${N}`);
      const t = await page.evaluate(() => {
        const at = (n) => performance.getEntriesByName(n)[0].startTime;
        return { open: at("demo:open") - at("demo:start"), rendered: at("demo:rendered"), drawn: at("demo:rendered") - at("demo:open") };
      });
      // The first change after the reload, made as the app makes one:
      // whatever it waits for (Automerge's WebAssembly included) counts.
      firstChange.push(
        await page.evaluate(async () => {
          const { todos } = window.demo;
          const [first] = await todos.list();
          const t0 = performance.now();
          await todos.change(first.id, (d) => {
            d.done = !d.done;
          });
          return performance.now() - t0;
        }),
      );
      open.push(t.open);
      rendered.push(t.rendered);
      drawn.push(t.drawn);

      // The library alone, on a page without the app: first an empty
      // database of its own (the fixed cost: Automerge's WebAssembly and
      // IndexedDB), then the demo's N records in the same page.
      const lib = await ctx.newPage();
      await lib.goto(`${server.url}/healthz`);
      const libT = await lib.evaluate(async (r) => {
        const dynamerge = await import("/dynamerge.js");
        const time = async (name, sync) => {
          const t0 = performance.now();
          const db = await dynamerge.open({ name, sync });
          const all = await db.collection("todos").list();
          const t = performance.now() - t0;
          db.close();
          return [t, all.length];
        };
        const [e] = await time(`empty-${r}`, false);
        const [full, n] = await time("dynamerge-demo", true);
        if (n === 0) throw new Error("empty list");
        return { e, full };
      }, r);
      empty.push(libT.e);
      libOnly.push(libT.full);
      await lib.close();
    }
    console.log(`open with ${N} records in IndexedDB, median of ${RUNS} reloads:`);
    console.log(`  demo: dynamerge.open() ${ms(pct(open, 50))}; list rendered ${ms(pct(rendered, 50))} after navigation start (all: ${rendered.map((x) => x.toFixed(0)).join(", ")})`);
    console.log(`  demo: drawing the list (list() + DOM) ${ms(pct(drawn, 50))} after open()`);
    console.log(`  demo: the first change() after the reload ${ms(pct(firstChange, 50))} (all: ${firstChange.map((x) => x.toFixed(0)).join(", ")})`);
    console.log(`  library alone, first open() + list() of an empty database (WebAssembly start-up included): ${ms(pct(empty, 50))}`);
    console.log(`  library alone, then open() + list() of the ${N} records: ${ms(pct(libOnly, 50))} (all: ${libOnly.map((x) => x.toFixed(0)).join(", ")})`);
    await ctx.close();
  }

  // ---- 2. change-to-arrival latency between two browsers -------------------
  if (M > 0) {
    const [a, b] = [await browser.newContext(), await browser.newContext()];
    const [pa, pb] = [await a.newPage(), await b.newPage()];
    await openLibrary(pa, server.url, { name: "latency" });
    await openLibrary(pb, server.url, { name: "latency" });
    const id = await pa.evaluate(async () => {
      const id = await window.lib.col.create({ seq: 0 });
      await window.lib.db.sync();
      return id;
    });
    await waitFor(() => pb.evaluate((id) => window.lib.col.get(id), id), { what: "B to see the record" });
    await pb.evaluate((id) => {
      window.arrivals = {};
      window.lib.col.subscribe((all) => {
        const e = all.find((x) => x.id === id);
        if (e && !(e.doc.seq in window.arrivals)) window.arrivals[e.doc.seq] = performance.timeOrigin + performance.now();
      });
    }, id);
    const lat = [];
    for (let i = 1; i <= M; i++) {
      const sent = await pa.evaluate(async ({ id, i }) => {
        const t = performance.timeOrigin + performance.now();
        await window.lib.col.change(id, (d) => { d.seq = i; });
        return t;
      }, { id, i });
      await pb.waitForFunction((i) => i in window.arrivals, i, { timeout: 30_000, polling: 5 });
      lat.push((await pb.evaluate((i) => window.arrivals[i], i)) - sent);
    }
    console.log(`change in browser A → visible in browser B through the server, ${M} sequential changes:`);
    console.log(`  p50 ${ms(pct(lat, 50))}, p90 ${ms(pct(lat, 90))}, p99 ${ms(pct(lat, 99))}, max ${ms(Math.max(...lat))}`);
    await Promise.all([a.close(), b.close()]);
  }
} finally {
  await browser.close();
  await server.stop();
}
