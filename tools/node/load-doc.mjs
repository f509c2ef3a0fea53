// load-doc.mjs: load a saved Automerge document with Automerge JS.
//
// Used by the Go tests to check that documents saved by automerge-go load
// in JS. stdin: the saved document (binary). stdout: one JSON line
//   {"heads": ["<hex>", ...], "view": <the JSON view, plain.mjs conventions>}
// Exits non-zero, with the error on stderr, if the document does not load.
import * as Automerge from "@automerge/automerge"
import { readFileSync } from "node:fs"
import { plain } from "./plain.mjs"

const doc = Automerge.load(readFileSync(0))
const heads = [...Automerge.getHeads(doc)].sort()
process.stdout.write(JSON.stringify({ heads, view: plain(Automerge.toJS(doc)) }) + "\n")
