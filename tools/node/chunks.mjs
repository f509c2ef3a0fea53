// chunks.mjs: Automerge chunk framing, without Automerge: splitting
// concatenated chunks and computing change hashes.
//
// A chunk is magic (4 bytes), checksum (4), type (1: 0 document, 1 change,
// 2 compressed change), ULEB128 body length, body. A change's hash is SHA-256
// over type, length and body of its uncompressed form.
import { createHash } from "node:crypto"
import { inflateRawSync } from "node:zlib"

export const TYPE_DOCUMENT = 0
export const TYPE_CHANGE = 1
export const TYPE_COMPRESSED_CHANGE = 2

// split splits concatenated chunks at their declared lengths. It checks the
// framing only, not magic bytes, checksums or bodies.
export function split(b) {
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

// uleb encodes n as unsigned LEB128.
export function uleb(n) {
  const out = []
  do {
    let b = n & 0x7f
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    out.push(b)
  } while (n > 0)
  return Buffer.from(out)
}

// changeHash returns the hash of a change chunk (type 1 or 2) as lowercase
// hex. Automerge.decodeChange gives the same hash but throws on changes it
// cannot turn into JavaScript values (integers beyond 2^53); this does not.
export function changeHash(chunk) {
  const type = chunk[8]
  let p = 9
  while (chunk[p] & 0x80) p++
  p++
  let body = chunk.subarray(p)
  if (type === TYPE_COMPRESSED_CHANGE) body = inflateRawSync(body)
  else if (type !== TYPE_CHANGE) throw new Error(`chunk type ${type} is not a change`)
  return createHash("sha256")
    .update(Buffer.from([TYPE_CHANGE]))
    .update(uleb(body.length))
    .update(body)
    .digest("hex")
}
