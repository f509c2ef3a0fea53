/**
 * The provider: opens one database for a React tree and closes it when the
 * tree unmounts. Opening happens in an effect, never during render, so the
 * tree renders on a server (renderToString) without touching IndexedDB.
 */
import { createContext, createElement, useContext, useEffect, useRef, useState } from "react";
import type { ReactNode } from "react";
import { open } from "../index.js";
import type { Database, OpenOptions } from "../index.js";

/** ProviderState is what the provider shares with the hooks below it. */
interface ProviderState {
  /** db is the open database, or null while it opens (and always on a server). */
  db: Database | null;
  /** error is why `open` failed, or null. */
  error: unknown;
}

// undefined outside any provider: the hooks say so instead of waiting forever.
const DatabaseContext = createContext<ProviderState | undefined>(undefined);

/** DynamergeProviderProps configures {@link DynamergeProvider}. */
export interface DynamergeProviderProps {
  /**
   * options are passed to `open`. They are read when the provider mounts:
   * to open another database, give the provider another React `key`.
   * Defaults to `open()`'s defaults.
   */
  options?: OpenOptions;
  /**
   * open replaces the library's `open` (tests pass one that opens with
   * fake-indexeddb). Defaults to dynamerge's `open`.
   */
  open?: (options: OpenOptions) => Promise<Database>;
  children?: ReactNode;
}

/**
 * DynamergeProvider opens the database once mounted, gives it to the hooks
 * of its subtree, and closes it on unmount. Until the database is open (and
 * on a server, where it never opens) the hooks report loading.
 */
export function DynamergeProvider(props: DynamergeProviderProps): ReactNode {
  const [state, setState] = useState<ProviderState>(initialState);
  // Read once per mount (see options above): an inline options object must
  // not reopen the database on every render.
  const opening = useRef({ options: props.options, open: props.open });
  useEffect(() => {
    let cancelled = false;
    let db: Database | null = null;
    const { options = {}, open: openFn = open } = opening.current;
    openFn(options).then(
      (opened) => {
        // Unmounted while opening (React's Strict Mode mounts twice):
        // nobody will close it but us.
        if (cancelled) {
          opened.close();
          return;
        }
        db = opened;
        setState({ db, error: null });
      },
      (error: unknown) => {
        if (!cancelled) setState({ db: null, error });
      },
    );
    return () => {
      cancelled = true;
      db?.close();
      setState(initialState);
    };
  }, []);
  return createElement(DatabaseContext.Provider, { value: state }, props.children);
}

const initialState: ProviderState = { db: null, error: null };

/**
 * useProviderState returns the nearest provider's state, and throws when
 * there is none (a hook outside the provider would otherwise wait forever).
 */
export function useProviderState(hook: string): ProviderState {
  const state = useContext(DatabaseContext);
  if (state === undefined) {
    throw new Error(`dynamerge/react: ${hook} must be called inside <DynamergeProvider>`);
  }
  return state;
}

/**
 * useDatabase returns the open database, or null while it opens, after
 * `open` failed (see {@link useOpenError}), and during server rendering.
 */
export function useDatabase(): Database | null {
  return useProviderState("useDatabase").db;
}

/** useOpenError returns why the provider's `open` failed, or null. */
export function useOpenError(): unknown {
  return useProviderState("useOpenError").error;
}
