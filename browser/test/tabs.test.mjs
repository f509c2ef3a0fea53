// Several tabs of one app on one IndexedDB database: one syncs (the Web
// Lock holder), the others see every change at once (BroadcastChannel),
// nobody clobbers anybody.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { lib, Locks, dbName, fast, startServer, until } from "./helpers.mjs";

const { open } = lib;
let srv;
before(async () => {
  srv = await startServer();
});
after(async () => {
  await srv?.stop();
});

test("one tab syncs, the others see every change at once, and take over when it closes", async () => {
  const locks = new Locks();
  const name = dbName("tabs");
  const syncs = { one: 0, two: 0 };
  const counted = (tab) => (url, init) => {
    if (String(url).endsWith("/v1/sync")) syncs[tab]++;
    return fetch(url, init);
  };
  const one = await open({ url: srv.url, name, locks, fetch: counted("one"), ...fast });
  const two = await open({ url: srv.url, name, locks, fetch: counted("two"), ...fast });
  let three;
  try {
    await until(() => one.status.leader, "tab one to lead");
    assert.equal(two.status.leader, false);
    const c1 = one.collection("shared");
    const c2 = two.collection("shared");
    let seen1 = [];
    c1.subscribe((all) => (seen1 = all));
    // A change in the follower reaches the leader's view and the server.
    const id = await c2.create({ n: 0, by: [] });
    await until(() => seen1.length === 1, "tab one to see tab two's record");
    await two.sync(); // answered by tab one
    assert.equal(syncs.two, 0, "the follower never talks to the server");
    assert.ok(syncs.one > 0);
    assert.equal((await fetch(`${srv.url}/v1/collections/shared/docs/${id}`)).status, 200);
    await until(() => two.status.pending === 0 && two.status.online, "tab two's status to follow");

    // Both tabs write the same record at once: nothing is clobbered.
    await Promise.all(
      Array.from({ length: 10 }, (_, k) =>
        (k % 2 ? c1 : c2).change(id, (d) => {
          d.n += 1;
          d.by.push(k);
        }),
      ),
    );
    const want = { n: 10, by: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] };
    const got = await c1.get(id);
    assert.equal(got.n, 10);
    assert.deepEqual([...got.by].sort((x, y) => x - y), want.by);
    await until(async () => JSON.stringify(await c2.get(id)) === JSON.stringify(got), "tab two to agree");
    await two.sync();
    const server = await (await fetch(`${srv.url}/v1/collections/shared/docs/${id}`)).json();
    assert.deepEqual(server.doc, got);

    // The leader closes: tab two takes over and syncs on its own.
    one.close();
    await until(() => two.status.leader, "tab two to take over");
    const before = syncs.two;
    await c2.change(id, (d) => {
      d.n = 100;
    });
    await two.sync();
    assert.ok(syncs.two > before);
    three = await open({ url: srv.url, name, locks, ...fast });
    assert.equal((await three.collection("shared").get(id)).n, 100);
    assert.equal(three.status.leader, false);
  } finally {
    one.close();
    two.close();
    three?.close();
  }
});
