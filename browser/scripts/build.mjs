// build.mjs [--outdir DIR]: bundles src/ into one ES module, DIR/dynamerge.js
// (default dist/), and its TypeScript declarations (DIR/dynamerge.d.ts, one
// file); Automerge's WebAssembly beside it as DIR/automerge.<hash>.wasm (the
// first 16 hex digits of its SHA-256: a URL that names its content, served
// as immutable), which the bundle fetches by that name relative to its own
// URL, and as base64 in DIR/automerge-wasm.js, the chunk the bundle imports
// only when the .wasm cannot be loaded (src/automerge.ts); and the React
// bindings of src/react/ into DIR/react.js and DIR/react.d.ts (the package's
// "dynamerge/react" export), which import React and ./dynamerge.js instead
// of holding copies: one library instance per page, React as the app's. The
// output is byte-for-byte the same for the same sources and locked
// dependencies: the committed dist/ is checked against a fresh build.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
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

// The WebAssembly, named by its content.
const wasm = readFileSync(join(root, "node_modules/@automerge/automerge/dist/automerge.wasm"));
const wasmFile = `automerge.${createHash("sha256").update(wasm).digest("hex").slice(0, 16)}.wasm`;
writeFileSync(join(outdir, wasmFile), wasm);

// The base64 fallback chunk, the sibling ./automerge-wasm.js of the bundle.
const fallbackChunk = "automerge-wasm.js";
await build({
  absWorkingDir: root,
  entryPoints: ["src/wasm-base64.ts"],
  outfile: join(outdir, fallbackChunk),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"],
  minify: true,
  charset: "utf8",
  sourcemap: false,
  logLevel: "warning",
  banner: {
    js: `/* Automerge ${automerge.version} WebAssembly as base64 (MIT), the fallback of dynamerge ${pkg.version}. Built by browser/scripts/build.mjs; do not edit. */`,
  },
});

await build({
  absWorkingDir: root,
  entryPoints: ["src/index.ts"],
  define: { __DYNAMERGE_WASM__: JSON.stringify(`./${wasmFile}`) },
  plugins: [
    {
      // src/automerge.ts imports the fallback lazily; it stays a separate
      // file, which a bundler consuming the package turns into a lazy chunk.
      name: "dynamerge-wasm-fallback",
      setup(b) {
        b.onResolve({ filter: /^\.\/wasm-base64\.js$/ }, () => ({ path: `./${fallbackChunk}`, external: true }));
      },
    },
  ],
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

// The React bindings: src/react/ imports the library only through
// src/index.ts (its public API), which becomes the sibling ./dynamerge.js.
const libraryEntry = join(root, "src", "index.ts");
await build({
  absWorkingDir: root,
  entryPoints: ["src/react/index.ts"],
  outfile: join(outdir, "react.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"],
  // Small: kept readable for the app developer's debugger.
  minify: false,
  charset: "utf8",
  sourcemap: false,
  logLevel: "warning",
  external: ["react"],
  plugins: [
    {
      name: "dynamerge-library",
      setup(b) {
        b.onResolve({ filter: /^\.\.?\// }, (args) => {
          if (!args.importer.includes(`${join("src", "react")}`)) return undefined;
          const target = resolve(args.resolveDir, args.path.replace(/\.js$/, ".ts"));
          if (target === libraryEntry) return { path: "./dynamerge.js", external: true };
          if (!target.startsWith(join(root, "src", "react"))) {
            return { errors: [{ text: `src/react may import the library only through ../index.js, not ${args.path}` }] };
          }
          return undefined;
        });
      },
    },
  ],
  banner: {
    js: `/* dynamerge ${pkg.version} React bindings (MIT). Built by browser/scripts/build.mjs; do not edit. */`,
  },
});

// Declarations: one self-contained DIR/dynamerge.d.ts, the file
// package.json's "types" names. tsc writes one .d.ts per source into a
// temporary folder; the public modules' declarations are joined in one file,
// their imports of each other dropped, and `export` kept only on the names
// src/index.ts exports (the rest are declarations the public ones refer to).
const declDir = mkdtempSync(join(tmpdir(), "dynamerge-types-"));
try {
  execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.json"), "--outDir", declDir], {
    stdio: "inherit",
  });
  writeFileSync(join(outdir, "dynamerge.d.ts"), bundleDeclarations(declDir));
  writeFileSync(
    join(outdir, "react.d.ts"),
    bundleDeclarations(join(declDir, "react"), { imports: { "../index.js": "./dynamerge.js", react: "react" } }),
  );
} finally {
  rmSync(declDir, { recursive: true, force: true });
}

// bundleDeclarations joins the declarations of dir/index.d.ts and of the
// modules it re-exports. With `imports` (specifier → what to write), the
// modules' type imports from outside dir are merged into one import per
// specifier at the top, renamed (../index.js → ./dynamerge.js): several
// modules importing the same name must not declare it twice.
function bundleDeclarations(dir, { imports } = {}) {
  const local = /^(import|export)\b[^;]*\bfrom "\.\/([a-z]+)\.js";$/;
  const outside = /^import type \{([^}]*)\} from "([^"]+)";$/;
  const merged = new Map(); // specifier → Set of names
  const index = readFileSync(join(dir, "index.d.ts"), "utf8").split("\n");
  const publicNames = new Set();
  const modules = [];
  for (const line of index) {
    const m = local.exec(line);
    if (!m) continue;
    if (!modules.includes(m[2])) modules.push(m[2]);
    for (const name of line.slice(line.indexOf("{") + 1, line.indexOf("}")).split(",")) {
      if (name.trim()) publicNames.add(name.trim());
    }
  }
  const parts = [index.filter((l) => !local.test(l)).join("\n").trimEnd()];
  for (const mod of modules.sort()) {
    const lines = readFileSync(join(dir, `${mod}.d.ts`), "utf8").split("\n");
    const kept = lines
      .filter((l) => !local.test(l))
      .filter((l) => {
        if (!imports) return true;
        if (l === "export {};") return false;
        const m = outside.exec(l);
        if (!m) return true;
        if (!(m[2] in imports)) throw new Error(`build.mjs: ${dir}/${mod}.d.ts imports from ${m[2]}, which the build does not map`);
        const names = merged.get(m[2]) ?? new Set();
        for (const n of m[1].split(",")) if (n.trim()) names.add(n.trim());
        merged.set(m[2], names);
        return false;
      })
      .map((l) => {
        const m = /^export (declare |interface |type )(?:const |function |class )?([A-Za-z_]+)/.exec(l);
        if (!m || publicNames.has(m[2])) return l;
        return l.replace(/^export (declare )?/, "declare ");
      });
    parts.push(`// ${mod}\n${kept.join("\n").trim()}`);
  }
  if (merged.size > 0) {
    const lines = [...merged].map(([spec, names]) => `import type { ${[...names].sort().join(", ")} } from "${imports[spec]}";`);
    parts.unshift(lines.join("\n"));
  }
  const out = parts.join("\n\n") + "\n";
  for (const name of publicNames) {
    if (!new RegExp(`^export (declare )?(const |function |class |interface |type )${name}\\b`, "m").test(out)) {
      throw new Error(`build.mjs: ${name} is exported by src/index.ts but not declared in dynamerge.d.ts`);
    }
  }
  return out;
}
