// Vite's defaults and the React plugin: nothing for Automerge's WebAssembly,
// which dynamerge finds beside itself (new URL(..., import.meta.url)), and
// Vite copies as an asset (see the browser README).
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  build: {
    // The library's fallback chunk (the wasm as base64, loaded only when
    // the .wasm file cannot be) is ~4.9 MB: say so once instead of a size
    // warning on every build.
    chunkSizeWarningLimit: 6000,
  },
});
