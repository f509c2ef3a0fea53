/**
 * Changes that ride in a live event (`"changes"` of `event: change`): whether
 * a replica can apply them in place of a pull.
 */
import * as A from "@automerge/automerge/slim";
import type { Heads } from "./types.js";

const MAGIC = [0x85, 0x6f, 0x4a, 0x83];
const HEADER = 9; // magic, checksum, chunk type
const DOCUMENT_CHUNK = 0;

/**
 * splitChunks cuts concatenated Automerge chunks apart, or returns
 * undefined for anything but whole change chunks (a document chunk, bad
 * framing): the caller then pulls, which is always safe.
 */
export function splitChunks(b: Uint8Array): Uint8Array[] | undefined {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < b.length) {
    if (b.length - at < HEADER + 1) return undefined;
    for (let n = 0; n < MAGIC.length; n++) if (b[at + n] !== MAGIC[n]) return undefined;
    if (b[at + 8] === DOCUMENT_CHUNK) return undefined;
    // The body length, unsigned LEB128.
    let len = 0;
    let shift = 0;
    let p = at + HEADER;
    for (;;) {
      if (p >= b.length || shift > 28) return undefined;
      const byte = b[p++]!;
      len += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if ((byte & 0x80) === 0) break;
    }
    const end = p + len;
    if (end > b.length) return undefined;
    out.push(b.subarray(at, end));
    at = end;
  }
  return out.length > 0 ? out : undefined;
}

/**
 * applicable tells whether `doc` can take the event's changes and then
 * stand at (or past) the event's `heads`: every dependency of the changes
 * outside them, and every head they do not make, is in `doc` already.
 * Automerge would otherwise queue the changes silently and leave the
 * record short of the server's heads.
 */
export function applicable(doc: A.Doc<unknown>, chunks: Uint8Array[], heads: Heads): boolean {
  const own = new Set<string>();
  const deps: string[] = [];
  for (const c of chunks) {
    const d = A.decodeChange(c);
    if (!d.hash) return false;
    own.add(d.hash);
    deps.push(...d.deps);
  }
  const need = [...deps, ...heads].filter((h) => !own.has(h));
  return need.length === 0 || A.hasHeads(doc, need);
}
