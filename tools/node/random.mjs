// random.mjs: seeded, randomized multi-actor editing histories made with the
// real Automerge JS API, the corpus of the Go materializer's tests.
//
// A history is a few actors, each with its own document: one starts the
// record, the others fork it (Automerge.clone) or start from nothing at a
// random step, then every step is one actor making a change, merging another
// actor's document, or making an empty change. Forks and merges at random
// points give concurrent edits of the same keys, list elements and text.
// Everything random comes from one seeded generator, actor IDs and change
// times included, so a seed gives the same bytes on every run.
import * as A from "@automerge/automerge"
import { plain, stringify } from "./plain.mjs"
import { inspect } from "./walk.mjs"

// Rand is sfc32 seeded through splitmix64: small, fast, and the same on
// every platform (Math.random cannot be seeded).
export class Rand {
  constructor(seed) {
    let s = BigInt.asUintN(64, BigInt(seed))
    const next = () => {
      s = BigInt.asUintN(64, s + 0x9e3779b97f4a7c15n)
      let z = s
      z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n)
      z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn)
      return z ^ (z >> 31n)
    }
    const x = next()
    const y = next()
    this.s = [Number(x & 0xffffffffn), Number(x >> 32n), Number(y & 0xffffffffn), Number(y >> 32n)]
    for (let i = 0; i < 12; i++) this.u32()
  }
  u32() {
    let [a, b, c, d] = this.s
    const t = (((a + b) | 0) + d) | 0
    d = (d + 1) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) | 0
    this.s = [a, b, c, d]
    return t >>> 0
  }
  float() {
    return this.u32() / 2 ** 32
  }
  // int returns an integer in [0, n).
  int(n) {
    return Math.floor(this.float() * n)
  }
  // range returns an integer in [lo, hi].
  range(lo, hi) {
    return lo + this.int(hi - lo + 1)
  }
  chance(p) {
    return this.float() < p
  }
  pick(a) {
    return a[this.int(a.length)]
  }
  // weighted picks the value of one of [[weight, value], ...].
  weighted(entries) {
    let total = 0
    for (const [w] of entries) total += w
    let x = this.float() * total
    for (const [w, v] of entries) {
      if ((x -= w) < 0) return v
    }
    return entries[entries.length - 1][1]
  }
  bytes(n) {
    const b = new Uint8Array(n)
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff
    return b
  }
  // big returns a BigInt in [lo, hi].
  big(lo, hi) {
    const span = hi - lo + 1n
    const x = (BigInt(this.u32()) << 64n) | (BigInt(this.u32()) << 32n) | BigInt(this.u32())
    return lo + (x % span)
  }
}

