// walk.mjs: the conflicts and marks of an Automerge document, at its current
// heads or at given heads.
//
// It reads the low-level document (Automerge.getBackend) rather than calling
// Automerge.getConflicts and Automerge.marks, because in 3.5 both ignore the
// heads of a document made by Automerge.view: they answer for the latest
// state. At the current heads the answers are the same (oracle_test.go in
// internal/amjs checks the winners against the view).
import * as Automerge from "@automerge/automerge"
import { plain } from "./plain.mjs"

const OBJECT_TYPES = new Set(["map", "list", "text", "table"])

// inspect returns {conflicts, marks} of doc at heads (undefined: current).
//
// conflicts: every map key and list element, reachable through winning
// values, that holds more than one value, in document order:
//   {path: [key or index, ...], values: [{opId, datatype, value}, ...]}
// values winner first, then the others by descending op ID; datatype is
// Automerge's (map, list, text, str, int, uint, f64, boolean, null, bytes,
// timestamp, counter); value is the plain JSON (plain.mjs) of the value.
//
// marks: every text object with at least one mark:
//   {path, marks: [{name, value, start, end}, ...]}
// as Automerge's marks() reports them (merged spans, null-valued marks
// left out), start and end in UTF-16 code units.
export function inspect(doc, heads) {
  const be = Automerge.getBackend(doc)
  const out = { conflicts: [], marks: [] }
  walk(be, "_root", "map", [], heads, out)
  return out
}

function walk(be, obj, type, path, heads, out) {
  if (type === "text") {
    const ms = be.marks(obj, heads)
    if (ms.length > 0) {
      out.marks.push({
        path,
        marks: ms.map((m) => ({ name: m.name, value: plain(m.value), start: m.start, end: m.end })),
      })
    }
    return
  }
  if (type !== "map" && type !== "list") throw new Error(`object ${obj} has unsupported type ${type}`)
  const props = type === "map" ? be.keys(obj, heads) : [...Array(be.length(obj, heads)).keys()]
  for (const prop of props) {
    const all = be.getAll(obj, prop, heads)
    if (all.length === 0) throw new Error(`${obj} ${prop}: listed but has no value`)
    const winner = all[all.length - 1]
    // The winner is the last value getAll returns (the greatest op ID);
    // check it, so that a change in that order cannot go unnoticed.
    if (!sameValue(winner, be.getWithType(obj, prop, heads))) {
      throw new Error(`${obj} ${String(prop)}: the last of getAll is not the value get returns`)
    }
    const at = [...path, prop]
    if (all.length > 1) {
      out.conflicts.push({
        path: at,
        values: all.reverse().map((v) => ({ opId: opID(v), datatype: v[0], value: plain(reify(be, v, heads)) })),
      })
    }
    if (OBJECT_TYPES.has(winner[0])) walk(be, winner[1], winner[0], at, heads, out)
  }
}

// opID is the ID of the op that set a value: objects are named by the op
// that made them.
function opID(v) {
  return OBJECT_TYPES.has(v[0]) ? v[1] : v[2]
}

function sameValue(a, b) {
  if (!b || a[0] !== b[0]) return false
  const x = a[1]
  const y = b[1]
  if (x instanceof Date) return y instanceof Date && Object.is(x.getTime(), y.getTime())
  if (x instanceof Uint8Array) return y instanceof Uint8Array && Buffer.from(x).equals(Buffer.from(y))
  return Object.is(x, y)
}

// reify builds the JavaScript value Automerge.toJS would give for a value of
// getAll or getWithType, at heads.
function reify(be, v, heads) {
  switch (v[0]) {
    case "map": {
      const o = Object.create(null)
      for (const k of be.keys(v[1], heads)) o[k] = reify(be, be.getWithType(v[1], k, heads), heads)
      return o
    }
    case "list": {
      const n = be.length(v[1], heads)
      const a = []
      for (let i = 0; i < n; i++) a.push(reify(be, be.getWithType(v[1], i, heads), heads))
      return a
    }
    case "text":
      return be.text(v[1], heads)
    case "counter":
      return new Automerge.Counter(v[1])
    case "str":
    case "int":
    case "uint":
    case "f64":
    case "boolean":
    case "null":
    case "bytes":
    case "timestamp":
      return v[1]
    default:
      throw new Error(`value of unsupported datatype ${v[0]}`)
  }
}
