// make-golden.mjs writes the golden Automerge data of the Go crdt tests:
// for each case a folder crdt/testdata/<case>/ with
//   changes.bin  every change of the document, concatenated chunks in
//                dependency order (Automerge.getAllChanges, joined); changes
//                over 256 bytes in case "compressed" are written as compressed
//                chunks (type 2), the form Automerge's Rust core uses, which
//                Automerge JS 3.5 reads but never returns from getChanges
//   doc.bin      the saved document (Automerge.save)
//   view.json    the expected JSON view (plain.mjs conventions)
//   heads.json   the document's heads, sorted lowercase hex
// Actors and change times are fixed, so running it again gives the same bytes.
//
// Usage: node make-golden.mjs [outdir]   (default ../../crdt/testdata)
import * as Automerge from "@automerge/automerge"
import { mkdirSync, writeFileSync } from "node:fs"
import { deflateRawSync } from "node:zlib"
import { join, dirname } from "node:path"
import { fileURLToPath } from "node:url"
import { uleb } from "./chunks.mjs"
import { view } from "./plain.mjs"

const here = dirname(fileURLToPath(import.meta.url))
const outdir = process.argv[2] ?? join(here, "..", "..", "crdt", "testdata")

const A = "aa".repeat(16)
const B = "bb".repeat(16)
const C = "cc".repeat(16)
let clock = Date.UTC(2024, 0, 2, 3, 4, 5, 678)
// opts gives every change a fixed, increasing time so the output is stable.
const opts = (message) => ({ message, time: (clock += 1000) })

// compress turns a change chunk into a compressed change chunk: same magic
// and checksum (that of the uncompressed chunk), type 2, raw DEFLATE body.
function compress(chunk) {
  const b = Buffer.from(chunk)
  let off = 9
  while (b[off] & 0x80) off++
  const body = b.subarray(off + 1)
  const z = deflateRawSync(body)
  return Buffer.concat([b.subarray(0, 8), Buffer.from([2]), uleb(z.length), z])
}

function write(name, doc) {
  const dir = join(outdir, name)
  mkdirSync(dir, { recursive: true })
  let changes = Automerge.getAllChanges(doc)
  if (name === "compressed") {
    changes = changes.map((c) => (c.length > 256 ? compress(c) : c))
    if (!changes.some((c) => c[8] === 2)) throw new Error("compressed: no compressed chunk")
    // Automerge JS must read what we wrote, with the same heads.
    const check = Automerge.applyChanges(Automerge.init(), changes)[0]
    if (JSON.stringify(Automerge.getHeads(check).sort()) !== JSON.stringify(Automerge.getHeads(doc).sort())) {
      throw new Error("compressed: JS does not load the compressed chunks")
    }
  }
  writeFileSync(join(dir, "changes.bin"), Buffer.concat(changes.map((c) => Buffer.from(c))))
  writeFileSync(join(dir, "doc.bin"), Automerge.save(doc))
  writeFileSync(join(dir, "view.json"), view(doc) + "\n")
  writeFileSync(join(dir, "heads.json"), JSON.stringify([...Automerge.getHeads(doc)].sort()) + "\n")
}