// Characters of random text, by code point, weighted: mostly ASCII, with
// letters outside Latin-1, right-to-left scripts, combining marks, and
// emoji outside the Basic Multilingual Plane (two UTF-16 code units each),
// some of them sequences of several code points (skin tones, flags, ZWJ).
const ALPHABET = [
  [50, "abcdefghijklmnopqrstuvwxyz"],
  [8, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"],
  [14, " "],
  [3, "\n"],
  [4, ".,;:!?'\"-()"],
  [6, "éèàüößçñÅØæœ"],
  [3, "αβγδЖЗИЙ"],
  [4, "漢字仮名한국어"],
  [2, "שלוםمرحبا"],
  [1, "\u0301\u0308"],
  [1, "\u200d\t\u00a0"],
  [2, "☃✓★→€"],
  [4, ["😀", "👋", "🎉", "🚀", "💩", "🏽", "👍", "🇩", "🇪", "𝄞"]],
  [1, ["👩‍💻", "👍🏽", "🇩🇪", "☃️", "e\u0301"]],
].map(([w, s]) => [w, typeof s === "string" ? [...s] : s])

// randomText returns text of 1 to max UTF-16 code units (0 when max < 1),
// short more often than long.
function randomText(r, max) {
  if (max < 1) return ""
  const want = r.chance(0.6) ? r.range(1, Math.min(max, 12)) : r.range(1, max)
  let s = ""
  for (;;) {
    const t = r.pick(r.weighted(ALPHABET))
    if (s.length + t.length > want) return s || "x"
    s += t
  }
}

// boundaries lists the UTF-16 indices of s that do not split a surrogate
// pair: splice positions Automerge JS takes in UTF-16 code units, and it
// stores text as one op per code point.
function boundaries(s) {
  const b = [0]
  let i = 0
  for (const ch of s) b.push((i += ch.length))
  return b
}

// span picks a random non-empty [start, end) of s on code point boundaries,
// up to about max code units long, or returns null for empty text.
function span(r, s, max = s.length) {
  const b = boundaries(s)
  if (b.length < 2) return null
  const i = r.int(b.length - 1)
  const want = b[i] + r.range(1, Math.max(1, max))
  let j = i + 1
  while (j + 1 < b.length && b[j + 1] <= want) j++
  return [b[i], b[j]]
}

const I64_MIN = -(2n ** 63n)
const I64_MAX = 2n ** 63n - 1n
const U64_MAX = 2n ** 64n - 1n

// Timestamps at the edges: epoch, before it, years 0000, -0001, 9999,
// 10000, and the limits of a JavaScript Date.
const DATES = [
  0, -1, 1, -86400000, 951782400000, -62167219200000, -62198755200000, 253402300799999, 253402300800000,
  8.64e15, -8.64e15,
]

// typedScalar returns a scalar of any Automerge type, with edge values:
// int as a JS number (small or up to 2^53) or a bigint (the int64 range),
// uint as Automerge.Uint or a bigint beyond int64, floats as
// Automerge.Float64 (a whole JS number would be stored as an int), strings
// as ImmutableString (a JS string would make a text object).
function typedScalar(r) {
  return r.weighted([
    [4, () => null],
    [4, () => r.chance(0.5)],
    [8, () => r.range(-1000, 1000)],
    [3, () => r.pick([0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 32, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER])],
    [3, () => (r.chance(0.5) ? r.pick([I64_MAX, I64_MIN, 2n ** 53n, -(2n ** 53n) - 1n]) : r.big(I64_MIN, I64_MAX))],
    [4, () => new A.Uint(r.pick([0, 1, 255, 2 ** 32, Number.MAX_SAFE_INTEGER, r.int(1e6)]))],
    [2, () => (r.chance(0.5) ? r.pick([I64_MAX + 1n, U64_MAX]) : r.big(I64_MAX + 1n, U64_MAX))],
    [5, () => (r.float() - 0.5) * 10 ** r.range(-5, 5)],
    [3, () => new A.Float64(r.range(-100, 100))],
    [3, () => new A.Float64(r.pick([1e300, -1e300, 5e-324, -5e-324, Number.MAX_VALUE, Number.EPSILON, 1e21, 0.1, 2 ** 53 + 2]))],
    [1, () => new A.Float64(r.pick([NaN, Infinity, -Infinity]))],
    [6, () => new A.ImmutableString(r.chance(0.1) ? "" : randomText(r, 20))],
    [4, () => r.bytes(r.chance(0.1) ? 0 : r.range(1, 40))],
    [5, () => new Date(r.chance(0.5) ? r.pick(DATES) : r.range(-1e13, 1e13))],
  ])()
}

// simpleScalar returns the values an app usually writes: small numbers,
// booleans, null and strings (text objects, as Automerge 3 makes them).
function simpleScalar(r) {
  return r.weighted([
    [6, () => r.range(-100, 1000)],
    [2, () => Math.round(r.float() * 1e4) / 100],
    [3, () => r.chance(0.5)],
    [2, () => null],
    [5, () => randomText(r, 16)],
    [2, () => new A.ImmutableString(randomText(r, 8))],
  ])()
}

// objectValue returns a new map or list, maybe nested, to assign.
function objectValue(r, depth = 0) {
  const n = r.range(0, 3)
  const child = () => (depth < 2 && r.chance(0.25) ? objectValue(r, depth + 1) : simpleScalar(r))
  if (r.chance(0.5)) return Array.from({ length: n }, child)
  const o = {}
  for (let i = 0; i < n; i++) o[r.pick(KEYS)] = child()
  return o
}

// Map keys: few, so that actors collide on them, and some that sort
// differently in JavaScript objects ("10" before "9"), UTF-16 and UTF-8.
const KEYS = ["a", "b", "c", "x", "title", "name", "9", "10", "ключ", "名前", "🔑", "ｶ", "", "a b", "a/b"]

// The document every profile starts from, made by the first actor and by
// any actor that starts from nothing rather than forking (its objects then
// conflict with the first actor's).
const SETUP = {
  text(r, d) {
    d.text = randomText(r, 40)
    d.title = randomText(r, 12)
    d.doc = { paragraphs: [randomText(r, 30), randomText(r, 30)] }
  },
  map(r, d) {
    d.settings = { theme: "dark", size: 12 }
    d.profile = { name: randomText(r, 10), tags: { a: true } }
  },
  list(r, d) {
    d.items = [1, "two", { name: "three" }, [4]]
    d.todo = []
  },
  counter(r, d) {
    d.count = new A.Counter(0)
    d.stats = { views: new A.Counter(10), likes: new A.Counter(-5) }
    d.tally = [new A.Counter(1), new A.Counter(2)]
  },
  scalars(r, d) {
    d.values = {}
    for (let i = 0; i < 4; i++) d.values[r.pick(KEYS)] = typedScalar(r)
    d.list = [typedScalar(r), typedScalar(r)]
  },
  mixed(r, d) {
    for (const p of ["text", "map", "list", "counter", "scalars"]) SETUP[p](r, d)
  },
}

// at follows path from the root, or returns undefined where it leads
// nowhere.
function at(d, path) {
  let v = d
  for (const k of path) v = v?.[k]
  return v
}

// kind names what Automerge made of a value: "text", "counter", "list",
// "map" or "scalar".
function kind(v) {
  if (typeof v === "string") return "text"
  if (v instanceof A.Counter) return "counter"
  if (v === null || typeof v !== "object" || v instanceof Date || v instanceof Uint8Array) return "scalar"
  if (A.isImmutableString(v)) return "scalar"
  return Array.isArray(v) ? "list" : "map"
}

// targets lists the paths of the objects of doc (outside a change: walking
// the plain objects of a document is much cheaper than walking the proxies
// of a change): maps, lists, texts and counters.
function targets(doc) {
  const t = { map: [], list: [], text: [], counter: [] }
  const visit = (v, path) => {
    const k = kind(v)
    if (k === "scalar" || path.length > 6) return
    if (k === "text") {
      // Automerge.splice, mark and updateText take a path, which they join
      // with "/" into one string: a text below a key "" or a key holding
      // "/" cannot be named that way (the proxies set and delete such keys
      // fine).
      if (!path.some((p) => p === "" || String(p).includes("/"))) t.text.push(path)
      return
    }
    t[k].push(path)
    if (k === "list") v.forEach((e, i) => visit(e, [...path, i]))
    if (k === "map") for (const key of Object.keys(v)) visit(v[key], [...path, key])
  }
  visit(doc, [])
  return t
}

// choose picks one of the target paths that, in the change's proxy d, still
// holds an object of that kind (an earlier operation of the change may have
// replaced or deleted it) and passes ok. It returns [path, value] or null.
function choose(r, d, t, k, ok = () => true) {
  for (let tries = 0; tries < 3 && t[k].length > 0; tries++) {
    const p = r.pick(t[k])
    const v = at(d, p)
    if (kind(v) === k && ok(v)) return [p, v]
  }
  return null
}

const nonEmpty = (v) => v.length > 0

// insertInList returns an operation inserting make(r) into a list.
function insertInList(make) {
  return (r, d, t) => {
    const x = choose(r, d, t, "list")
    if (!x) return false
    x[1].insertAt(r.int(x[1].length + 1), make(r))
  }
}

// setInList returns an operation overwriting an element of a list with
// make(r): concurrent ones conflict.
function setInList(make) {
  return (r, d, t) => {
    const x = choose(r, d, t, "list", nonEmpty)
    if (!x) return false
    x[1][r.int(x[1].length)] = make(r)
  }
}

// Operations. Each takes (r, d, t, opts): the generator, the change's root
// proxy, the targets of the document before the change, and the request's
// options. It returns false when it finds nothing to work on (the caller
// then tries another).
const OPS = {
  textCreate(r, d, t) {
    const l = r.chance(0.3) && choose(r, d, t, "list")
    if (l) l[1].insertAt(r.int(l[1].length + 1), randomText(r, 20))
    else root(r, d, t)[r.pick(["text", "title", "body", ...KEYS])] = randomText(r, 20)
  },
  textType(r, d, t) {
    const x = choose(r, d, t, "text")
    if (!x) return false
    A.splice(d, x[0], r.pick(boundaries(x[1])), 0, randomText(r, 6))
  },
  textPaste(r, d, t, opts) {
    const x = choose(r, d, t, "text")
    if (!x) return false
    A.splice(d, x[0], r.pick(boundaries(x[1])), 0, randomText(r, opts.pasteMax))
  },
  textDelete(r, d, t) {
    const x = choose(r, d, t, "text", nonEmpty)
    if (!x) return false
    const sp = span(r, x[1], r.chance(0.8) ? 8 : x[1].length)
    A.splice(d, x[0], sp[0], sp[1] - sp[0])
  },
  textReplace(r, d, t) {
    const x = choose(r, d, t, "text", nonEmpty)
    if (!x) return false
    const sp = span(r, x[1], 12)
    A.splice(d, x[0], sp[0], sp[1] - sp[0], randomText(r, 12))
  },
  textUpdate(r, d, t) {
    // updateText diffs the old and new strings into splices itself.
    const x = choose(r, d, t, "text")
    if (!x) return false
    const s = x[1]
    const sp = span(r, s, 10) ?? [0, 0]
    const keep = r.chance(0.3) ? sp[0] : sp[1]
    A.updateText(d, x[0], s.slice(0, sp[0]) + (r.chance(0.7) ? randomText(r, 10) : "") + s.slice(keep))
  },
  textMark(r, d, t) {
    const x = choose(r, d, t, "text", nonEmpty)
    if (!x) return false
    const [name, value] = r.pick(MARKS)
    A.mark(d, x[0], markRange(r, span(r, x[1], 40)), name, value(r))
  },
  textUnmark(r, d, t) {
    const x = choose(r, d, t, "text", nonEmpty)
    if (!x) return false
    A.unmark(d, x[0], markRange(r, span(r, x[1], 40)), r.pick(MARKS)[0])
  },
  mapPut(r, d, t) {
    root(r, d, t)[r.pick(KEYS)] = simpleScalar(r)
  },
  mapPutObject(r, d, t) {
    root(r, d, t)[r.pick(KEYS)] = objectValue(r)
  },
  mapDelete(r, d, t) {
    const x = choose(r, d, t, "map", (m) => Object.keys(m).length > 0)
    if (!x) return false
    delete x[1][r.pick(Object.keys(x[1]))]
  },
  listCreate(r, d, t) {
    root(r, d, t)[r.pick(["items", "todo", ...KEYS])] = Array.from({ length: r.range(0, 3) }, () => simpleScalar(r))
  },
  listInsert(r, d, t) {
    const x = choose(r, d, t, "list")
    if (!x) return false
    x[1].insertAt(r.int(x[1].length + 1), ...Array.from({ length: r.range(1, 3) }, () => simpleScalar(r)))
  },
  listPush(r, d, t) {
    const x = choose(r, d, t, "list")
    if (!x) return false
    x[1].push(simpleScalar(r), ...(r.chance(0.3) ? [objectValue(r)] : []))
  },
  listInsertObject: insertInList((r) => objectValue(r)),
  listDelete(r, d, t) {
    const x = choose(r, d, t, "list", nonEmpty)
    if (!x) return false
    const i = r.int(x[1].length)
    x[1].deleteAt(i, r.range(1, Math.min(3, x[1].length - i)))
  },
  listSet: setInList((r) => (r.chance(0.8) ? simpleScalar(r) : objectValue(r))),
  listSplice(r, d, t) {
    const x = choose(r, d, t, "list")
    if (!x) return false
    const l = x[1]
    const i = r.int(l.length + 1)
    l.splice(i, r.int(Math.min(3, l.length - i) + 1), ...Array.from({ length: r.range(0, 2) }, () => simpleScalar(r)))
  },
  counterCreate(r, d, t) {
    const c = new A.Counter(r.chance(0.8) ? r.range(-10, 100) : r.range(-1e9, 1e9))
    const l = r.chance(0.3) && choose(r, d, t, "list")
    if (l) l[1].insertAt(r.int(l[1].length + 1), c)
    else root(r, d, t)[r.pick(["count", ...KEYS])] = c
  },
  counterIncrement(r, d, t) {
    const x = choose(r, d, t, "counter")
    if (!x) return false
    // See reload in randomCase.
    const p = x[0]
    if (Object.keys(A.getConflicts(at(d, p.slice(0, -1)), p[p.length - 1]) ?? {}).length > 1) {
      t.conflictedIncrement = true
    }
    const n = r.chance(0.9) ? r.range(1, 10) : r.range(1, 1e9)
    if (r.chance(0.7)) x[1].increment(n)
    else x[1].decrement(n)
  },
  counterOverwrite(r, d, t) {
    const x = choose(r, d, t, "counter")
    if (!x) return false
    const p = x[0]
    at(d, p.slice(0, -1))[p[p.length - 1]] = r.chance(0.6) ? new A.Counter(r.range(-10, 10)) : simpleScalar(r)
  },
  counterDelete(r, d, t) {
    const x = choose(r, d, t, "counter")
    if (!x) return false
    const p = x[0]
    const parent = at(d, p.slice(0, -1))
    if (Array.isArray(parent)) parent.deleteAt(p[p.length - 1])
    else delete parent[p[p.length - 1]]
  },
  scalarPut(r, d, t) {
    root(r, d, t)[r.pick(KEYS)] = typedScalar(r)
  },
  scalarInsert: insertInList(typedScalar),
  scalarSet: setInList(typedScalar),
}

// root returns a map to set a key of: the root a third of the time, so that
// actors collide on its keys, else any map.
function root(r, d, t) {
  return (r.chance(0.3) ? null : choose(r, d, t, "map")?.[1]) ?? d
}

// Marks: names with the kind of value an editor gives them. Mark values may
// be any scalar but counters; a null value is what unmark writes.
const MARKS = [
  ["bold", () => true],
  ["italic", (r) => r.chance(0.8)],
  ["link", (r) => `https://example.com/${r.int(100)}`],
  ["comment", (r) => randomText(r, 12)],
  ["size", (r) => r.range(8, 72)],
  ["weight", (r) => r.range(1, 9) + 0.5],
  ["due", (r) => new Date(r.range(0, 2e12))],
  ["tag", (r) => r.bytes(r.range(1, 4))],
]

// markRange adds a random expand option to [start, end): unset (Automerge's
// default, "after"), "before", "after", "both" or "none".
function markRange(r, [start, end]) {
  const expand = r.pick([undefined, "before", "after", "both", "none"])
  return expand === undefined ? { start, end } : { start, end, expand }
}

// The operations of each profile, weighted.
const PROFILE_OPS = {
  text: [
    [3, "textCreate"],
    [30, "textType"],
    [6, "textPaste"],
    [15, "textDelete"],
    [6, "textReplace"],
    [5, "textUpdate"],
    [12, "textMark"],
    [5, "textUnmark"],
  ],
  map: [
    [30, "mapPut"],
    [10, "mapPutObject"],
    [12, "mapDelete"],
  ],
  list: [
    [3, "listCreate"],
    [20, "listInsert"],
    [8, "listPush"],
    [8, "listInsertObject"],
    [15, "listDelete"],
    [12, "listSet"],
    [5, "listSplice"],
    [8, "mapPut"],
    [4, "mapDelete"],
  ],
  counter: [
    [8, "counterCreate"],
    [50, "counterIncrement"],
    [6, "counterOverwrite"],
    [4, "counterDelete"],
  ],
  scalars: [
    [50, "scalarPut"],
    [15, "scalarInsert"],
    [10, "scalarSet"],
    [8, "mapDelete"],
  ],
}
PROFILE_OPS.mixed = Object.values(PROFILE_OPS).flat()

export const PROFILES = Object.keys(PROFILE_OPS)

// Defaults of a random history.
const DEFAULT_ACTORS = 3
const DEFAULT_STEPS = 50
const DEFAULT_PASTE_MAX = 200
const MAX_STEPS = 100000
const MAX_SNAPSHOTS = 4

// randomCase makes the history of req = {seed, actors, steps, profile,
// opts: {pasteMax}} and describes its merged document.
export function randomCase(req) {
  const seed = parseSeed(req.seed)
  const actors = req.actors ?? DEFAULT_ACTORS
  const steps = req.steps ?? DEFAULT_STEPS
  const profile = req.profile ?? "mixed"
  const pasteMax = req.opts?.pasteMax ?? DEFAULT_PASTE_MAX
  if (!Number.isInteger(actors) || actors < 2 || actors > 5) throw new Error(`actors ${actors}: want 2 to 5`)
  if (!Number.isInteger(steps) || steps < 0 || steps > MAX_STEPS) throw new Error(`steps ${steps}: want 0 to ${MAX_STEPS}`)
  if (!Object.hasOwn(PROFILE_OPS, profile)) throw new Error(`profile ${JSON.stringify(profile)}: want one of ${PROFILES}`)
  if (!Number.isInteger(pasteMax) || pasteMax < 1) throw new Error(`opts.pasteMax ${pasteMax}: want a positive integer`)
  const opts = { pasteMax }

  const r = new Rand(seed)
  const ids = []
  while (ids.length < actors) {
    const id = Buffer.from(r.bytes(16)).toString("hex")
    if (!ids.includes(id)) ids.push(id)
  }
  // Change times in seconds, as Automerge.change writes them; some equal.
  let clock = 1_700_000_000 + r.int(100_000_000)
  const meta = () => {
    clock += r.int(120)
    const o = { time: clock }
    // An empty message is stored as no message at all, so none is made.
    if (r.chance(0.3)) o.message = r.pick(["edit", "fix typo", "Änderung ✓", "🚀 merge", randomText(r, 30)])
    return o
  }
  const docs = new Array(actors).fill(null)
  const started = () => docs.flatMap((d, i) => (d ? [i] : []))
  const fresh = (i) => A.change(A.init({ actor: ids[i] }), meta(), (d) => SETUP[profile](r, d))
  docs[0] = fresh(0)

  // Automerge JS 3.5 keeps, besides the op set, the document object an app
  // reads, and updates it with patches. Incrementing a key that holds
  // conflicting counters patches it wrongly (doc.c shows the incremented
  // losing counter, toJS the winner), and in long histories a merge now and
  // then throws while patching ("cannot increment a non-numeric value",
  // "unable to get property Symbol(_am_raw_value_)"). The op set stays
  // right, so such a document is replaced by a fresh load of its bytes (and,
  // for a merge, the other document's): the histories keep those
  // increments and merges, which the Go side must get right.
  let reloads = 0
  const reload = (i, ...saved) => {
    docs[i] = A.load(Buffer.concat(saved), { actor: ids[i] })
    reloads++
  }
  const snapHeads = []
  const seen = new Set()
  const snapP = Math.min(1, (MAX_SNAPSHOTS + 1) / Math.max(steps, 1))
  for (let step = 0; step < steps; step++) {
    const i = r.int(actors)
    const x = r.float()
    if (docs[i] === null) {
      docs[i] = r.chance(0.85) ? A.clone(docs[r.pick(started())], { actor: ids[i] }) : fresh(i)
    } else if (x < 0.2) {
      const j = r.pick(started())
      if (j !== i) {
        const before = A.save(docs[i])
        try {
          docs[i] = A.merge(docs[i], docs[j])
        } catch {
          reload(i, before, A.save(docs[j]))
        }
      }
    } else if (x < 0.22) {
      docs[i] = A.emptyChange(docs[i], meta())
    } else {
      const t = targets(docs[i])
      docs[i] = A.change(docs[i], meta(), (d) => {
        for (let n = r.range(1, 4); n > 0; n--) operate(r, d, t, profile, opts)
      })
      if (t.conflictedIncrement) reload(i, A.save(docs[i]))
    }
    // Some steps at random, and at least the middle one.
    const mid = step === steps >> 1 && snapHeads.length === 0
    if (snapHeads.length < MAX_SNAPSHOTS && (r.chance(snapP) || mid)) {
      const heads = [...A.getHeads(docs[i])].sort()
      if (!seen.has(heads.join())) {
        seen.add(heads.join())
        snapHeads.push(heads)
      }
    }
  }

  // The merged document, and all that is said of it, comes from a fresh
  // load of every actor's document, for the same reason.
  const merged = A.load(Buffer.concat(started().map((i) => A.save(docs[i]))))
  return {
    seed: seed.toString(),
    actors: ids,
    changes: A.getAllChanges(merged).map((c) => Buffer.from(c).toString("base64")),
    save: Buffer.from(A.save(merged)).toString("base64"),
    heads: [...A.getHeads(merged)].sort(),
    view: plain(A.toJS(merged)),
    ...inspect(merged),
    snapshots: snapHeads.map((heads) => ({
      heads,
      view: plain(A.toJS(A.view(merged, heads))),
      ...inspect(merged, heads),
    })),
    reloads,
  }
}

// operate applies one random operation of the profile, falling back to
// creating something when the document has nothing the first picks need.
function operate(r, d, t, profile, opts) {
  for (let tries = 0; tries < 4; tries++) {
    if (OPS[r.weighted(PROFILE_OPS[profile])](r, d, t, opts) !== false) return
  }
  OPS[r.pick(["textCreate", "listCreate", "counterCreate", "mapPut"])](r, d, t, opts)
}

// parseSeed takes a JSON integer or a decimal string (int64 seeds do not
// fit a JavaScript number).
function parseSeed(s) {
  if (typeof s === "number" && Number.isSafeInteger(s)) return BigInt(s)
  if (typeof s === "string" && /^-?[0-9]{1,20}$/.test(s)) return BigInt(s)
  throw new Error(`seed ${JSON.stringify(s)}: want an integer or a decimal string`)
}
