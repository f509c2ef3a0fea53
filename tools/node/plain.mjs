// plain.mjs: the JSON view of an Automerge document, with the conventions of
// the Go crdt package (crdt.Doc.JSON): text and immutable strings become
// strings, counters numbers, bytes standard padded base64, timestamps
// Date.prototype.toISOString (UTC, milliseconds; years outside 0000-9999 in
// its extended "+275760"/"-000001" form), maps objects, lists arrays, NaN and
// infinities null (what JSON.stringify writes). Integers are exact: Automerge
// JS returns every uint, and every int beyond 2^53, as a bigint, which
// stringify writes digit for digit. Object keys are written sorted by Unicode
// code point, the order of Go's encoding/json (UTF-8 bytes), so that a view
// made here and one made in Go can be compared as bytes.
//
// The single definition of the view, for every script here.
import * as Automerge from "@automerge/automerge"

// plain turns what Automerge.toJS returns (or a value built the same way, see
// walk.mjs) into plain JSON data, except that integers may stay bigints:
// serialise the result with stringify, not JSON.stringify.
export function plain(v) {
  if (v === null || v === undefined) return null
  if (v instanceof Automerge.Counter) return v.value
  if (v instanceof Uint8Array) return Buffer.from(v).toString("base64")
  if (v instanceof Date) return v.toISOString()
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return v
  if (Array.isArray(v)) return v.map(plain)
  if (Automerge.isImmutableString(v)) return v.toString()
  if (typeof v === "object") {
    if (typeof v.toJSON === "function" && v.constructor && v.constructor.name !== "Object") {
      // Int, Uint, Float64 wrappers.
      const j = v.toJSON()
      if (typeof j !== "object") return j
    }
    // A null prototype, so that a key "__proto__" is a key like any other.
    const out = Object.create(null)
    for (const k of Object.keys(v)) out[k] = plain(v[k])
    return out
  }
  throw new Error(`plain: unsupported value ${typeof v}`)
}

// byCodePoint orders strings by Unicode code point. JavaScript's default sort
// compares UTF-16 code units, which puts "🔑" (U+1F511) before "ｶ" (U+FF76).
export function byCodePoint(a, b) {
  const x = [...a]
  const y = [...b]
  for (let i = 0; i < x.length && i < y.length; i++) {
    if (x[i] !== y[i]) return x[i].codePointAt(0) - y[i].codePointAt(0)
  }
  return x.length - y.length
}

// stringify writes v as compact JSON: bigints exact, object keys in code
// point order (JS objects would put integer-like keys such as "10" first
// whatever their insertion order), NaN and infinities as null.
export function stringify(v) {
  const parts = []
  write(v, parts)
  return parts.join("")
}

function write(v, out) {
  if (v === null || v === undefined) return void out.push("null")
  switch (typeof v) {
    case "bigint":
      return void out.push(v.toString())
    case "number":
    case "boolean":
    case "string":
      return void out.push(JSON.stringify(v))
  }
  if (Array.isArray(v)) {
    out.push("[")
    v.forEach((e, i) => {
      if (i > 0) out.push(",")
      write(e, out)
    })
    return void out.push("]")
  }
  if (typeof v === "object") {
    out.push("{")
    Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort(byCodePoint)
      .forEach((k, i) => {
        if (i > 0) out.push(",")
        out.push(JSON.stringify(k), ":")
        write(v[k], out)
      })
    return void out.push("}")
  }
  throw new Error(`stringify: unsupported value ${typeof v}`)
}

// view returns the document's JSON view as a string.
export function view(doc) {
  return stringify(plain(Automerge.toJS(doc)))
}
