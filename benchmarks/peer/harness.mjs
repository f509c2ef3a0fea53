// The client side of the peer comparison: the breadth and hot-record
// workloads of dynabench, run against automerge-repo's sync server
// (server.mjs) by automerge-repo clients, one Repo per client with the
// WebSocket client adapter and no storage, as a browser tab without
// IndexedDB would be. Prints progress lines ("progress N") on stderr and
// one JSON object of metrics on stdout; a workload that does not converge
// says so in "failure" and exits 1.
//
//   node harness.mjs --url ws://127.0.0.1:PORT --workload breadth --clients 64 --records 1000 --ops 2000 --open 16 --seed 1
//   node harness.mjs --url ws://127.0.0.1:PORT --workload hot --writers 16 --rate 6 --seconds 4 --seed 1
import { performance } from "node:perf_hooks"
import * as A from "@automerge/automerge"
import { Repo } from "@automerge/automerge-repo"
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

function newRepo(url, name) {
  return new Repo({ network: [new WebSocketClientAdapter(url)], peerId: name })
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

async function hot(o) {
  const { writers, rate, seconds } = o
  const setup = newRepo(o.url, "setup")
  const base = setup.create({ text: "" })
  await synced(base)
  const repos = Array.from({ length: writers + 1 }, (_, i) => newRepo(o.url, i === writers ? "observer" : `writer-${i}`))
  await connected(repos)
  const handles = await Promise.all(repos.map(r => r.find(base.url)))
  const observer = handles[writers]
  const madeAt = new Map()
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
  await settle([handles], 30000)
  for (const h of handles) await synced(h, 30000)
  const all = new Set(A.getAllChanges(observer.doc()).map(c => A.decodeChange(c).hash))
  for (const h of madeAt.keys()) if (!all.has(h)) throw new Error(`change ${h} made by a writer is not in the record`)
  const lat = []
  for (const [h, t] of seenAt) if (madeAt.has(h)) lat.push(t - madeAt.get(h))
  for (const r of [setup, ...repos]) await r.shutdown()
  return {
    changes,
    changes_per_s: changes / seconds,
    observed: lat.length,
    remote_p50_ms: percentile(lat, 50),
    remote_p99_ms: percentile(lat, 99),
  }
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
    } else {
      throw new Error(`--workload: want breadth or hot, got ${f.workload}`)
    }
    out.converged = true
  } catch (e) {
    out = { converged: false, failure: String(e?.stack ?? e) }
  }
  process.stdout.write(JSON.stringify(out) + "\n")
  process.exit(out.converged ? 0 : 1)
}

if (import.meta.url === `file://${process.argv[1]}`) main()
