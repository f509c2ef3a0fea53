// The client side of the peer comparison: the breadth, hot-record and
// large-text workloads of dynabench, run against automerge-repo's sync server
// (server.mjs) by automerge-repo clients, one Repo per client with the
// WebSocket client adapter and no storage, as a browser tab without
// IndexedDB would be. Prints progress lines ("progress N") on stderr and
// one JSON object of metrics on stdout; a workload that does not converge
// says so in "failure" and exits 1.
//
//   node harness.mjs --url ws://127.0.0.1:PORT --workload breadth --clients 64 --records 1000 --ops 2000 --open 16 --seed 1
//   node harness.mjs --url ws://127.0.0.1:PORT --workload hot --writers 16 --rate 6 --seconds 4 --seed 1
//   node harness.mjs --url ws://127.0.0.1:PORT --workload paste --chars 1000000 --seed 1
//   node harness.mjs --url ws://127.0.0.1:PORT --workload typing --changes 100000 --rate 100 --seed 1
//   node harness.mjs --url ws://127.0.0.1:PORT --workload fanout --clients 64 --records 100 --rate 1 --seconds 10 --seed 1
import { performance } from "node:perf_hooks"
import * as A from "@automerge/automerge"
import { Repo, decodeHeads } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

function flags(argv) {
  const out = {}
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || i + 1 >= argv.length) throw new Error(`bad arguments: ${argv.join(" ")}`)
    out[argv[i].slice(2)] = argv[i + 1]
  }
  return out
}

// mulberry32: a small seeded generator, so that a run can be replayed.
function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const now = () => performance.now()
const sleep = ms => new Promise(r => setTimeout(r, ms))

export function percentile(samples, p) {
  if (samples.length === 0) return null
  const s = [...samples].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * s.length)
  return s[Math.min(Math.max(rank, 1), s.length) - 1]
}

function sameHeads(a, b) {
  if (!a || !b || a.length !== b.length) return false
  const s = new Set(a)
  return b.every(h => s.has(h))
}

function newRepo(url, name, adapter = new WebSocketClientAdapter(url)) {
  return new Repo({ network: [adapter], peerId: name })
}

// CountingAdapter counts the bytes of the WebSocket messages it receives:
// a new client's first pull, on the wire.
class CountingAdapter extends WebSocketClientAdapter {
  received = 0
  receiveMessage(bytes) {
    this.received += bytes.byteLength
    return super.receiveMessage(bytes)
  }
}

// connected waits until repo has its WebSocket peer (the sync server): a
// find before that finds no one to ask and marks the document unavailable.
async function connected(repos, timeoutMs = 30000) {
  const deadline = now() + timeoutMs
  while (repos.some(r => r.peers.length === 0)) {
    if (now() > deadline) throw new Error(`clients not connected to the sync server after ${timeoutMs} ms`)
    await sleep(10)
  }
}

// synced resolves when the server's heads for the document (which the
// sync server reports back after every sync message) equal the handle's:
// the client and the server hold the same changes. This is the peer's
// acknowledgement, the counterpart of a 200 from /v1/sync. Both events
// matter: the server's heads can arrive before the changes that come with
// them are applied to the local document.
function synced(handle, timeoutMs = Number(process.env.SYNC_TIMEOUT_MS ?? 60000)) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const heads = handle.heads()
      for (const sid of storageIds) {
        if (sameHeads(handle.getSyncInfo(sid)?.lastHeads, heads)) return true
      }
      return false
    }
    if (check()) return resolve()
    const done = () => {
      clearTimeout(timer)
      handle.off("remote-heads", onRemote)
      handle.off("heads-changed", onLocal)
    }
    const timer = setTimeout(() => {
      done()
      reject(
        new Error(
          `document ${handle.documentId} not in sync with the server after ${timeoutMs} ms (local heads ${JSON.stringify(handle.heads())}, server heads ${JSON.stringify([...storageIds].map(s => handle.getSyncInfo(s)?.lastHeads))})`,
        ),
      )
    }, timeoutMs)
    const onLocal = () => {
      if (check()) {
        done()
        resolve()
      }
    }
    const onRemote = ({ storageId }) => {
      storageIds.add(storageId)
      onLocal()
    }
    handle.on("remote-heads", onRemote)
    handle.on("heads-changed", onLocal)
  })
}

