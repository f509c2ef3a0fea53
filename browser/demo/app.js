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
  changeTemplate: $("change-template"),
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
    id,
    li,
    done: li.querySelector(".done"),
    title: li.querySelector(".title"),
    notes: li.querySelector(".notes"),
    conflicts: li.querySelector(".conflicts"),
    history: li.querySelector(".history"),
    historyToggle: li.querySelector(".history-toggle"),
    // The JSON last shown, to tell a real change from a repeated render.
    json: "",
    // The history panel: its entries, the cursor of the next older page,
    // and a counter that drops answers overtaken by a newer load.
    hist: { entries: [], cursor: "", more: false, local: false, load: 0 },
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
  row.historyToggle.addEventListener("click", () => {
    const open = row.history.hidden;
    row.history.hidden = !open;
    row.historyToggle.setAttribute("aria-expanded", String(open));
    li.classList.toggle("history-open", open);
    if (open) report(loadHistory(row, todos, false));
  });
  li.querySelector(".older").addEventListener("click", () => report(loadHistory(row, todos, true)));
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
    const json = JSON.stringify(doc);
    if (row.json !== json) {
      row.json = json;
      changed(row, todos);
    }
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
      clearTimeout(later.get(id));
      later.delete(id);
    }
  }
  ui.empty.hidden = entries.length > 0;
  const open = entries.filter((e) => e.doc.done !== true).length;
  ui.count.textContent = entries.length ? `${plural(entries.length, "item")}, ${open} open` : "";
}

// ---- history and conflicts -------------------------------------------------

/** HISTORY_PAGE is how many changes the history panel shows per page. */
const HISTORY_PAGE = 20;

/**
 * later runs each row's follow-ups (a conflict check, a history refresh)
 * once things settle: typing changes the record at every key, and the
 * first render would otherwise load every record's document at once.
 */
const later = new Map();

/** changed schedules what depends on a row's record after it changed. */
function changed(row, todos) {
  clearTimeout(later.get(row.id));
  later.set(
    row.id,
    setTimeout(() => {
      later.delete(row.id);
      if (!rows.has(row.id)) return;
      toCheck.add(row.id);
      report(runChecks(todos));
      if (!row.history.hidden) report(loadHistory(row, todos, false));
    }, 250),
  );
}

/** toCheck holds the items whose conflicts to look at, one at a time. */
const toCheck = new Set();
let checking = false;

async function runChecks(todos) {
  if (checking) return;
  checking = true;
  try {
    for (const id of toCheck) {
      toCheck.delete(id);
      const row = rows.get(id);
      if (row) await checkConflicts(row, todos);
    }
  } finally {
    checking = false;
  }
}

/**
 * loadHistory shows the newest page of the item's history (or appends the
 * next older one), each change described in words. Offline the library
 * answers from this browser's copy, without names.
 */
async function loadHistory(row, todos, older) {
  const h = row.hist;
  const load = ++h.load;
  const page = await todos.history(row.id, older ? { before: h.cursor, limit: HISTORY_PAGE } : { limit: HISTORY_PAGE });
  const items = [];
  for (const c of page.changes) items.push({ change: c, ...(await describeChange(todos, row.id, c)) });
  if (load !== h.load) return;
  h.entries = group(older ? [...h.entries, ...items] : items);
  h.cursor = page.cursor;
  h.more = page.more;
  h.local = page.local;
  renderHistory(row, todos);
}

function renderHistory(row, todos) {
  const h = row.hist;
  const note = row.history.querySelector(".history-note");
  note.textContent = h.local ? "The server cannot be reached: showing this browser's copy, without names." : "";
  note.hidden = !h.local;
  row.history.querySelector(".changes").replaceChildren(
    ...h.entries.map(({ change, what }, n) => {
      const li = ui.changeTemplate.content.firstElementChild.cloneNode(true);
      li.dataset.hash = change.hash;
      li.classList.toggle("pending", change.pending);
      li.querySelector(".what").textContent = what;
      li.querySelector(".who").textContent = whoOf(change, h.local);
      const when = whenOf(change);
      const t = li.querySelector(".when");
      t.textContent = when ? when.toLocaleString([], { month: "short", day: "numeric", hour: "numeric", minute: "2-digit", second: "2-digit" }) : "";
      if (when) t.dateTime = when.toISOString();
      const restore = li.querySelector(".restore");
      // The newest change is the state shown: nothing to restore.
      restore.hidden = n === 0;
      restore.title = "Make the item as it was right after this change (a new change: nothing is lost)";
      restore.addEventListener("click", () => report(enqueue(row.id, () => todos.restore(row.id, [change.hash]))));
      return li;
    }),
  );
  row.history.querySelector(".older").hidden = !h.more;
}

function whoOf(c, local) {
  if (c.by) return c.by;
  if (c.pending) return "you, not synced yet";
  return local ? "synced" : "anonymous";
}

function whenOf(c) {
  if (c.at) return new Date(c.at);
  return c.time ? new Date(c.time * 1000) : null;
}