const cases = {
  scalars() {
    let d = Automerge.init({ actor: A })
    d = Automerge.change(d, opts("scalars"), (d) => {
      d.str = "héllo, wörld ✓"
      d.int = -42
      d.big = 9007199254740991
      d.uint = new Automerge.Uint(7)
      d.float = 3.25
      d.floatWhole = new Automerge.Float64(2)
      d.yes = true
      d.no = false
      d.nothing = null
      d.bytes = new Uint8Array([0, 1, 2, 250, 255])
      d.when = new Date(Date.UTC(2023, 11, 31, 23, 59, 58, 765))
      d.counter = new Automerge.Counter(10)
      d.immutable = new Automerge.ImmutableString("fixed")
      d.empty = ""
    })
    return d
  },
  nested() {
    let d = Automerge.init({ actor: A })
    d = Automerge.change(d, opts("nested"), (d) => {
      d.list = [1, "two", { three: [3, [4, { five: 5 }]] }, []]
      d.map = { a: { b: { c: "deep" } }, empty: {} }
    })
    d = Automerge.change(d, opts("edit nested"), (d) => {
      d.list.splice(1, 1)
      d.list.push("end")
      d.list.insertAt(0, "start")
      d.map.a.b.d = ["x"]
      delete d.map.empty
    })
    return d
  },
  text() {
    let d = Automerge.init({ actor: A })
    d = Automerge.change(d, opts("text"), (d) => {
      d.title = "Hello world"
    })
    d = Automerge.change(d, opts("edit"), (d) => {
      Automerge.splice(d, ["title"], 5, 6, ", Automerge")
      Automerge.splice(d, ["title"], 0, 0, "¡")
    })
    d = Automerge.change(d, opts("more"), (d) => {
      Automerge.splice(d, ["title"], 1, 5, "Bye 👋")
    })
    return d
  },
  counters() {
    let d = Automerge.init({ actor: A })
    d = Automerge.change(d, opts("counters"), (d) => {
      d.up = new Automerge.Counter(0)
      d.list = [new Automerge.Counter(5)]
    })
    for (let i = 0; i < 5; i++) {
      d = Automerge.change(d, opts("inc"), (d) => {
        d.up.increment(i + 1)
        d.list[0].decrement(2)
      })
    }
    return d
  },
  bytes() {
    let d = Automerge.init({ actor: A })
    d = Automerge.change(d, opts("bytes"), (d) => {
      d.empty = new Uint8Array([])
      d.some = new Uint8Array(Array.from({ length: 100 }, (_, i) => (i * 37) & 255))
      d.list = [new Uint8Array([1]), new Uint8Array([2, 3])]
    })
    return d
  },
  timestamps() {
    let d = Automerge.init({ actor: A })
    d = Automerge.change(d, opts("timestamps"), (d) => {
      d.epoch = new Date(0)
      d.before = new Date(Date.UTC(1969, 6, 20, 20, 17, 40, 1))
      d.y2k = new Date(Date.UTC(2000, 0, 1))
      d.list = [new Date(Date.UTC(2024, 1, 29, 12, 0, 0, 999))]
    })
    return d
  },
  merge() {
    let a = Automerge.init({ actor: A })
    a = Automerge.change(a, opts("base"), (d) => {
      d.title = "shared"
      d.items = ["one"]
      d.n = new Automerge.Counter(0)
    })
    let b = Automerge.clone(a, { actor: B })
    a = Automerge.change(a, opts("a edits"), (d) => {
      d.title = "from a"
      d.items.push("a")
      d.n.increment(1)
      d.onlyA = true
    })
    b = Automerge.change(b, opts("b edits"), (d) => {
      d.title = "from b"
      d.items.push("b")
      d.n.increment(10)
      d.onlyB = true
    })
    a = Automerge.merge(a, b)
    return a
  },
  threeactors() {
    // A change by C that touches objects made by A and B, so its header lists
    // other actors; the order there must survive save/load.
    let a = Automerge.init({ actor: A })
    a = Automerge.change(a, opts("a"), (d) => {
      d.fromA = { list: ["a"] }
    })
    let b = Automerge.clone(a, { actor: B })
    b = Automerge.change(b, opts("b"), (d) => {
      d.fromB = { list: ["b"] }
    })
    let c = Automerge.clone(b, { actor: C })
    c = Automerge.change(c, opts("c"), (d) => {
      d.fromB.list.push("c")
      d.fromA.list.insertAt(0, "c")
      d.fromA.x = 1
      d.fromB.y = 2
    })
    return c
  },
  compressed() {
    // One change well over Automerge's 256-byte compression threshold, yet
    // small enough (~500 ops) for the differential test to mutate quickly.
    let d = Automerge.init({ actor: A })
    d = Automerge.change(d, opts("large"), (d) => {
      d.body = "lorem ipsum dolor sit amet ".repeat(12)
      d.rows = Array.from({ length: 25 }, (_, i) => ({ i, name: `row ${i}`, even: i % 2 === 0 }))
    })
    d = Automerge.change(d, opts("small"), (d) => {
      d.rows[3].name = "changed"
    })
    return d
  },
  longtext() {
    let d = Automerge.init({ actor: A })
    d = Automerge.change(d, opts("start"), (d) => {
      d.text = ""
    })
    const words = "the quick brown fox jumps over the lazy dog ".repeat(10)
    for (let i = 0; i < words.length; i += 7) {
      d = Automerge.change(d, opts("type"), (d) => {
        Automerge.splice(d, ["text"], i, 0, words.slice(i, i + 7))
      })
    }
    d = Automerge.change(d, opts("delete"), (d) => {
      Automerge.splice(d, ["text"], 10, 30)
    })
    return d
  },
}

for (const [name, make] of Object.entries(cases)) {
  write(name, make())
  console.log(`wrote ${name}`)
}