// settle waits until every replica of each record holds the same heads
// (the sync server forwards each client's changes to the others).
async function settle(groups, timeoutMs) {
  const deadline = now() + timeoutMs
  for (;;) {
    const bad = groups.findIndex(hs => hs.some(h => !sameHeads(h.heads(), hs[0].heads())))
    if (bad < 0) return
    if (now() > deadline) throw new Error(`not converged after ${timeoutMs} ms: replicas of record ${bad} at different heads`)
    await sleep(50)
  }
}
const storageIds = new Set()

async function breadth(o) {
  const { clients, records, ops } = o
  const rand = rng(o.seed)
  const setup = newRepo(o.url, "setup")
  const urls = []
  const created = []
  for (let i = 0; i < records; i++) {
    const h = setup.create({ created: true })
    urls.push(h.url)
    created.push(synced(h))
  }
  await Promise.all(created)
  const repos = Array.from({ length: clients }, (_, c) => newRepo(o.url, `client-${c}`))
  await connected(repos)
  const plan = Array.from({ length: clients }, () => [])
  for (let i = 0; i < ops; i++) plan[Math.floor(rand() * clients)].push([i, Math.floor(rand() * records)])
  const handles = repos.map(() => new Map())
  const lat = []
  let done = 0
  const t0 = now()
  await Promise.all(
    repos.map(async (repo, c) => {
      for (const [i, rec] of plan[c]) {
        let h = handles[c].get(rec)
        if (h) {
          handles[c].delete(rec) // re-inserted below: the Map is in LRU order
        } else {
          // Close the least recently used document past the bound, as
          // dynabench does (its changes are already on the server).
          if (handles[c].size >= o.open) {
            const [oldRec, oldH] = handles[c].entries().next().value
            handles[c].delete(oldRec)
            await repo.removeFromCache(oldH.documentId)
          }
          h = await repo.find(urls[rec]) // the first pull, untimed as in dynabench
        }
        handles[c].set(rec, h)
        const ts = now()
        h.change(d => {
          d[`c${c}`] = i
        })
        await synced(h)
        lat.push(now() - ts)
        done++
        if (done % 20 === 0) process.stderr.write(`progress ${done}\n`)
      }
    }),
  )
  const wall = (now() - t0) / 1000
  // Convergence: every replica of a record ends at the same heads as the
  // others, and in sync with the server.
  const byRecord = new Map()
  for (const m of handles) {
    for (const [rec, h] of m) {
      if (!byRecord.has(rec)) byRecord.set(rec, [])
      byRecord.get(rec).push(h)
    }
  }
  const settleStart = now()
  await settle([...byRecord.values()], 30000)
  for (const hs of byRecord.values()) for (const h of hs) await synced(h, 30000)
  const settleMs = now() - settleStart
  for (const r of [setup, ...repos]) await r.shutdown()
  return {
    changes: done,
    changes_per_s: done / wall,
    sync_p50_ms: percentile(lat, 50),
    sync_p99_ms: percentile(lat, 99),
    settle_ms: settleMs,
  }
}

// textRecord makes a record with an empty text through a setup repo, and
// opens it in writers + 1 more repos: the writers, then the observer.
async function textRecord(o, writers) {
  const setup = newRepo(o.url, "setup")
  const base = setup.create({ text: "" })
  await synced(base)
  const repos = Array.from({ length: writers + 1 }, (_, i) => newRepo(o.url, i === writers ? "observer" : `writer-${i}`))
  await connected(repos)
  const handles = await Promise.all(repos.map(r => r.find(base.url)))
  return { repos: [setup, ...repos], handles, observer: handles[writers] }
}

async function hot(o) {
  const { writers, rate, seconds } = o
  const { repos, handles, observer } = await textRecord(o, writers)
  const madeAt = new Map()
  const seenAt = follow(observer)
  const period = 1000 / rate
  const deadline = now() + seconds * 1000
  let changes = 0
  const ticker = setInterval(() => process.stderr.write(`progress ${Math.round((now() - deadline) / 100 + seconds * 10)}\n`), 100)
  await Promise.all(
    handles.slice(0, writers).map(async (h, i) => {
      const rand = rng(o.seed * 1000 + i)
      await sleep(rand() * period)
      let next = now()
      while (now() < deadline) {
        const ts = now()
        h.change(d => {
          const len = d.text.length
          A.splice(d, ["text"], Math.floor(rand() * (len + 1)), 0, String.fromCharCode(97 + Math.floor(rand() * 26)))
        })
        madeAt.set(A.getHeads(h.doc())[0], ts)
        changes++
        next += period
        await sleep(Math.max(0, next - now()))
      }
    }),
  )
  clearInterval(ticker)
  // Convergence: everyone ends at the server's heads, and the observer
  // holds every change a writer made.
  await converge(handles, observer, madeAt)
  const lat = remoteLatencies(madeAt, seenAt)
  for (const r of repos) await r.shutdown()
  return {
    changes,
    changes_per_s: changes / seconds,
    observed: lat.length,
    remote_p50_ms: percentile(lat, 50),
    remote_p99_ms: percentile(lat, 99),
  }
}