/**
 * describeChange says what one change did, from the item right before and
 * right after it: `what` in words, and `typed` (field and count) when the
 * change only typed characters into one field, so that a burst of typing
 * shows as one line.
 */
async function describeChange(todos, id, c) {
  let before, after;
  try {
    [before, after] = [await todos.getAt(id, c.deps), await todos.getAt(id, [c.hash])];
  } catch {
    return { what: "a change this browser has not received yet", typed: null };
  }
  let what;
  let typed = null;
  if (before && !after) what = "deleted it";
  else if (!before && after) what = "brought it back";
  else if (!before && !after) what = "edited it while it was deleted";
  else if (c.deps.length === 0) what = `created ${quote(after.title ?? "")}`;
  else {
    const changes = fieldChanges(before, after);
    what = changes.map((x) => x.what).join(", ") || "changed nothing visible";
    if (changes.length === 1 && changes[0].typed) typed = changes[0].typed;
  }
  if (typeof c.message === "string" && c.message.startsWith("restore")) return { what: `restored an earlier version: ${what}`, typed: null };
  return { what, typed };
}

/** TYPING_GAP_S: typing into one field with pauses shorter than this is one line of history. */
const TYPING_GAP_S = 60;

/**
 * group folds runs of typing (one person, one field, newest first) into one
 * entry; its restore point is its newest change, the end of the typing.
 */
function group(entries) {
  const out = [];
  for (const e of entries) {
    const last = out[out.length - 1];
    if (
      last?.typed &&
      e.typed &&
      last.typed.field === e.typed.field &&
      last.change.actor === e.change.actor &&
      last.change.pending === e.change.pending &&
      last.change.by === e.change.by &&
      Math.abs(last.oldest.time - e.change.time) <= TYPING_GAP_S
    ) {
      const n = last.typed.n + e.typed.n;
      out[out.length - 1] = { ...last, typed: { field: e.typed.field, n }, what: `typed ${plural(n, "character")} in ${e.typed.field}`, oldest: e.oldest ?? e.change };
    } else {
      out.push({ ...e, oldest: e.oldest ?? e.change });
    }
  }
  return out;
}

/** FIELD_ORDER puts the demo's own fields first when a change touched several. */
const FIELD_ORDER = ["title", "notes", "done"];

function fieldChanges(before, after) {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])]
    .filter((k) => k !== "createdAt")
    .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1));
  const out = [];
  for (const k of keys) {
    const [b, a] = [before[k], after[k]];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    const say = (what, typed = null) => out.push({ what, typed });
    if (k === "done" && typeof a === "boolean") say(a ? "marked it done" : "marked it not done");
    else if (a === undefined) say(`removed ${k}`);
    else if (typeof a === "string" && typeof b === "string") {
      const d = diff(b, a);
      if (d.remove === 0) say(`typed ${plural(d.insert.length, "character")} in ${k}`, { field: k, n: d.insert.length });
      else if (d.insert === "") say(`deleted ${plural(d.remove, "character")} from ${k}`);
      else say(`changed ${k} to ${quote(a)}`);
    } else say(`set ${k} to ${typeof a === "string" ? quote(a) : JSON.stringify(a)}`);
  }
  return out;
}

function rank(k) {
  const n = FIELD_ORDER.indexOf(k);
  return n < 0 ? FIELD_ORDER.length : n;
}

function quote(s) {
  return `“${s.length > 40 ? `${s.slice(0, 39)}…` : s}”`;
}

/**
 * checkConflicts marks the fields of an item that concurrent edits left
 * with several values, and offers each value to keep. Values that are all
 * equal (both people ticked "done") are not worth a question.
 */
async function checkConflicts(row, todos) {
  const all = await todos.conflicts(row.id);
  const shown = all.filter((c) => new Set(c.values.map((v) => JSON.stringify(v.value))).size > 1);
  for (const f of FIELD_ORDER) row[f].classList.remove("conflicted");
  row.conflicts.replaceChildren(
    ...shown.map((c) => {
      const field = c.path.length === 1 ? row[c.path[0]] : undefined;
      field?.classList.add("conflicted");
      const div = document.createElement("div");
      div.className = "conflict";
      div.dataset.path = c.path.join(".");
      const label = document.createElement("span");
      const where = c.path.join(" › ");
      label.textContent = `${where[0].toUpperCase()}${where.slice(1)} was changed at the same time. Keep:`;
      div.append(
        label,
        ...c.values.map((v, n) => {
          const b = document.createElement("button");
          b.type = "button";
          b.className = "pick";
          b.textContent = `${valueWords(c.path, v.value)}${v.by ? ` (${v.by})` : ""}${n === 0 ? " · shown" : ""}`;
          b.addEventListener("click", () => report(enqueue(row.id, () => todos.resolve(row.id, c.path, v.value))));
          return b;
        }),
      );
      return div;
    }),
  );
  row.conflicts.hidden = shown.length === 0;
  row.li.classList.toggle("has-conflict", shown.length > 0);
}

function valueWords(path, v) {
  if (path.length === 1 && path[0] === "done" && typeof v === "boolean") return v ? "done" : "not done";
  return typeof v === "string" ? quote(v) : JSON.stringify(v);
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
