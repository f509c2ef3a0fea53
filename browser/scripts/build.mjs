// build.mjs [--outdir DIR]: bundles src/ into one ES module, DIR/dynamerge.js
// (default dist/), with Automerge's WebAssembly inlined as base64, and its
// TypeScript declarations (DIR/dynamerge.d.ts, one file). The output is
// byte-for-byte the same for the same sources and locked dependencies: the
// committed dist/ is checked against a fresh build.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
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
} finally {
  rmSync(declDir, { recursive: true, force: true });
}

function bundleDeclarations(dir) {
  const local = /^(import|export)\b[^;]*\bfrom "\.\/([a-z]+)\.js";$/;
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
      .map((l) => {
        const m = /^export (declare |interface |type )(?:const |function |class )?([A-Za-z_]+)/.exec(l);
        if (!m || publicNames.has(m[2])) return l;
        return l.replace(/^export (declare )?/, "declare ");
      });
    parts.push(`// ${mod}\n${kept.join("\n").trim()}`);
  }
  const out = parts.join("\n\n") + "\n";
  for (const name of publicNames) {
    if (!new RegExp(`^export (declare )?(const |function |class |interface |type )${name}\\b`, "m").test(out)) {
      throw new Error(`build.mjs: ${name} is exported by src/index.ts but not declared in dynamerge.d.ts`);
    }
  }
  return out;
}