// follow records when the observer first holds each change.
function follow(observer) {
  const seenAt = new Map()
  let prev = observer.doc()
  observer.on("change", ({ doc }) => {
    const t = now()
    for (const c of A.getChanges(prev, doc)) {
      const h = A.decodeChange(c).hash
      if (!seenAt.has(h)) seenAt.set(h, t)
    }
    prev = doc
  })
  return seenAt
}

// converge waits until every handle stands at the server's heads, and
// checks that the observer holds every change a writer made.
async function converge(handles, observer, madeAt) {
  await settle([handles], 60000)
  for (const h of handles) await synced(h, 60000)
  const all = new Set(A.getAllChanges(observer.doc()).map(c => A.decodeChange(c).hash))
  for (const h of madeAt.keys()) if (!all.has(h)) throw new Error(`change ${h} made by a writer is not in the record`)
}

function remoteLatencies(madeAt, seenAt) {
  const lat = []
  for (const [h, t] of seenAt) if (madeAt.has(h)) lat.push(t - madeAt.get(h))
  return lat
}

// acks tracks when the sync server first holds each change a handle made:
// when a change is an ancestor of the heads the server reports (its
// acknowledgement, as in synced). made(hash) starts a change's clock;
// onAck gets the milliseconds. Each change of the history is walked once.
function acks(handle, onAck) {
  const known = new Set() // changes in the server's history
  const pending = new Map() // hash -> when it was made
  let serverHeads = []
  const check = () => {
    if (pending.size === 0) return
    const backend = A.getBackend(handle.doc())
    const stack = [...serverHeads]
    while (stack.length > 0) {
      const h = stack.pop()
      if (known.has(h)) continue
      const c = backend.getChangeByHash(h)
      if (!c) continue // not here yet: walked again at the next event
      known.add(h)
      const t = pending.get(h)
      if (t !== undefined) {
        pending.delete(h)
        onAck(at - t)
      }
      stack.push(...A.decodeChange(c).deps)
    }
  }
  // Checked after the event, not inside it: the handle may be in the
  // middle of a change.
  let at = 0
  let queued = false
  const later = () => {
    at = now()
    if (!queued) {
      queued = true
      setImmediate(() => {
        queued = false
        check()
      })
    }
  }
  handle.on("remote-heads", ({ storageId }) => {
    storageIds.add(storageId)
    const heads = handle.getSyncInfo(storageId)?.lastHeads
    if (heads) serverHeads = decodeHeads(heads) // automerge-repo's heads are base58
    later()
  })
  handle.on("heads-changed", later)
  return {
    made: h => pending.set(h, now()),
    pending: () => pending.size,
  }
}

// words returns n characters of prose: letters and spaces.
function words(rand, n) {
  const b = new Array(n)
  for (let i = 0; i < n; i++) b[i] = rand() < 1 / 6 ? " " : String.fromCharCode(97 + Math.floor(rand() * 26))
  return b.join("")
}

// typist is one writer's cursor: mostly a character typed at the cursor,
// sometimes a backspace, now and then a jump to another place in the text.
// dynabench's Go writers type by the same rules.
function typist(rand) {
  let cursor = -1
  return len => {
    if (cursor < 0 || cursor > len || rand() < 0.01) cursor = Math.floor(rand() * (len + 1))
    if (cursor > 0 && rand() < 0.05) {
      cursor--
      return [cursor, 1, ""]
    }
    const ch = rand() < 1 / 6 ? " " : String.fromCharCode(97 + Math.floor(rand() * 26))
    return [cursor++, 0, ch]
  }
}

// firstPull measures a new client's first pull of handle's document: from
// find until it stands at heads, and the bytes it received on the wire.
async function firstPull(url, handle, heads, timeoutMs = 600000) {
  const adapter = new CountingAdapter(url)
  const repo = newRepo(url, "new-client", adapter)
  await connected([repo])
  adapter.received = 0
  const t0 = now()
  const h = await repo.find(handle.url)
  const deadline = t0 + timeoutMs
  while (!sameHeads(h.heads(), heads)) {
    if (now() > deadline) throw new Error(`first pull not at the server's heads after ${timeoutMs} ms`)
    await sleep(1)
  }
  const ms = now() - t0
  const out = { first_pull_ms: ms, first_pull_bytes: adapter.received, doc: h.doc() }
  await repo.shutdown()
  return out
}

