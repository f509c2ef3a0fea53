// The dynamerge demo: a shared list whose items have a title, a done flag and
// notes, edited by several people at once, online or off; deleted items wait
// in "Recently deleted" for an undo. Everything it knows of dynamerge comes
// through the public API of /dynamerge.js.
import * as dynamerge from "/dynamerge.js";

/** The collection the demo's items live in. */
const COLLECTION = "todos";
/** The IndexedDB database of the demo, apart from other apps of the origin. */
const DB_NAME = "dynamerge-demo";
/**
 * The "Work offline" switch is shared by every tab of this browser through
 * localStorage: only one tab talks to the server (the library elects it), so
 * a switch that stopped only the tab it was clicked in would stop nothing
 * when another tab is the one syncing.
 */
const OFFLINE_KEY = "dynamerge-demo:offline";

const $ = (id) => document.getElementById(id);
const ui = {
  list: $("items"),
  empty: $("empty"),
  count: $("count"),
  add: $("add"),
  newText: $("new-text"),
  offline: $("offline"),
  dot: $("status-dot"),
  statusText: $("status-text"),
  pending: $("pending"),
  lastSync: $("last-sync"),
  role: $("role"),
  error: $("error"),
  template: $("item-template"),
  trash: $("trash"),
  deleted: $("deleted"),
  deletedTemplate: $("deleted-template"),
};

// ---- offline switch --------------------------------------------------------

let offline = localStorage.getItem(OFFLINE_KEY) === "1";

/**
 * network stops and restarts the library's traffic for the offline switch.
 * It uses the library's own switch (db.setOffline) when it has one;
 * otherwise it goes through the `fetch` option: while offline every request
 * fails as a network error would, and going offline aborts the requests in
 * flight, the live event stream included, so nothing reaches the server.
 */
const network = {
  /** Controllers of requests that may still be moving bytes. */
  live: new Set(),
  fetch(input, init = {}) {
    if (offline) {
      return Promise.reject(new TypeError("offline: the demo's switch is on"));
    }
    const ctl = new AbortController();
    const signal = init.signal ? AbortSignal.any([init.signal, ctl.signal]) : ctl.signal;
    network.live.add(ctl);
    return fetch(input, { ...init, signal }).then(
      (resp) => {
        // A plain answer is read to its end right away; only a stream
        // (the live events) stays open and must stay abortable.
        if (!(resp.headers.get("Content-Type") || "").startsWith("text/event-stream")) {
          network.live.delete(ctl);
        }
        return resp;
      },
      (err) => {
        network.live.delete(ctl);
        throw err;
      },
    );
  },
  cut() {
    for (const ctl of network.live) ctl.abort(new DOMException("offline: the demo's switch is on", "AbortError"));
    network.live.clear();
  },
};

async function setOffline(on, db) {
  const was = offline;
  offline = on;
  ui.offline.checked = on;
  document.body.classList.toggle("offline", on);
  if (typeof db.setOffline === "function") {
    await db.setOffline(on);
  } else if (on) {
    network.cut();
  } else if (was) {
    // Back online: the library takes the window's "online" event as its
    // hint to retry now (push, catch up through the feed, reconnect the
    // live stream) rather than at the next retry, which may be up to its
    // longest back-off away.
    window.dispatchEvent(new Event("online"));
  }
  renderStatus(db.status);
}

// ---- text editing ----------------------------------------------------------

/**
 * diff returns the one splice that turns before into after: where it starts,
 * how many characters it removes and what it inserts. An input event is one
 * such splice (typing, deleting, pasting over a selection).
 */
function diff(before, after) {
  let start = 0;
  const max = Math.min(before.length, after.length);
  while (start < max && before[start] === after[start]) start++;
  let endB = before.length;
  let endA = after.length;
  while (endB > start && endA > start && before[endB - 1] === after[endA - 1]) {
    endB--;
    endA--;
  }
  return { start, remove: endB - start, insert: after.slice(start, endA) };
}

/**
 * editText records the user's edit of a text field as an Automerge text
 * splice, not as a new string: two people typing in the same item then
 * both keep their characters, where assigning the string would keep only
 * the last writer's.
 */
function editText(doc, field, before, after) {
  const current = typeof doc[field] === "string" ? doc[field] : "";
  if (typeof dynamerge.updateText === "function" && current === before) {
    dynamerge.updateText(doc, [field], after);
    return;
  }
  if (typeof dynamerge.splice === "function") {
    // The document moved on (a remote edit arrived after the field was
    // last drawn): apply the user's own splice where it was made, clamped
    // to the current text, so that nobody else's characters are replaced.
    const d = diff(before, after);
    const start = Math.min(d.start, current.length);
    const remove = Math.min(d.remove, current.length - start);
    dynamerge.splice(doc, [field], start, remove, d.insert);
    return;
  }
  if (typeof dynamerge.updateText === "function") {
    dynamerge.updateText(doc, [field], after);
    return;
  }
  throw new Error("dynamerge.js exports neither updateText nor splice: text cannot be merged character-wise");
}

