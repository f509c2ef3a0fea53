// Failures: what the server refuses, what it cannot do now, and what the
// network does. Faults the real server does not produce on demand (503,
// 429, 401, a hand-made event stream) are injected with a fetch wrapper in
// front of the real server.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { lib, dbName, fast, startServer, until, syncDocs } from "./helpers.mjs";

const { open, isDynamergeError, DynamergeError, TooLargeError, UnauthorizedError } = lib;
let srv;
before(async () => {
  srv = await startServer();
});
after(async () => {
  await srv?.stop();
});

function errorAnswer(status, code, headers = {}) {
  return new Response(JSON.stringify({ error: { code, message: `injected ${code}` } }), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

test("503 and 429 are retried with backoff, honouring Retry-After", async () => {
  const attempts = [];
  let failures = 2;
  const flaky = async (url, init) => {
    if (String(url).endsWith("/v1/sync")) {
      attempts.push(Date.now());
      if (failures > 0) {
        failures--;
        return failures === 1
          ? errorAnswer(503, "unavailable", { "Retry-After": "1" })
          : errorAnswer(429, "rate_limited", { "Retry-After": "1" });
      }
    }
    return fetch(url, init);
  };
  const db = await open({ url: srv.url, name: dbName(), fetch: flaky, live: false, ...fast });
  try {
    const t = db.collection("flaky");
    const id = await t.create({ v: 1 });
    const err = await until(() => db.status.error, "the first failure");
    assert.ok(isDynamergeError(err, "unavailable") || isDynamergeError(err, "rate_limited"), String(err));
    assert.equal(err.retryAfterMs, 1000);
    await until(() => db.status.pending === 0, "the retries to get through", 20_000);
    assert.equal(db.status.error, null);
    assert.ok(attempts.length >= 3, `${attempts.length} attempts`);
    // Retry-After: 1 is a floor under the backoff delay (20 ms here).
    for (let n = 1; n < 3; n++) {
      assert.ok(attempts[n] - attempts[n - 1] >= 990, `retry ${n} came after ${attempts[n] - attempts[n - 1]} ms`);
    }
    const res = await fetch(`${srv.url}/v1/collections/flaky/docs/${id}`);
    assert.equal(res.status, 200);
  } finally {
    db.close();
  }
});

test("a record the server refuses stays in the outbox and shows in status", async () => {
  const small = await startServer({ args: ["--max-change-bytes", "2KiB"] });
  const name = dbName();
  const db = await open({ url: small.url, name, live: false, ...fast });
  try {
    const t = db.collection("limits");
    const ok = await t.create({ v: "small" });
    const big = await t.create({ v: "x".repeat(20_000) });
    await assert.rejects(db.sync(), (e) => {
      assert.ok(e instanceof TooLargeError, String(e));
      assert.ok(e instanceof DynamergeError);
      assert.equal(e.code, "too_large");
      assert.equal(e.collection, "limits");
      assert.equal(e.id, big);
      return true;
    });
    // The other record went through.
    assert.equal((await fetch(`${small.url}/v1/collections/limits/docs/${ok}`)).status, 200);
    assert.equal((await fetch(`${small.url}/v1/collections/limits/docs/${big}`)).status, 404);
    await until(() => db.status.rejected.length === 1, "the refusal in status");
    assert.equal(db.status.pending, 1);
    assert.equal(db.status.rejected[0].id, big);
    assert.equal(db.status.rejected[0].error.code, "too_large");
    assert.equal(db.status.error.code, "too_large");
    // It is still there, and still refused, after a reopen.
    db.close();
    const again = await open({ url: small.url, name, live: false, ...fast });
    try {
      await until(() => again.status.rejected.length === 1, "the refusal after reopen");
      assert.equal(again.status.pending, 1);
      assert.deepEqual((await again.collection("limits").get(big)).v.length, 20_000);
      // The local change is still usable; shrinking the record does not
      // help (its history keeps the big change), so it stays refused.
      await assert.rejects(again.sync(), (e) => e.code === "too_large");
    } finally {
      again.close();
    }
  } finally {
    db.close();
    await small.stop();
  }
});

test("a request over the body limit is split until only the culprit is refused", async () => {
  const tight = await startServer({ args: ["--max-body-bytes", "16KiB"] });
  const sizes = [];
  const watching = (url, init) => {
    if (String(url).endsWith("/v1/sync")) sizes.push(syncDocs(init).length);
    return fetch(url, init);
  };
  const db = await open({ url: tight.url, name: dbName(), live: false, fetch: watching, ...fast });
  try {
    await until(() => db.status.lastSyncAt, "the first round");
    sizes.length = 0;
    const t = db.collection("split");
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push(await t.create({ text: `${i}`.repeat(3000) }));
    const huge = await t.create({ text: "h".repeat(40_000) });
    await assert.rejects(db.sync(), (e) => e.code === "too_large" && e.id === huge);
    for (const id of ids) assert.equal((await fetch(`${tight.url}/v1/collections/split/docs/${id}`)).status, 200);
    // Some request carried several records and was halved down to one.
    assert.ok(sizes.some((n) => n >= 2) && sizes.filter((n) => n === 1).length >= 1, `requests: ${sizes}`);
    assert.equal(db.status.pending, 1);
  } finally {
    db.close();
    await tight.stop();
  }
});

test("401: a token function is asked again, a wrong fixed token is reported", async () => {
  const guarded = (url, init) => {
    const auth = new Headers(init.headers).get("Authorization");
    if (auth !== "Bearer good") return Promise.resolve(errorAnswer(401, "unauthorized"));
    return fetch(url, init);
  };
  const tokens = ["stale", "good"];
  let asked = 0;
  const db = await open({
    url: srv.url,
    name: dbName(),
    fetch: guarded,
    live: false,
    token: async () => tokens[Math.min(asked++, 1)],
    ...fast,
  });
  try {
    await db.collection("auth").create({ v: 1 });
    await db.sync();
    assert.equal(db.status.pending, 0);
    assert.ok(asked >= 2);
  } finally {
    db.close();
  }
  const bad = await open({ url: srv.url, name: dbName(), fetch: guarded, live: false, token: "wrong", ...fast });
  try {
    await bad.collection("auth").create({ v: 1 });
    await assert.rejects(bad.sync(), (e) => e instanceof UnauthorizedError && e.status === 401);
    assert.equal(bad.status.error.code, "unauthorized");
    assert.equal(bad.status.pending, 1);
  } finally {
    bad.close();
  }
});

test("the event stream is parsed across chunk boundaries, CRLF and comments", async () => {
  let controller;
  const enc = new TextEncoder();
  const streams = [];
  const withEvents = (url, init) => {
    if (String(url).includes("/v1/events")) {
      assert.equal(new Headers(init.headers).get("Authorization"), "Bearer t0k");
      const body = new ReadableStream({
        start(c) {
          controller = c;
        },
      });
      streams.push(body);
      return Promise.resolve(new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } }));
    }
    return fetch(url, init);
  };
  const a = await open({ url: srv.url, name: dbName("a"), live: false, ...fast });
  const b = await open({ url: srv.url, name: dbName("b"), fetch: withEvents, token: "t0k", feedIntervalMs: 3_600_000, ...fast });
  try {
    const tb = b.collection("sse");
    await until(() => controller && b.status.lastSyncAt, "b's stream and first round");
    const id = await a.collection("sse").create({ hello: "world" });
    await a.sync();
    const heads = await a.collection("sse").heads(id);
    const data = JSON.stringify({ collection: "sse", id, heads });
    const text = `: subscribed\r\n\r\nevent: ping-unknown\r\ndata: ignored\r\n\r\nevent: change\r\ndata: ${data}\r\n\r\n`;
    // Bytes in awkward pieces: mid-line, and between \r and \n.
    const bytes = enc.encode(text);
    const crlf = text.indexOf("\r\n\r\nevent: change");
    let from = 0;
    for (const cut of [3, 17, crlf + 1, crlf + 3, crlf + 30, bytes.length]) {
      controller.enqueue(bytes.slice(from, cut));
      from = cut;
      await new Promise((r) => setTimeout(r, 5));
    }
    await until(async () => (await tb.get(id))?.hello === "world", "b to pull the announced record", 10_000);
  } finally {
    a.close();
    b.close();
  }
});

