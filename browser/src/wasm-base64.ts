/**
 * The fallback copy of Automerge's WebAssembly, as base64: its own chunk
 * (dist/automerge-wasm.js), imported only when the `.wasm` file cannot be
 * loaded (automerge.ts), so that no page downloads or parses it otherwise.
 */
export { automergeWasmBase64 } from "@automerge/automerge/automerge.wasm.base64";
