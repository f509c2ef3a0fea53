// measure.mjs [--records N] [--bundle FILE]: the figures the README quotes.
// - the bundle's size, raw and gzipped;
// - in Node on fake-indexeddb: the first open, the first create (Automerge's
//   WebAssembly is compiled then, from the base64 fallback: Node cannot
//   fetch the file beside the bundle), and opening a database that holds N records (default
//   1,000) and listing them, which must not load N Automerge documents;
//   then the first change of one record (which loads just that document).
// Usage: npm run build && node scripts/measure.mjs
import "fake-indexeddb/auto";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
let records = 1000;
let bundle = join(root, "dist/dynamerge.js");
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--records") records = Number(args[++i]);
  else if (args[i] === "--bundle") bundle = resolve(args[++i]);
  else {
    console.error(`usage: node scripts/measure.mjs [--records N] [--bundle FILE]`);
    process.exit(2);
  }
}

const bytes = readFileSync(bundle);
const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
console.log(`bundle ${bundle}`);
console.log(`  raw ${kib(bytes.length)}, gzip -6 ${kib(gzipSync(bytes).length)}, gzip -9 ${kib(gzipSync(bytes, { level: 9 }).length)}`);

const ms = (t) => `${(performance.now() - t).toFixed(1)} ms`;
let t = performance.now();
const lib = await import(bundle);
console.log(`import: ${ms(t)}`);
t = performance.now();
let db = await lib.open({ name: "measure", sync: false });
console.log(`first open (no WebAssembly yet): ${ms(t)}`);

const col = db.collection("todos");
t = performance.now();
await col.create({ title: "first" });
console.log(`first create (compiles Automerge's WebAssembly): ${ms(t)}`);
t = performance.now();
const ids = [];
for (let i = 0; i < records; i++) {
  const id = await col.create({ title: `todo ${i}`, done: false, tags: ["a", "b"], notes: "x".repeat(200) });
  if (i % 3 === 0) await col.change(id, (d) => { d.done = true; d.tags.push("c"); });
  ids.push(id);
}
console.log(`writing ${records} records (+${Math.ceil(records / 3)} changes): ${ms(t)}`);
db.close();

const runs = [];
for (let run = 0; run < 5; run++) {
  const t0 = performance.now();
  db = await lib.open({ name: "measure", sync: false });
  const t1 = performance.now();
  const all = await db.collection("todos").list();
  const t2 = performance.now();
  if (all.length !== records + 1) throw new Error(`listed ${all.length} records, want ${records}`);
  runs.push({ open: t1 - t0, list: t2 - t1, total: t2 - t0 });
  if (run < 4) db.close();
}
const median = (k) => runs.map((r) => r[k]).sort((a, b) => a - b)[2].toFixed(1);
console.log(`open with ${records} records: open ${median("open")} ms + list ${median("list")} ms = ${median("total")} ms (median of 5)`);
t = performance.now();
await db.collection("todos").get(ids[records >> 1]);
console.log(`get one record: ${ms(t)}`);
const first = [];
const second = [];
for (let k = 0; k < 9; k++) {
  const id = ids[(records >> 1) + k];
  t = performance.now();
  await db.collection("todos").change(id, (d) => { d.done = !d.done; });
  first.push(performance.now() - t);
  t = performance.now();
  await db.collection("todos").change(id, (d) => { d.done = !d.done; });
  second.push(performance.now() - t);
}
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1].toFixed(1);
console.log(`first change of a record (loads its Automerge document): median ${med(first)} ms of 9 (the very first: ${first[0].toFixed(1)} ms)`);
console.log(`next change of it (document loaded): median ${med(second)} ms of 9`);
console.log(`rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
db.close();