// refusing wraps fetch so that the server "refuses" one record with `code`:
// that doc is taken out of the request, and its answer entry is the error.
function refusing(victim, code) {
  const seen = [];
  const f = async (url, init) => {
    if (!String(url).endsWith("/v1/sync")) return fetch(url, init);
    const docs = syncDocs(init);
    const at = docs.findIndex((d) => d.id === victim());
    if (at < 0) return fetch(url, init);
    seen.push(docs[at]);
    const rest = docs.filter((_, n) => n !== at);
    let answers = [];
    if (rest.length > 0) {
      // A plain body now: drop the gzip the library may have used.
      const headers = new Headers(init.headers);
      headers.delete("Content-Encoding");
      const res = await fetch(url, { ...init, headers, body: JSON.stringify({ docs: rest }) });
      if (!res.ok) return res;
      answers = (await res.json()).docs;
    }
    answers.splice(at, 0, { collection: docs[at].collection, id: docs[at].id, heads: [], error: { code, message: `no ${code}` } });
    return new Response(JSON.stringify({ docs: answers }), { status: 200, headers: { "Content-Type": "application/json" } });
  };
  return { fetch: f, seen };
}

for (const [code, cls] of [
  ["forbidden", "ForbiddenError"],
  ["invalid_change", "InvalidChangeError"],
  ["too_large", "TooLargeError"],
]) {
  test(`a per-record ${code} is a typed error; the rest of the batch goes through`, async () => {
    let victim;
    const r = refusing(() => victim, code);
    const db = await open({ url: srv.url, name: dbName(), fetch: r.fetch, live: false, ...fast });
    try {
      const t = db.collection("refused");
      const good = await t.create({ ok: true });
      victim = await t.create({ ok: false });
      const err = await db.sync().then(
        () => assert.fail("sync resolved"),
        (e) => e,
      );
      assert.ok(err instanceof lib[cls], `${err}`);
      assert.equal(err.code, code);
      assert.equal(err.id, victim);
      assert.equal((await fetch(`${srv.url}/v1/collections/refused/docs/${good}`)).status, 200);
      await until(() => db.status.rejected.length === 1 && db.status.pending === 1, "the refusal in status");
      // Background rounds only pull the refused record: they do not resend it.
      const before = r.seen.length;
      await t.change(good, (d) => {
        d.ok = "still";
      });
      await until(() => db.status.pending === 1 && r.seen.length > before, "a background round");
      assert.equal(r.seen.at(-1).changes, undefined, "background round resent a refused record");
      assert.equal(db.status.rejected[0].error.code, code);
    } finally {
      db.close();
    }
  });
}
