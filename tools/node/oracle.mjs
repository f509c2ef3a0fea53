// oracle.mjs: Automerge JS 3.5 as a test oracle for the Go code, one
// long-lived process speaking JSON lines. Go starts it through
// internal/amjs; see README.md for the protocol.
//
// stdin: one JSON request per line, {"cmd": ..., ...}; blank lines are
// skipped. stdout: one JSON answer per request, in order, {"ok": true, ...}
// or {"ok": false, "error": "<message>"}. A bad request, or one Automerge
// throws on, gets ok false and the process reads on until stdin ends.
// Binary data travels as standard padded base64, hashes as lowercase hex.
import * as Automerge from "@automerge/automerge"
import { createInterface } from "node:readline"
import { readFileSync } from "node:fs"
import { changeHash, split, TYPE_DOCUMENT } from "./chunks.mjs"
import { plain, stringify } from "./plain.mjs"
import { randomCase } from "./random.mjs"
import { inspect } from "./walk.mjs"

const automergeVersion = JSON.parse(
  readFileSync(new URL("./node_modules/@automerge/automerge/package.json", import.meta.url)),
).version

// bytes returns the base64 field of req as bytes; "" and a missing optional
// field are empty.
function bytes(req, field, optional = false) {
  const v = req[field]
  if ((v === undefined || v === null) && optional) return new Uint8Array()
  if (typeof v !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new Error(`${field}: want a base64 string`)
  return new Uint8Array(Buffer.from(v, "base64"))
}

function sortedHeads(doc) {
  return [...Automerge.getHeads(doc)].sort()
}

// loadAll applies data (document and/or change chunks, any order) to an
// empty document with Automerge.loadIncremental, and makes sure every
// change in it was applied: loadIncremental keeps changes with missing
// dependencies aside without a word, and ignores everything, valid chunks
// included, when the data ends in bytes that are not a whole chunk.
function loadAll(data, base = null) {
  let doc = Automerge.init()
  if (base && base.length > 0) doc = Automerge.loadIncremental(doc, base)
  doc = Automerge.loadIncremental(doc, data)
  const have = new Set(Automerge.getAllChanges(doc).map(changeHash))
  for (const b of [base, data]) {
    if (!b) continue
    for (const c of split(b)) {
      if (c[8] === TYPE_DOCUMENT) continue
      const h = changeHash(c)
      if (!have.has(h)) throw new Error(`change ${h} is not in the document (missing dependencies?)`)
    }
  }
  return doc
}

// sameDoc throws unless b has a's heads and view.
function sameDoc(a, b, what) {
  const ha = sortedHeads(a)
  const hb = sortedHeads(b)
  if (ha.join() !== hb.join()) throw new Error(`${what}: heads ${ha} become ${hb}`)
  if (stringify(plain(Automerge.toJS(a))) !== stringify(plain(Automerge.toJS(b)))) {
    throw new Error(`${what}: the view changes`)
  }
}

const commands = {
  // ping answers the versions, so that Go can check what it started.
  ping() {
    return { automerge: automergeVersion, node: process.version }
  },

  // trap throws a WebAssembly trap, for the Go tests of what follows one.
  trap() {
    // A module whose only function is `unreachable`.
    const wasm = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 5, 1, 3, 0, 0, 11])
    new WebAssembly.Instance(new WebAssembly.Module(wasm)).exports.f()
  },

  random(req) {
    return randomCase(req)
  },

  // load: {data} -> {heads, view, conflicts, marks, changes}. Besides
  // loadIncremental, Automerge.load of the same bytes and of the saved
  // document must give the same heads and view.
  load(req) {
    const data = bytes(req, "data")
    const doc = loadAll(data)
    sameDoc(doc, Automerge.load(data), "Automerge.load of the same bytes")
    sameDoc(doc, Automerge.load(Automerge.save(doc)), "Automerge.save and load")
    return {
      heads: sortedHeads(doc),
      view: plain(Automerge.toJS(doc)),
      ...inspect(doc),
      changes: Automerge.getAllChanges(doc).map((c) => describeChange(doc, c)),
    }
  },

  // view_at: {data, heads} -> {view} (Automerge.view).
  view_at(req) {
    const data = bytes(req, "data")
    if (!Array.isArray(req.heads) || !req.heads.every((h) => typeof h === "string" && /^[0-9a-f]{64}$/.test(h))) {
      throw new Error("heads: want an array of hex hashes")
    }
    const doc = loadAll(data)
    // Automerge.view of heads the document lacks answers an empty
    // document rather than throwing as documented.
    if (!Automerge.hasHeads(doc, req.heads)) throw new Error(`heads ${req.heads}: not all in the document`)
    return { view: plain(Automerge.toJS(Automerge.view(doc, req.heads))) }
  },

  // check: {base, changes} -> {heads}: does Automerge JS accept these
  // changes on top of base? The contract the differential tests rely on:
  // base (may be empty) and then changes go through loadIncremental without
  // a throw, every change chunk of both decodes with Automerge.decodeChange
  // (integers beyond 2^53 aside) and is in the document, and a save and load
  // keeps the heads.
  check(req) {
    const base = bytes(req, "base", true)
    const changes = bytes(req, "changes", true)
    const doc = loadAll(changes, base)
    for (const c of [...split(base), ...split(changes)]) {
      try {
        Automerge.decodeChange(c)
      } catch (e) {
        // decodeChange cannot return an integer beyond 2^53 and throws;
        // the rest of Automerge JS reads it as a bigint, and the change is
        // in the document: not a refusal.
        if (!/can't be represented as a JavaScript number/.test(errorMessage(e))) throw e
      }
    }
    const heads = sortedHeads(doc)
    const reloaded = sortedHeads(Automerge.load(Automerge.save(doc)))
    if (heads.join() !== reloaded.join()) throw new Error(`heads ${heads} become ${reloaded} after save and load`)
    return { heads }
  },
}

