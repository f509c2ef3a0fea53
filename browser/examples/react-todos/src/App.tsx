/**
 * A todo list on dynamerge/react. The provider opens the database; the list
 * reads the collection's ids and renders one memoised row per record, and
 * each row reads its own record: a change to one todo (here, in another tab
 * or another browser) re-renders that row and the list, not the other rows.
 *
 * The server is the page's origin, or `?server=<url>` (the server must then
 * allow this origin: `dynamerge --cors-origins <origin>`).
 */
import { memo, useEffect, useState } from "react";
import type { FormEvent } from "react";
import { updateText } from "dynamerge";
import type { OpenOptions } from "dynamerge";
import { DynamergeProvider, useCollection, useDatabase, useHistory, useOpenError, useRecord, useStatus } from "dynamerge/react";
import { gatedFetch, isOffline, setOffline } from "./network";
import { countRender } from "./renders";

/** Todo is a record of the "todos" collection (a type alias: records are JSON objects). */
type Todo = { title: string; done: boolean };

const params = new URLSearchParams(location.search);
const options: OpenOptions = {
  url: params.get("server") ?? location.origin,
  name: params.get("db") ?? "react-todos",
  fetch: gatedFetch,
};

export function App() {
  return (
    <DynamergeProvider options={options}>
      <header>
        <h1>Todos</h1>
        <StatusBar />
      </header>
      <NewTodo />
      <TodoList />
      <Details />
    </DynamergeProvider>
  );
}

function StatusBar() {
  countRender("status");
  const status = useStatus();
  const error = useOpenError();
  const [offline, setOfflineState] = useState(isOffline());
  let text = "opening";
  if (error) text = `cannot open: ${String(error)}`;
  else if (offline) text = "offline";
  else if (status) text = status.syncing ? "syncing" : status.online ? "online" : "unreachable";
  return (
    <p className="status">
      <span data-testid="status">{text}</span>
      {status && <span data-testid="pending"> · {status.pending} unsent</span>}
      <label>
        <input
          type="checkbox"
          data-testid="offline"
          checked={offline}
          onChange={(e) => {
            setOffline(e.target.checked);
            setOfflineState(e.target.checked);
          }}
        />
        Work offline
      </label>
    </p>
  );
}

function NewTodo() {
  const db = useDatabase();
  const [title, setTitle] = useState("");
  const add = (e: FormEvent) => {
    e.preventDefault();
    if (!db || !title.trim()) return;
    void db.collection<Todo>("todos").create({ title: title.trim(), done: false });
    setTitle("");
  };
  return (
    <form onSubmit={add}>
      <input data-testid="new-title" value={title} placeholder="What needs doing?" onChange={(e) => setTitle(e.target.value)} />
      <button type="submit" disabled={!db}>
        Add
      </button>
    </form>
  );
}

function TodoList() {
  countRender("list");
  const todos = useCollection<Todo>("todos");
  if (!todos) return <p data-testid="list-loading">Loading…</p>;
  if (todos.length === 0) return <p data-testid="empty">Nothing to do.</p>;
  return (
    <ul data-testid="list">
      {todos.map((t) => (
        <TodoRow key={t.id} id={t.id} />
      ))}
    </ul>
  );
}

// memo: the list re-renders when any todo changes, a row only when its own
// record does (through useRecord).
const TodoRow = memo(function TodoRow({ id }: { id: string }) {
  countRender(`row:${id}`);
  const db = useDatabase();
  const rec = useRecord<Todo>("todos", id);
  // What is typed shows at once; the record catches up when the change is
  // stored (and carries others' edits after focus leaves).
  const [draft, setDraft] = useState<string | null>(null);
  if (rec.status !== "ready" || !db) return <li data-id={id}>{rec.status}</li>;
  const todos = db.collection<Todo>("todos");
  return (
    <li data-testid="row" data-id={id} className={rec.doc.done ? "done" : ""}>
      <input
        type="checkbox"
        aria-label="done"
        checked={rec.doc.done}
        onChange={(e) => void todos.change(id, (d) => void (d.done = e.target.checked))}
      />
      <input
        className="title"
        aria-label="title"
        value={draft ?? rec.doc.title}
        onChange={(e) => {
          const value = e.target.value;
          setDraft(value);
          // updateText merges concurrent edits of the text character-wise.
          void todos.change(id, (d) => updateText(d, ["title"], value));
        }}
        onBlur={() => setDraft(null)}
      />
      <a href={`#${id}`}>details</a>
      <button type="button" onClick={() => void todos.delete(id)}>
        Delete
      </button>
    </li>
  );
});

function useHash(): string {
  const [hash, setHash] = useState(() => location.hash.slice(1));
  useEffect(() => {
    const onHash = () => setHash(location.hash.slice(1));
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);
  return hash;
}

function Details() {
  const id = useHash();
  if (!id) return null;
  return <RecordDetails id={id} />;
}

function RecordDetails({ id }: { id: string }) {
  const rec = useRecord<Todo>("todos", id);
  const history = useHistory("todos", id, { limit: 20 });
  return (
    <section data-testid="details">
      <h2>
        {id}: <span data-testid="details-status">{rec.status}</span>
      </h2>
      {rec.status === "ready" && <p data-testid="details-title">{rec.doc.title}</p>}
      {rec.status === "error" && <p>{String(rec.error)}</p>}
      <h3>History</h3>
      {history.status === "ready" ? (
        <ol data-testid="history">
          {history.changes.map((c) => (
            <li key={c.hash}>
              {c.at} {c.by ?? "anonymous"}: {c.ops} ops
            </li>
          ))}
        </ol>
      ) : (
        <p data-testid="history-status">{history.status}</p>
      )}
    </section>
  );
}
