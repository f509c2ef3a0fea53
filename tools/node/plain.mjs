// plain.mjs: the JSON view of an Automerge document, with the conventions of
// the Go crdt package (crdt.Doc.JSON): text and immutable strings become
// strings, counters numbers, bytes standard padded base64, timestamps RFC 3339
// in UTC with millisecond precision (Date.prototype.toISOString), maps objects
// with sorted keys, lists arrays. Shared by make-golden.mjs and load-doc.mjs so
// that golden files and live checks agree on one definition.
import * as Automerge from "@automerge/automerge"

export function plain(v) {
  if (v === null || v === undefined) return null
  if (v instanceof Automerge.Counter) return v.value
  if (v instanceof Uint8Array) return Buffer.from(v).toString("base64")
  if (v instanceof Date) return v.toISOString()
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return v
  if (typeof v === "bigint") return Number(v)
  if (Array.isArray(v)) return v.map(plain)
  if (typeof v === "object") {
    if (typeof v.toJSON === "function" && v.constructor && v.constructor.name !== "Object") {
      // ImmutableString, Int, Uint, Float64 wrappers.
      const j = v.toJSON()
      if (typeof j !== "object") return j
    }
    if (v.constructor && v.constructor.name === "ImmutableString") return v.toString()
    const out = {}
    for (const k of Object.keys(v).sort()) out[k] = plain(v[k])
    return out
  }
  throw new Error(`plain: unsupported value ${typeof v}`)
}

// view returns the document's JSON view as a string with sorted keys.
export function view(doc) {
  return JSON.stringify(plain(Automerge.toJS(doc)))
}
