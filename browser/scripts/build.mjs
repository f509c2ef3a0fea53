// build.mjs [--outdir DIR]: bundles src/ into one ES module, DIR/dynamerge.js
// (default dist/), with Automerge's WebAssembly inlined as base64, and its
// TypeScript declarations (DIR/dynamerge.d.ts + DIR/types/). The output is
// byte-for-byte the same for the same sources and locked dependencies: the
// committed dist/ is checked against a fresh build.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
let outdir = join(root, "dist");
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--outdir" && args[i + 1]) outdir = resolve(args[++i]);
  else {
    console.error(`build.mjs: unknown argument ${args[i]}\nusage: node scripts/build.mjs [--outdir DIR]`);
    process.exit(2);
  }
}

const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const automerge = JSON.parse(readFileSync(join(root, "node_modules/@automerge/automerge/package.json"), "utf8"));

// A clean output folder: a stale file from an older layout must not linger.
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

await build({
  absWorkingDir: root,
  entryPoints: ["src/index.ts"],
  outfile: join(outdir, "dynamerge.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"],
  minify: true,
  legalComments: "eof",
  charset: "utf8",
  sourcemap: false,
  logLevel: "warning",
  banner: {
    js: `/* dynamerge ${pkg.version} (browser library) with @automerge/automerge ${automerge.version} (MIT). Built by browser/scripts/build.mjs; do not edit. */`,
  },
});

// Declarations: tsc writes one .d.ts per source; dynamerge.d.ts is the
// entry that package.json's "types" names.
execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.json"), "--outDir", join(outdir, "types")], {
  stdio: "inherit",
});
// Only the public API's declarations ship: the internal modules are
// bundled, never imported by users.
const shipped = new Set(["index.d.ts", "database.d.ts", "types.d.ts", "errors.d.ts"]);
for (const f of readdirSync(join(outdir, "types"))) {
  if (!shipped.has(f)) rmSync(join(outdir, "types", f));
}
writeFileSync(join(outdir, "dynamerge.d.ts"), 'export * from "./types/index.js";\n');
