// The binary serves the demo app at "/" and the library at "/dynamerge.js"
// from the files embedded at build time, with content types a browser
// accepts for modules and with revalidation, so that an upgraded server is
// never paired with a stale cached bundle.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { startServer, repoRoot } from "../harness.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const cases = [
  { path: "/", type: "text/html; charset=utf-8", file: "demo/index.html" },
  { path: "/dynamerge.js", type: "text/javascript; charset=utf-8", file: "dist/dynamerge.js" },
  { path: "/app.js", type: "text/javascript; charset=utf-8", file: "demo/app.js" },
  { path: "/style.css", type: "text/css; charset=utf-8", file: "demo/style.css" },
  { path: "/favicon.svg", type: "image/svg+xml", file: "demo/favicon.svg" },
];

for (const c of cases) {
  test(`GET ${c.path} serves ${c.file} as ${c.type}, revalidated by ETag`, async () => {
    const resp = await fetch(server.url + c.path);
    assert.equal(resp.status, 200);
    assert.equal(resp.headers.get("content-type"), c.type);
    assert.equal(resp.headers.get("cache-control"), "no-cache");
    assert.equal(resp.headers.get("x-content-type-options"), "nosniff");
    const etag = resp.headers.get("etag");
    // fetch asks for gzip: text assets of 1 KB or more come gzipped, as a
    // representation with its own ETag (fetch decodes the body).
    assert.match(etag ?? "", /^"[0-9a-f]{32}(-gzip)?"$/);
    assert.equal(resp.headers.get("content-encoding") === "gzip", etag.endsWith('-gzip"'));
    if (c.path === "/dynamerge.js") assert.equal(resp.headers.get("content-encoding"), "gzip");
    // The binary serves the committed files, byte for byte.
    const body = Buffer.from(await resp.arrayBuffer());
    const want = await readFile(join(repoRoot, "browser", c.file));
    assert.ok(body.equals(want), `${c.path} differs from browser/${c.file} (${body.length} vs ${want.length} bytes): rebuild the binary`);

    const again = await fetch(server.url + c.path, { headers: { "If-None-Match": etag } });
    assert.equal(again.status, 304);
    assert.equal((await again.arrayBuffer()).byteLength, 0);
  });
}

test("unknown paths are 404, and the API keeps JSON errors", async () => {
  const page = await fetch(server.url + "/no-such-file.js");
  assert.equal(page.status, 404);
  await page.arrayBuffer();
  const api = await fetch(server.url + "/v1/nope");
  assert.equal(api.status, 404);
  assert.match(api.headers.get("content-type") ?? "", /^application\/json/);
  assert.equal((await api.json()).error.code, "not_found");
});