// describeChange returns a change's metadata and ops (Automerge.decodeChange).
// decodeChange throws on ops holding integers beyond 2^53, which the rest of
// Automerge JS handles as bigints; such a change gets its metadata from doc
// and ops null, with decodeChange's complaint in opsError.
function describeChange(doc, chunk) {
  let c
  let opsError
  try {
    c = Automerge.decodeChange(chunk)
  } catch (e) {
    opsError = errorMessage(e)
    c = Automerge.getBackend(doc).getChangeMetaByHash(changeHash(chunk))
    if (!c) throw e
  }
  return {
    hash: c.hash,
    actor: c.actor,
    seq: c.seq,
    startOp: c.startOp,
    deps: c.deps,
    time: c.time,
    // A change stores no message and an empty one alike; decodeChange says
    // null, a document's metadata of its own changes "".
    message: c.message || null,
    ops: c.ops ?? null,
    opsError,
  }
}

function errorMessage(e) {
  return String(e && e.message ? e.message : e)
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity })
for await (const line of rl) {
  if (line.trim() === "") continue
  let res
  let trapped = false
  try {
    const req = JSON.parse(line)
    if (req === null || typeof req !== "object" || Array.isArray(req)) throw new Error("request is not a JSON object")
    if (typeof req.cmd !== "string" || !Object.hasOwn(commands, req.cmd)) {
      throw new Error(`cmd ${JSON.stringify(req.cmd)}: want one of ${Object.keys(commands)}`)
    }
    res = { ok: true, ...commands[req.cmd](req) }
  } catch (e) {
    trapped = e instanceof WebAssembly.RuntimeError
    res = { ok: false, error: errorMessage(e), exiting: trapped || undefined }
  }
  process.stdout.write(stringify(res) + "\n")
  if (trapped) {
    // A Rust panic in Automerge's WebAssembly may leave the instance in a
    // state no later request should see: answer (saying so), then exit; the
    // Go side starts a new process for the next request.
    process.stderr.write("oracle.mjs: WebAssembly trap, exiting for a fresh instance\n")
    process.exit(70)
  }
}
