import { useEffect, useState } from "react";
import { ApiError, api } from "./api";
import { ChangesPanel } from "./ChangesPanel";
import { Composer } from "./Composer";
import { ConfirmDialog } from "./ConfirmDialog";
import { ModelPicker } from "./ModelPicker";
import { QueuedPrompts } from "./QueuedPrompts";
import { navigate } from "./router";
import { removed, upsert, useSessions } from "./sessions";
import { Transcript } from "./Transcript";
import type { PullRequest, Session } from "./types";
import { useSessionStream, type Connection } from "./useSessionStream";
import { shortRepo } from "./util";

const CONNECTION_LABEL: Record<Connection, string> = {
  connecting: "Connecting…",
  replaying: "Loading history…",
  live: "Live",
  reconnecting: "Reconnecting…",
  closed: "Offline",
};

export function SessionPage({ id }: { id: string }) {
  const [session, setSession] = useState<Session | null>(null);
  const [missing, setMissing] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  // The model the next prompt asks for (the session's own until the person picks another).
  const [nextModel, setNextModel] = useState<{ id: string; locked: boolean }>({ id: "", locked: false });
  const [draft, setDraft] = useState("");
  const [sending, setSending] = useState(false);
  const [renaming, setRenaming] = useState<string | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [showChanges, setShowChanges] = useState(false);
  const [pull, setPull] = useState<PullRequest | null>(null);
  const { sessions } = useSessions();
  const { transcript: t, connection } = useSessionStream(id, setNotice);

  useEffect(() => {
    api.session(id).then(setSession, (e: unknown) => {
      if (e instanceof ApiError && (e.status === 404 || e.status === 400)) setMissing(true);
      else setLoadError((e as Error).message);
    });
  }, [id]);

  // The pull request's state is GitHub's: read it now, when the tab comes back, and each minute.
  useEffect(() => {
    let current = true;
    const refresh = () =>
      api.pullRequest(id).then(
        (p) => current && setPull(p),
        // None yet (404), or no GitHub for this session (409): no link to show.
        () => current && setPull(null),
      );
    void refresh();
    const timer = setInterval(() => void refresh(), 60_000);
    window.addEventListener("focus", refresh);
    return () => {
      current = false;
      clearInterval(timer);
      window.removeEventListener("focus", refresh);
    };
  }, [id]);

  if (missing)
    return (
      <div className="empty">
        <h1>Session not found</h1>
        <p className="muted">It does not exist, was deleted, or belongs to someone else.</p>
        <button onClick={() => navigate("/")}>Go home</button>
      </div>
    );
  if (loadError)
    return (
      <div className="empty" role="alert">
        <h1>Could not load this session</h1>
        <p>{loadError}</p>
      </div>
    );
  if (!session) return <p className="empty muted" aria-busy="true">Loading session…</p>;

  // The freshest word on the session: its own events, else the live list, else what we loaded.
  const listed = sessions.find((s) => s.id === id);
  const status = t.status ?? listed?.status ?? session.status;
  const title = t.title ?? listed?.title ?? session.title;
  const running = t.turn !== null;

  /** Runs an action; a failure is shown as the notice. Whether it succeeded. */
  const act = async (f: () => Promise<unknown>) => {
    setNotice(null);
    try {
      await f();
      return true;
    } catch (e) {
      setNotice((e as Error).message);
      return false;
    }
  };
  const prompt = async (text: string) => {
    if (nextModel.locked) {
      setNotice("That model is locked: add its key in Settings → Providers, or pick another.");
      return;
    }
    setSending(true);
    const switching = nextModel.id && nextModel.id !== session.model ? nextModel.id : undefined;
    await act(async () => {
      await api.prompt(id, text, switching);
      setDraft("");
      if (switching) setSession({ ...session, model: switching });
    });
    setSending(false);
  };
  const rename = async (next: string) => {
    setRenaming(null);
    if (!next.trim() || next === title) return;
    await act(async () => {
      const s = await api.rename(id, next.trim());
      setSession(s);
      upsert(s);
    });
  };
  const del = async () => {
    setConfirmDelete(false);
    await act(async () => {
      await api.remove(id);
      removed(id);
      navigate("/", true);
    });
  };
  const lastPrompt = [...t.items].reverse().find((i) => i.kind === "user");
  // What den's gateway metered for this session: the sum of its turns' usage events.
  const metered = t.items.reduce(
    (sum, i) => (i.kind === "usage" ? { requests: sum.requests + i.usage.requests, cost: sum.cost + i.usage.costUsd } : sum),
    { requests: 0, cost: 0 },
  );
  const stop = () => void act(() => api.control(id, "abort"));

  return (
    <div className="session">
      <header className="session-head">
        <span className={`dot ${status}`} role="img" aria-label={`Status: ${status}`} title={status} />
        {renaming !== null ? (
          <input
            className="rename"
            aria-label="Session title"
            value={renaming}
            autoFocus
            onChange={(e) => setRenaming(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter") e.currentTarget.blur();
              if (e.key === "Escape") {
                // Cancel: the blur that follows must not save.
                e.currentTarget.dataset.cancelled = "1";
                setRenaming(null);
              }
            }}
            onBlur={(e) => void (e.currentTarget.dataset.cancelled ? setRenaming(null) : rename(renaming))}
          />
        ) : (
          <h1 className="session-title">{title}</h1>
        )}
        <span className="status-text">{status}</span>
        <span className="muted small repo" title={session.repository}>
          {shortRepo(session.repository)} · {session.workBranch} · {session.model}
        </span>
        {metered.requests > 0 && (
          <span className="muted small" aria-label="Session usage" title="Metered by den's gateway, title requests included">
            {metered.requests} model {metered.requests === 1 ? "request" : "requests"} · ${metered.cost.toFixed(4)}
          </span>
        )}
        {pull && (
          <a className={`pull ${pull.state}`} href={pull.url} target="_blank" rel="noreferrer" aria-label={`Pull request #${pull.number}: ${pull.state}`}>
            PR #{pull.number} · {pull.state}
            {pull.draft && pull.state === "open" ? " (draft)" : ""}
          </a>
        )}
        <span className={`conn ${connection}`} role="status" aria-label={`Connection: ${CONNECTION_LABEL[connection]}`}>
          {CONNECTION_LABEL[connection]}
        </span>
        <div className="actions">
          {running && (
            <button onClick={stop} className="danger">
              Stop
            </button>
          )}
          {/* A running turn would refuse the pause: offer it once the turn has ended. */}
          {status === "running" && !running && <button onClick={() => void act(() => api.control(id, "pause"))}>Pause</button>}
          {(status === "paused" || status === "error") && (
            <button onClick={() => void act(() => api.control(id, "resume"))}>Resume</button>
          )}
          <button onClick={() => setShowChanges(!showChanges)} aria-pressed={showChanges}>
            Changes{t.diff ? ` (${t.diff.files})` : ""}
          </button>
          <button onClick={() => setRenaming(title)}>Rename</button>
          <button onClick={() => setConfirmDelete(true)} className="danger-outline">
            Delete
          </button>
        </div>
      </header>
      {status === "error" && (t.error ?? session.error) && (
        <p className="banner error" role="alert">
          {t.error ?? session.error} — send a prompt to recover.
        </p>
      )}
      {notice && (
        <p className="banner error" role="alert">
          {notice}{" "}
          <button className="link" onClick={() => setNotice(null)} aria-label="Dismiss">
            ×
          </button>
        </p>
      )}
      {showChanges && <ChangesPanel id={id} summary={t.diff} pull={pull} onPull={setPull} onClose={() => setShowChanges(false)} />}
      <Transcript
        items={t.items}
        onRetry={() => lastPrompt?.kind === "user" && void prompt(lastPrompt.text)}
        empty={
          connection === "live"
            ? status === "paused"
              ? "Paused. Send a prompt to resume."
              : "Nothing here yet. Send a prompt to start."
            : "Loading history…"
        }
      />
      {t.todos.length > 0 && (
        <section className="todos" aria-label="Todos">
          <h2>Todos</h2>
          <ul>
            {t.todos.map((todo, i) => (
              <li key={i} className={todo.status}>
                <span aria-hidden="true">{todo.status === "completed" ? "☑" : todo.status === "cancelled" ? "☒" : todo.status === "in_progress" ? "◐" : "☐"}</span> {todo.content}
              </li>
            ))}
          </ul>
        </section>
      )}
      {t.queue.length > 0 && (
        <QueuedPrompts
          items={t.queue}
          onEdit={(item, text) => act(() => api.editQueued(id, item, text))}
          onRemove={(item) => void act(() => api.dequeue(id, item))}
          onClear={() => void act(() => api.clearQueue(id))}
        />
      )}
      <div className="session-model">
        <ModelPicker
          label="Model for the next prompt"
          value={nextModel.id || session.model}
          onChange={(model, locked) => setNextModel({ id: model, locked })}
        />
      </div>
      <div className="session-composer">
        <Composer
          label="Prompt"
          value={draft}
          onChange={setDraft}
          onSend={() => void prompt(draft.trim())}
          onEscape={running ? stop : undefined}
          busy={sending}
          placeholder={running ? "Send a follow-up (it queues)…" : status === "paused" ? "Send a message to resume…" : "Ask or build anything…"}
          sendLabel={running ? "Queue" : "Send"}
        />
      </div>
      {confirmDelete && (
        <ConfirmDialog
          title="Delete this session?"
          body="Its history, sandbox and snapshots are deleted. This cannot be undone."
          confirm="Delete"
          onConfirm={() => void del()}
          onCancel={() => setConfirmDelete(false)}
        />
      )}
    </div>
  );
}
