import { useState } from "react";
import { api } from "./api";
import { ConfirmDialog } from "./ConfirmDialog";
import { Link, navigate } from "./router";
import { removed, useSessions, useWaiting, useWorking } from "./sessions";
import type { Session, User } from "./types";
import { ago, shortRepo } from "./util";

export function Sidebar({ user, current }: { user: User; current: string | null }) {
  const { sessions, loaded, error } = useSessions();
  const working = useWorking();
  const waiting = useWaiting();
  const [query, setQuery] = useState("");
  const [deleting, setDeleting] = useState<Session | null>(null);
  const [deleteError, setDeleteError] = useState<string | null>(null);
  const del = async (s: Session) => {
    setDeleting(null);
    setDeleteError(null);
    try {
      await api.remove(s.id);
      removed(s.id);
      if (s.id === current) navigate("/", true);
    } catch (e) {
      setDeleteError(`Could not delete “${s.title}”: ${(e as Error).message}`);
    }
  };
  // Every word must match the title, the repository or the model.
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const shown = words.length === 0 ? sessions : sessions.filter((s) => words.every((w) => `${s.title} ${s.repository} ${s.model}`.toLowerCase().includes(w)));
  return (
    <nav className="sidebar" aria-label="Sessions">
      <div className="sidebar-head">
        <Link href="/" className="brand">
          den
        </Link>
        <Link href="/" className="button small" aria-label="New session">
          + New
        </Link>
      </div>
      {sessions.length > 0 && (
        <div className="pad sidebar-search">
          <input type="search" aria-label="Search sessions" placeholder="Search sessions" value={query} onChange={(e) => setQuery(e.target.value)} />
        </div>
      )}
      {!loaded ? (
        <p className="muted pad">Loading sessions…</p>
      ) : error ? (
        <p className="error pad" role="alert">
          {error}
        </p>
      ) : sessions.length === 0 ? (
        <p className="muted pad">No sessions yet.</p>
      ) : shown.length === 0 ? (
        <p className="muted pad">No session matches “{query}”.</p>
      ) : (
        <ul className="session-list">
          {shown.map((s) => (
            <li key={s.id} className="session-item">
              <Link href={`/s/${s.id}`} aria-current={s.id === current ? "page" : undefined} className="session-link">
                {waiting.has(s.id) ? (
                  <span className="dot waiting" role="img" aria-label="waiting for you" title="The agent waits for your answer" />
                ) : working.has(s.id) ? (
                  <span className="dot working" role="img" aria-label="working" title="The agent is working" />
                ) : (
                  <span className={`dot ${s.status}`} role="img" aria-label={s.status} title={s.status} />
                )}
                <span className="session-text">
                  <span className="title">{s.title}</span>
                  <span className="meta muted small" title={`${s.repository} · ${s.model}`}>
                    {shortRepo(s.repository)} · {s.model.split("/").pop()}
                  </span>
                </span>
                <time className="muted small" dateTime={s.lastActivityAt}>
                  {ago(s.lastActivityAt)}
                </time>
              </Link>
              <button className="delete-item" aria-label={`Delete session: ${s.title}`} title="Delete" onClick={() => setDeleting(s)}>
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      {deleteError && (
        <p className="error pad" role="alert">
          {deleteError}
        </p>
      )}
      {deleting && (
        <ConfirmDialog
          title={`Delete “${deleting.title}”?`}
          body="Its history, sandbox and snapshots are deleted. This cannot be undone."
          confirm="Delete"
          onConfirm={() => void del(deleting)}
          onCancel={() => setDeleting(null)}
        />
      )}
      <div className="sidebar-foot">
        <Link href="/settings" className="session-link">
          {/* The visible name is part of the accessible one (WCAG 2.5.3). */}
          <span aria-hidden="true">⚙</span> <span className="visually-hidden">Settings, signed in as</span> {user.username}
        </Link>
      </div>
    </nav>
  );
}
