// The signed-in user's session list, live: one fetch, then den's list stream
// (`/api/sessions/stream`, server-sent events of SessionListUpdate) keeps it current in every
// tab. Changes made in this tab are applied at once too, so the list never lags an action.
import { useEffect, useSyncExternalStore } from "react";
import { api } from "./api";
import type { Session, SessionListUpdate } from "./types";

type State = { sessions: Session[]; loaded: boolean; error: string | null };
let state: State = { sessions: [], loaded: false, error: null };
const listeners = new Set<() => void>();
const set = (next: State) => {
  state = next;
  listeners.forEach((f) => f());
};

const byActivity = (a: Session, b: Session) => b.lastActivityAt.localeCompare(a.lastActivityAt);

export function upsert(session: Session) {
  const rest = state.sessions.filter((s) => s.id !== session.id);
  set({ ...state, sessions: [session, ...rest].sort(byActivity) });
}

export function removed(id: string) {
  set({ ...state, sessions: state.sessions.filter((s) => s.id !== id) });
}

export async function refresh() {
  try {
    const page = await api.sessions();
    set({ sessions: page.sessions.sort(byActivity), loaded: true, error: null });
  } catch (e) {
    set({ ...state, loaded: true, error: (e as Error).message });
  }
}

let users = 0;
let source: EventSource | null = null;

function connect() {
  source = new EventSource("/api/sessions/stream");
  // After every (re)connect, fetch the list: updates sent while disconnected are not replayed.
  source.onopen = () => void refresh();
  const onUpdate = (m: MessageEvent) => {
    const update = JSON.parse(m.data as string) as SessionListUpdate;
    if (update.type === "upsert") upsert(update.session);
    else if (update.type === "removed") removed(update.id);
  };
  source.addEventListener("session", onUpdate);
  // The server dropped changes for this slow client: fetch the whole list again.
  source.addEventListener("resync", () => void refresh());
}

/** The live list; the stream stays open while any component uses it. */
export function useSessions(): State {
  useEffect(() => {
    if (users++ === 0) {
      void refresh();
      connect();
    }
    return () => {
      if (--users === 0) {
        source?.close();
        source = null;
      }
    };
  }, []);
  return useSyncExternalStore(
    (f) => {
      listeners.add(f);
      return () => listeners.delete(f);
    },
    () => state,
  );
}

/** Forget everything (on sign-out). */
export const reset = () => set({ sessions: [], loaded: false, error: null });

// Sessions created in this tab with a first prompt: their page shows the agent at work from the
// start (the prompt waits for the sandbox; den sends no turn event until it runs).
export const createdWithPrompt = new Set<string>();

// Which sessions' agents are at work, as far as this tab knows (the session list carries the
// sandbox's state, not the agent's: a session page open in this tab reports its own).
let working: ReadonlySet<string> = new Set();
const workingListeners = new Set<() => void>();

/** A session page says whether its agent is at work (the sidebar's dot pulses for it). */
export function setWorking(id: string, on: boolean) {
  if (working.has(id) === on) return;
  const next = new Set(working);
  if (on) next.add(id);
  else next.delete(id);
  working = next;
  workingListeners.forEach((f) => f());
}

export function useWorking(): ReadonlySet<string> {
  return useSyncExternalStore(
    (f) => {
      workingListeners.add(f);
      return () => workingListeners.delete(f);
    },
    () => working,
  );
}

// Which sessions' agents wait for the person (a question or a permission ask), as far as this
// tab knows: reported by a session page open in this tab, like `working`.
let waiting: ReadonlySet<string> = new Set();
const waitingListeners = new Set<() => void>();

export function setWaiting(id: string, on: boolean) {
  if (waiting.has(id) === on) return;
  const next = new Set(waiting);
  if (on) next.add(id);
  else next.delete(id);
  waiting = next;
  waitingListeners.forEach((f) => f());
}

export function useWaiting(): ReadonlySet<string> {
  return useSyncExternalStore(
    (f) => {
      waitingListeners.add(f);
      return () => waitingListeners.delete(f);
    },
    () => waiting,
  );
}
