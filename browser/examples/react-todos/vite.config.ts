// Vite's defaults and the React plugin: nothing for Automerge's WebAssembly,
// which dynamerge ships inlined (see the browser README).
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  build: {
    // dynamerge.js is one ~4.8 MB module (Automerge's wasm inlined): say
    // so once instead of a size warning on every build.
    chunkSizeWarningLimit: 6000,
  },
});
