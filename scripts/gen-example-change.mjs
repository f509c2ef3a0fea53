// Generates the example change of the README, of schema/openapi.yaml and of
// cmd/dynamerge/testdata/todo.json: one Automerge change made by
// @automerge/automerge (the version pinned in tools/node), with a fixed actor
// and time so that the bytes are reproducible.
//
//   make deps && node scripts/gen-example-change.mjs > cmd/dynamerge/testdata/todo.json
import { createRequire } from "node:module";

// Resolve Automerge from tools/node, where `make deps` installs it.
const require = createRequire(new URL("../tools/node/package.json", import.meta.url));
const A = await import(require.resolve("@automerge/automerge"));

let doc = A.init({ actor: "0123456789abcdef0123456789abcdef" });
doc = A.change(doc, { time: 1764158400, message: "add todo" }, (d) => {
  d.title = "Buy milk";
  d.done = false;
});
const bytes = Buffer.concat(A.getAllChanges(doc).map((c) => Buffer.from(c)));
const out = { changes: bytes.toString("base64"), heads: A.getHeads(doc), doc: A.toJS(doc) };
console.log(JSON.stringify(out, null, 2));
