// test.mjs: builds the dynamerge server once (into a temporary folder), then
// runs the Node tests (test/*.test.mjs) one file at a time against fresh
// servers started from it, on the library built into .build-test/.
// Set DYNAMERGE_BIN to use an already built server, GO to pick the go tool.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
let tmp;
const env = { ...process.env };
if (!env.DYNAMERGE_BIN) {
  tmp = mkdtempSync(join(tmpdir(), "dynamerge-browser-test-"));
  env.DYNAMERGE_BIN = join(tmp, "dynamerge");
  execFileSync(env.GO ?? "go", ["build", "-o", env.DYNAMERGE_BIN, "./cmd/dynamerge"], {
    cwd: resolve(root, ".."),
    stdio: "inherit",
  });
}
const files = readdirSync(join(root, "test"))
  .filter((f) => f.endsWith(".test.mjs"))
  .sort()
  .map((f) => join("test", f));
const r = spawnSync(process.execPath, ["--test", "--test-concurrency=1", ...process.argv.slice(2), ...files], {
  cwd: root,
  env,
  stdio: "inherit",
});
if (tmp) rmSync(tmp, { recursive: true, force: true });
process.exit(r.status ?? 1);