// paste: one change that pastes chars characters into an empty text, then a
// new client's first pull of the record.
async function paste(o) {
  const repo = newRepo(o.url, "writer")
  const h = repo.create({ text: "" })
  await synced(h)
  const text = words(rng(o.seed), o.chars)
  const t0 = now()
  h.change(d => {
    A.splice(d, ["text"], 0, 0, text)
  })
  const changeBytes = A.getLastLocalChange(h.doc()).length
  await synced(h, 600000)
  const pushMs = now() - t0
  process.stderr.write("progress 1\n")
  const pull = await firstPull(o.url, h, h.heads())
  if (pull.doc.text !== text) throw new Error(`the new client's text differs from the paste (${pull.doc.text.length} characters)`)
  const out = {
    changes: 1,
    ops: o.chars,
    push_p50_ms: pushMs,
    push_p99_ms: pushMs,
    change_bytes: changeBytes,
    first_pull_ms: pull.first_pull_ms,
    first_pull_bytes: pull.first_pull_bytes,
    save_bytes: A.save(h.doc()).length,
  }
  await repo.shutdown()
  return out
}

// typing: two writers type changes characters (one change each) into one
// text at rate changes per second each, while an observer follows; then a
// new client's first pull of the record. A push's latency is from the
// change to the sync server's acknowledgement (see acks).
async function typing(o) {
  const writers = 2
  const { repos, handles, observer } = await textRecord(o, writers)
  const madeAt = new Map()
  const seenAt = follow(observer)
  const push = []
  const trackers = handles.slice(0, writers).map(h => acks(h, ms => push.push(ms)))
  const period = 1000 / o.rate
  let changes = 0
  const t0 = now()
  await Promise.all(
    handles.slice(0, writers).map(async (h, i) => {
      const rand = rng(o.seed * 1000 + i)
      const type = typist(rand)
      const quota = Math.floor(o.changes / writers) + (i < o.changes % writers ? 1 : 0)
      await sleep(rand() * period)
      let next = now()
      for (let k = 0; k < quota; k++) {
        h.change(d => {
          const [pos, del, ins] = type(d.text.length)
          A.splice(d, ["text"], pos, del, ins)
        })
        const hash = A.getHeads(h.doc())[0]
        madeAt.set(hash, now())
        trackers[i].made(hash)
        changes++
        if (changes % 100 === 0) process.stderr.write(`progress ${changes}\n`)
        next += period
        await sleep(Math.max(0, next - now()))
      }
    }),
  )
  const wall = (now() - t0) / 1000
  await converge(handles, observer, madeAt)
  const deadline = now() + 60000
  while (trackers.some(t => t.pending() > 0)) {
    if (now() > deadline) throw new Error(`${trackers.map(t => t.pending())} changes never acknowledged`)
    await sleep(10)
  }
  const lat = remoteLatencies(madeAt, seenAt)
  const pull = await firstPull(o.url, observer, observer.heads())
  if (pull.doc.text !== observer.doc().text) throw new Error("the new client's text differs from the observer's")
  const out = {
    changes,
    ops: changes,
    changes_per_s: changes / wall,
    offered_per_s: writers * o.rate,
    push_p50_ms: percentile(push, 50),
    push_p99_ms: percentile(push, 99),
    observed: lat.length,
    remote_p50_ms: percentile(lat, 50),
    remote_p99_ms: percentile(lat, 99),
    first_pull_ms: pull.first_pull_ms,
    first_pull_bytes: pull.first_pull_bytes,
    save_bytes: A.save(observer.doc()).length,
    text_chars: observer.doc().text.length,
  }
  for (const r of repos) await r.shutdown()
  return out
}

// findRetrying finds a document, asking again when the sync server was too
// busy to answer in time. A repo remembers a document it found unavailable,
// so it is dropped from the cache before asking again.
async function findRetrying(repo, url, tries = 5) {
  for (let n = 1; ; n++) {
    try {
      return await repo.find(url)
    } catch (e) {
      if (n >= tries || !/unavailable/.test(String(e))) throw e
      // Dropping the handle fails while it is not ready; then the retry
      // finds the same handle, which may have become ready meanwhile.
      await repo.removeFromCache(url.replace(/^automerge:/, "")).catch(() => {})
      await sleep(200 * n)
    }
  }
}

