/**
 * Conversion of Automerge's JavaScript values to the plain JSON view the
 * library stores and returns, matching the server's JSON view (PROTOCOL.md):
 * text becomes a string, counters numbers, bytes base64 strings, timestamps
 * RFC 3339 strings.
 */
import { Counter, ImmutableString } from "@automerge/automerge/slim";
import type { JSONValue } from "./types.js";

/** toPlain converts the result of `Automerge.toJS` (or any value in it) to plain JSON. */
export function toPlain(v: unknown): JSONValue {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case "string":
    case "boolean":
      return v;
    case "number":
      return Number.isFinite(v) ? v : null;
    case "bigint":
      return Number(v);
    case "object":
      break;
    default:
      return null;
  }
  if (Array.isArray(v)) return v.map(toPlain);
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return base64(v);
  if (v instanceof Counter) return v.value;
  if (v instanceof ImmutableString) return v.val;
  const o = v as Record<string, unknown>;
  const out: { [k: string]: JSONValue } = {};
  for (const k of Object.keys(o)) out[k] = toPlain(o[k]);
  return out;
}

/** base64 encodes bytes as standard base64 with padding (RFC 4648 section 4). */
export function base64(b: Uint8Array): string {
  let s = "";
  // Chunks keep String.fromCharCode's argument list small.
  for (let i = 0; i < b.length; i += 0x8000) {
    s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** fromBase64 decodes standard base64; it throws on anything else. */
export function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** concat joins byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
