// check-changes.mjs: does Automerge JS 3.5 accept these changes?
//
// Used by the Go differential tests (crdt/differential_test.go).
//
// Contract. stdin: JSON lines, one request each:
//   {"base": "<base64 change chunks>", "changes": "<base64 change chunks>"}
// stdout: one JSON line per request, in order:
//   {"ok": true, "heads": ["<hex>", ...]}     (heads sorted)
//   {"ok": false, "error": "<message>"}
// ok means: a document built from base (Automerge.loadIncremental into an
// empty document) and then given changes (Automerge.loadIncremental) threw
// nothing; every change of base and of changes, split at chunk boundaries and
// decoded with Automerge.decodeChange, is among the hashes of
// Automerge.getAllChanges of the document; and saving the document
// and loading it again (Automerge.save / Automerge.load) gives the same
// heads. "base" may be empty. A malformed request line gives ok false with
// the reason; the process keeps going until stdin ends.
import * as Automerge from "@automerge/automerge"
import { createInterface } from "node:readline"

// chunks splits concatenated chunks at their declared lengths (magic 4,
// checksum 4, type 1, ULEB128 length, body).
function chunks(b) {
  const out = []
  let off = 0
  while (off < b.length) {
    let p = off + 9
    let n = 0
    let shift = 1
    for (;;) {
      if (p >= b.length) throw new Error("truncated chunk header")
      const c = b[p++]
      n += (c & 0x7f) * shift
      shift *= 128
      if (!(c & 0x80)) break
    }
    if (p + n > b.length) throw new Error("truncated chunk body")
    out.push(b.subarray(off, p + n))
    off = p + n
  }
  return out
}

function check(line) {
  const req = JSON.parse(line)
  const base = Buffer.from(req.base ?? "", "base64")
  const changes = Buffer.from(req.changes ?? "", "base64")
  let doc = Automerge.init()
  if (base.length > 0) doc = Automerge.loadIncremental(doc, base)
  doc = Automerge.loadIncremental(doc, changes)
  const have = new Set(Automerge.getAllChanges(doc).map((c) => Automerge.decodeChange(c).hash))
  for (const c of [...chunks(base), ...chunks(changes)]) {
    const h = Automerge.decodeChange(c).hash
    if (!have.has(h)) throw new Error(`change ${h} is not in the document`)
  }
  const heads = [...Automerge.getHeads(doc)].sort()
  const reloaded = [...Automerge.getHeads(Automerge.load(Automerge.save(doc)))].sort()
  if (JSON.stringify(heads) !== JSON.stringify(reloaded)) {
    throw new Error(`heads ${heads} become ${reloaded} after save and load`)
  }
  return { ok: true, heads }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity })
for await (const line of rl) {
  if (line.trim() === "") continue
  let res
  try {
    res = check(line)
  } catch (e) {
    res = { ok: false, error: String(e && e.message ? e.message : e) }
  }
  process.stdout.write(JSON.stringify(res) + "\n")
}