// fanout: every client holds every record; client i writes the records r
// with r mod clients = i at `rate` changes per second, and every other
// client's copy receives each change through the sync server. A delivery
// is a change first held by one receiver; its latency runs from the change
// being made.
async function fanout(o) {
  const { clients, records, rate, seconds } = o
  const setup = newRepo(o.url, "setup")
  const bases = Array.from({ length: records }, () => setup.create({ n: 0 }))
  for (const b of bases) await synced(b)
  const repos = Array.from({ length: clients }, (_, i) => newRepo(o.url, `client-${i}`))
  await connected(repos)
  // The records are opened one at a time: 6,400 finds at once, or even one
  // per client at a time, leave the busy sync server answering
  // "unavailable".
  const handles = []
  for (const r of repos) {
    const hs = []
    for (const b of bases) hs.push(await findRetrying(r, b.url))
    handles.push(hs)
  }
  const madeAt = new Map()
  const lat = []
  let deliveries = 0
  let counting = false
  for (let i = 0; i < clients; i++) {
    for (let r = 0; r < records; r++) {
      if (r % clients === i) continue // its own record: no delivery
      const h = handles[i][r]
      // A handle the busy sync server left not ready yet has no document
      // to diff against: its first change event only sets one.
      let prev = h.isReady() ? h.doc() : undefined
      h.on("change", ({ doc }) => {
        const t = now()
        if (counting && prev !== undefined) {
          for (const c of A.getChanges(prev, doc)) {
            const made = madeAt.get(A.decodeChange(c).hash)
            if (made !== undefined) {
              lat.push(t - made)
              deliveries++
            }
          }
        }
        prev = doc
      })
    }
  }
  counting = true
  const period = 1000 / rate
  const start = now()
  const deadline = start + seconds * 1000
  let changes = 0
  const ticker = setInterval(() => process.stderr.write(`progress ${Math.round((now() - start) / 100)}\n`), 100)
  await Promise.all(
    handles.map(async (hs, i) => {
      const own = hs.filter((_, r) => r % clients === i)
      if (own.length === 0) return
      const rand = rng(o.seed * 1000 + i)
      await sleep(rand() * period)
      let next = now()
      for (let n = 1; now() < deadline; n++) {
        const h = own[Math.floor(rand() * own.length)]
        if (!h.isReady()) await h.whenReady()
        const ts = now()
        h.change(d => {
          d.n = n
        })
        madeAt.set(A.getHeads(h.doc())[0], ts)
        changes++
        next += period
        await sleep(Math.max(0, next - now()))
      }
    }),
  )
  clearInterval(ticker)
  const want = changes * (clients - 1)
  const waitUntil = now() + 10000
  while (deliveries < want && now() < waitUntil) await sleep(20)
  const elapsed = (now() - start) / 1000
  const out = {
    changes,
    changes_per_s: changes / seconds,
    deliveries,
    expected_deliveries: want,
    deliveries_per_s: deliveries / elapsed,
    remote_p50_ms: percentile(lat, 50),
    remote_p99_ms: percentile(lat, 99),
  }
  // Convergence: every copy of each record at the same heads.
  await settle(bases.map((_, r) => handles.map(hs => hs[r])), 60000)
  for (const r of [setup, ...repos]) await r.shutdown()
  return out
}

async function main() {
  const f = flags(process.argv.slice(2))
  const o = { url: f.url, seed: Number(f.seed ?? 1) }
  let out
  try {
    if (f.workload === "breadth") {
      out = await breadth({ ...o, clients: Number(f.clients), records: Number(f.records), ops: Number(f.ops), open: Number(f.open ?? 16) })
    } else if (f.workload === "hot") {
      out = await hot({ ...o, writers: Number(f.writers), rate: Number(f.rate), seconds: Number(f.seconds) })
    } else if (f.workload === "paste") {
      out = await paste({ ...o, chars: Number(f.chars) })
    } else if (f.workload === "typing") {
      out = await typing({ ...o, changes: Number(f.changes), rate: Number(f.rate) })
    } else if (f.workload === "fanout") {
      out = await fanout({ ...o, clients: Number(f.clients), records: Number(f.records), rate: Number(f.rate), seconds: Number(f.seconds) })
    } else {
      throw new Error(`--workload: want breadth, hot, paste, typing or fanout, got ${f.workload}`)
    }
    out.converged = true
  } catch (e) {
    out = { converged: false, failure: String(e?.stack ?? e) }
  }
  process.stdout.write(JSON.stringify(out) + "\n")
  process.exit(out.converged ? 0 : 1)
}

if (import.meta.url === `file://${process.argv[1]}`) main()