/**
 * setField shows value in a field the user may be typing in, keeping the
 * caret where it was relative to the text around it.
 */
function setField(el, value) {
  if (el.value === value) return;
  if (document.activeElement !== el) {
    el.value = value;
    el.dataset.last = value;
    return;
  }
  const d = diff(el.value, value);
  const shift = (pos) => {
    if (pos <= d.start) return pos;
    if (pos >= d.start + d.remove) return pos + d.insert.length - d.remove;
    return d.start + d.insert.length;
  };
  const s = shift(el.selectionStart);
  const e = shift(el.selectionEnd);
  el.value = value;
  el.dataset.last = value;
  el.setSelectionRange(s, e);
}

// ---- rendering -------------------------------------------------------------

/** rows maps a record id to its list element and fields. */
const rows = new Map();

function byCreation(a, b) {
  const ta = typeof a.doc.createdAt === "number" ? a.doc.createdAt : 0;
  const tb = typeof b.doc.createdAt === "number" ? b.doc.createdAt : 0;
  return ta - tb || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * queues serialises each record's changes: a change function computes its
 * splice against the text the previous one left, so they must apply in the
 * order the user typed.
 */
const queues = new Map();

function enqueue(id, task) {
  const next = (queues.get(id) ?? Promise.resolve()).then(task);
  const tail = next.catch(() => {});
  queues.set(id, tail);
  tail.then(() => {
    if (queues.get(id) === tail) queues.delete(id);
  });
  return next;
}

function makeRow(id, todos) {
  const li = ui.template.content.firstElementChild.cloneNode(true);
  li.dataset.id = id;
  const row = {
    li,
    done: li.querySelector(".done"),
    title: li.querySelector(".title"),
    notes: li.querySelector(".notes"),
    // Local edits of the row not yet applied: while there are any, a
    // render would show the document without the user's latest keys, so
    // the fields keep what the user typed until the queue drains.
    inflight: 0,
  };
  const edit = (fn) => {
    row.inflight++;
    report(
      enqueue(id, () => todos.change(id, fn)).finally(async () => {
        if (--row.inflight > 0) return;
        // Show what arrived from others meanwhile.
        const doc = await todos.get(id);
        if (doc && row.inflight === 0) fill(row, doc);
      }),
    );
  };
  row.done.addEventListener("change", () => {
    const done = row.done.checked;
    li.classList.toggle("is-done", done);
    edit((doc) => { doc.done = done; });
  });
  li.querySelector(".delete").addEventListener("click", () => {
    report(enqueue(id, () => todos.delete(id)));
  });
  for (const field of ["title", "notes"]) {
    const el = row[field];
    el.dataset.last = "";
    el.addEventListener("input", () => {
      const before = el.dataset.last;
      const after = el.value;
      el.dataset.last = after;
      edit((doc) => editText(doc, field, before, after));
    });
  }
  rows.set(id, row);
  return row;
}

/** fill shows doc in row's fields. */
function fill(row, doc) {
  setField(row.title, typeof doc.title === "string" ? doc.title : "");
  setField(row.notes, typeof doc.notes === "string" ? doc.notes : "");
  row.done.checked = doc.done === true;
  row.li.classList.toggle("is-done", doc.done === true);
}

function render(all, todos) {
  // The library hands out frozen arrays: sort a copy.
  const entries = [...all].sort(byCreation);
  const seen = new Set();
  let prev = null;
  for (const { id, doc } of entries) {
    seen.add(id);
    const row = rows.get(id) ?? makeRow(id, todos);
    if (row.inflight === 0) fill(row, doc);
    // Keep DOM order without re-inserting rows already in place, which
    // would blur a field the user is typing in.
    const want = prev ? prev.nextElementSibling : ui.list.firstElementChild;
    if (want !== row.li) ui.list.insertBefore(row.li, want);
    prev = row.li;
  }
  for (const [id, row] of rows) {
    if (!seen.has(id)) {
      row.li.remove();
      rows.delete(id);
    }
  }
  ui.empty.hidden = entries.length > 0;
  const open = entries.filter((e) => e.doc.done !== true).length;
  ui.count.textContent = entries.length ? `${plural(entries.length, "item")}, ${open} open` : "";
}

/** renderDeleted shows the deleted items, most recently created first, each with an undo. */
function renderDeleted(entries, todos) {
  const sorted = [...entries].sort(byCreation).reverse();
  ui.deleted.replaceChildren(
    ...sorted.map(({ id, doc }) => {
      const li = ui.deletedTemplate.content.firstElementChild.cloneNode(true);
      li.dataset.id = id;
      li.querySelector(".deleted-title").textContent = typeof doc.title === "string" && doc.title ? doc.title : "(untitled)";
      li.querySelector(".undo").addEventListener("click", () => report(enqueue(id, () => todos.undelete(id))));
      return li;
    }),
  );
  ui.trash.hidden = sorted.length === 0;
}

function renderStatus(s) {
  if (!s) return;
  let state;
  if (offline) state = "offline";
  else if (s.syncing) state = "syncing";
  else if (s.online) state = "online";
  else state = "disconnected";
  ui.dot.dataset.state = state;
  ui.statusText.textContent = {
    offline: "Offline (switch on)",
    syncing: "Syncing…",
    online: "Online",
    disconnected: "Reconnecting…",
  }[state];
  document.body.dataset.sync = state;
  ui.pending.textContent = String(s.pending);
  if (s.lastSyncAt) {
    const t = new Date(s.lastSyncAt);
    ui.lastSync.dateTime = t.toISOString();
    ui.lastSync.textContent = t.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
    ui.lastSync.title = t.toLocaleString();
  }
  ui.role.textContent = s.leader === false ? "another tab syncs" : "this tab syncs";
  showError(offline ? null : s.error, s.rejected);
}

/** plural says "1 item", "2 items". */
function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * userMessage says what an error means for the person using the list, or
 * null when the status bar says it already (the server cannot be reached:
 * "Reconnecting…"). The library's own message, written for developers, goes
 * to the console and the line's tooltip.
 */
function userMessage(err, rejected = []) {
  switch (err.code) {
    case "network":
      return null;
    case "unavailable":
    case "rate_limited":
      return "The server is busy. Your changes are saved here and will sync shortly.";
    case "unauthorized":
      return "The server did not accept this browser's sign-in. Your changes are saved here.";
    case "forbidden":
      return "You may not change this list. Your changes are saved here only.";
    case "too_large":
      return "An item is too large to sync. Shorten it; it is saved here meanwhile.";
    case "gone": {
      const lost = rejected.find((r) => r.error === err)?.unsent ?? 0;
      return lost
        ? `An item deleted on another device was removed for good, and ${plural(lost, "unsynced edit")} to it with it.`
        : "An item deleted on another device was removed for good.";
    }
    case "deleted":
      return "That item was deleted meanwhile.";
    case "not_found":
      return "That item no longer exists.";
    case "closed":
      return "The list was closed. Reload the page to continue.";
    case "invalid_argument":
      return "That could not be saved.";
    default:
      return "The server could not take a change. It is saved here, and sync will try again.";
  }
}

/** showError shows one user-worded line for err (nothing for null). */
function showError(err, rejected) {
  const msg = err ? userMessage(err, rejected) : null;
  ui.error.hidden = !msg;
  ui.error.textContent = msg ?? "";
  ui.error.title = msg ? `${err.code ?? "error"}: ${err.message}` : "";
}

function report(p) {
  p.catch((err) => {
    showError(err, []);
    console.error(err);
  });
}

// ---- start -----------------------------------------------------------------

async function main() {
  performance.mark("demo:start");
  const db = await dynamerge.open({ name: DB_NAME, fetch: network.fetch });
  performance.mark("demo:open");
  const todos = db.collection(COLLECTION);
  // Exposed for the browser tests and for poking at from the console.
  window.demo = { db, todos, dynamerge };

  db.onStatus(renderStatus);
  renderStatus(db.status);
  ui.offline.checked = offline;
  await setOffline(offline, db);

  render(await todos.list(), todos);
  renderDeleted(await todos.deleted(), todos);
  ui.list.dataset.ready = "true";
  performance.mark("demo:rendered");
  todos.subscribe((entries) => {
    render(entries, todos);
    // The callback comes after every change, deletes and undeletes too.
    report(todos.deleted().then((d) => renderDeleted(d, todos)));
  });

  ui.offline.addEventListener("change", () => {
    localStorage.setItem(OFFLINE_KEY, ui.offline.checked ? "1" : "0");
    report(setOffline(ui.offline.checked, db));
  });
  // Another tab flipped the switch: follow it (see OFFLINE_KEY).
  window.addEventListener("storage", (e) => {
    if (e.key === OFFLINE_KEY) report(setOffline(e.newValue === "1", db));
  });
  ui.add.addEventListener("submit", (e) => {
    e.preventDefault();
    const title = ui.newText.value.trim();
    if (!title) return;
    ui.newText.value = "";
    report(todos.create({ title, done: false, notes: "", createdAt: Date.now() }));
  });
}

main().catch((err) => {
  ui.statusText.textContent = "Could not open";
  ui.error.hidden = false;
  ui.error.textContent = "This browser could not open the list's local storage (a private window may not allow it).";
  ui.error.title = String(err && err.message ? err.message : err);
  console.error(err);
});
