// The peer of the comparison: automerge-repo's own sync server, as the
// automerge-repo-sync-server package runs it (a Repo with the WebSocket
// server adapter and Node file system storage, sharing nothing on its own
// initiative), plus two small HTTP routes for the benchmark runner:
// GET /healthz, and GET /stats with the storage writes made so far.
//
//   node server.mjs --dir <storage folder> --addr 127.0.0.1:<port>
import http from "node:http"
import { isIP } from "node:net"
import { WebSocketServer } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

function flags(argv) {
  const out = {}
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || i + 1 >= argv.length) throw new Error(`bad arguments: ${argv.join(" ")}`)
    out[argv[i].slice(2)] = argv[i + 1]
  }
  return out
}

const args = flags(process.argv.slice(2))
if (!args.dir || !args.addr) {
  console.error("usage: node server.mjs --dir <folder> --addr 127.0.0.1:<port>")
  process.exit(2)
}
const i = args.addr.lastIndexOf(":")
const host = args.addr.slice(0, i)
const port = Number(args.addr.slice(i + 1))
// No authentication: loopback only, like every server the runner starts.
if (!(host === "localhost" || (isIP(host) === 4 && host.startsWith("127.")) || host === "::1")) {
  console.error(`--addr ${args.addr}: loopback only`)
  process.exit(2)
}

const stats = { saves: 0, savedBytes: 0, removes: 0 }

// Counts the storage writes: the peer's "store writes per change".
class CountingStorage extends NodeFSStorageAdapter {
  async save(key, data) {
    stats.saves++
    stats.savedBytes += data.length
    return super.save(key, data)
  }
  async remove(key) {
    stats.removes++
    return super.remove(key)
  }
  async removeRange(prefix) {
    stats.removes++
    return super.removeRange(prefix)
  }
}

const server = http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" }).end("ok\n")
  } else if (req.url === "/stats") {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(stats))
  } else {
    res.writeHead(404).end()
  }
})
const wss = new WebSocketServer({ noServer: true })
server.on("upgrade", (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, ws => wss.emit("connection", ws, req))
})
const repo = new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: new CountingStorage(args.dir),
  peerId: "sync-server",
  // As automerge-repo-sync-server: serve what clients ask for, announce nothing.
  sharePolicy: async () => false,
})
server.listen(port, host)

async function shutdown() {
  try {
    await repo.flush()
  } finally {
    wss.close()
    server.close()
    process.exit(0)
  }
}
process.on("SIGTERM", shutdown)
process.on("SIGINT", shutdown)
