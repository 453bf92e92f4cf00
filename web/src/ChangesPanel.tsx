import { useEffect, useState } from "react";
import { api } from "./api";
import { Diff } from "./ToolChip";
import type { DiffSummary, PullRequest, PushResult, SessionDiff } from "./types";

const STATUS_MARK: Record<string, string> = {
  added: "A",
  modified: "M",
  deleted: "D",
  renamed: "R",
  copied: "C",
  type_changed: "T",
};

/** The session's changes against its base commit (refetched after each turn), each file's
 * diff on demand, the Push button and the "Open pull request" button (which shows the
 * existing one instead once there is one). */
export function ChangesPanel({
  id,
  summary,
  pull,
  onPull,
  onClose,
}: {
  id: string;
  summary: DiffSummary | null;
  pull: PullRequest | null;
  onPull: (pull: PullRequest) => void;
  /** Absent: no close button (the variants page shows the panel for good). */
  onClose?: () => void;
}) {
  const [diff, setDiff] = useState<SessionDiff | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [pushing, setPushing] = useState(false);
  const [pushed, setPushed] = useState<PushResult | null>(null);
  const [pushError, setPushError] = useState<string | null>(null);
  const [opening, setOpening] = useState(false);
  const [opened, setOpened] = useState<PullRequest | null>(null);
  const [pullError, setPullError] = useState<string | null>(null);

  useEffect(() => {
    let current = true;
    api.diff(id).then(
      (d) => current && (setDiff(d), setError(null)),
      (e: unknown) => current && setError((e as Error).message),
    );
    return () => {
      current = false;
    };
    // A new summary (the `diff_changed` event) means the changes were computed again.
  }, [id, summary]);

  const push = async () => {
    setPushing(true);
    setPushError(null);
    setPushed(null);
    try {
      setPushed(await api.push(id));
    } catch (e) {
      setPushError((e as Error).message);
    }
    setPushing(false);
  };
  const openPull = async () => {
    setOpening(true);
    setPullError(null);
    setOpened(null);
    try {
      const created = await api.openPullRequest(id);
      setOpened(created);
      onPull(created);
    } catch (e) {
      setPullError((e as Error).message);
    }
    setOpening(false);
  };

  return (
    <section className="changes" aria-label="Changes">
      <header>
        <h2>Changes</h2>
        {diff && (
          <span className="muted small">
            {diff.summary.files} {diff.summary.files === 1 ? "file" : "files"} <span className="add">+{diff.summary.additions}</span>{" "}
            <span className="del">−{diff.summary.deletions}</span>
            {diff.source === "last_turn" && " · as of the last turn"}
          </span>
        )}
        <button onClick={() => void push()} disabled={pushing} aria-busy={pushing}>
          {pushing ? "Pushing…" : "Push"}
        </button>
        {pull?.state === "open" ? (
          <a className="button" href={pull.url} target="_blank" rel="noreferrer">
            View pull request #{pull.number}
          </a>
        ) : (
          <button onClick={() => void openPull()} disabled={opening} aria-busy={opening}>
            {opening ? "Opening pull request…" : "Open pull request"}
          </button>
        )}
        {onClose && (
          <button className="link" onClick={onClose} aria-label="Close changes">
            ×
          </button>
        )}
      </header>
      {pushed && (
        <p className="banner ok" role="status">
          Pushed {pushed.branch} at {pushed.commit.slice(0, 8)}
          {pushed.committed ? " (uncommitted work was committed first)" : ""}.
        </p>
      )}
      {opened && (
        <p className="banner ok" role="status">
          {opened.created ? "Opened" : "Already open:"}{" "}
          <a href={opened.url} target="_blank" rel="noreferrer">
            pull request #{opened.number}
          </a>
          .
        </p>
      )}
      {pullError && (
        <p className="banner error" role="alert">
          {pullError}
        </p>
      )}
      {pushError && (
        <p className="banner error" role="alert">
          {pushError}
        </p>
      )}
      {error && (
        <p className="banner error" role="alert">
          {error}
        </p>
      )}
      {!diff && !error && <p className="muted" aria-busy="true">Loading changes…</p>}
      {diff && diff.files.length === 0 && <p className="muted">No changes yet.</p>}
      {diff && diff.files.length > 0 && (
        <ul className="change-list" aria-label="Changed files">
          {diff.files.map((f) => (
            <li key={f.path}>
              <button
                className="change-file"
                aria-expanded={open === f.path}
                onClick={() => setOpen(open === f.path ? null : f.path)}
              >
                <span className={`mark ${f.status}`} title={f.status}>
                  {STATUS_MARK[f.status] ?? "M"}
                </span>{" "}
                {f.oldPath ? `${f.oldPath} → ${f.path}` : f.path}{" "}
                {f.binary ? (
                  <span className="muted small">binary</span>
                ) : (
                  <span className="small">
                    <span className="add">+{f.additions}</span> <span className="del">−{f.deletions}</span>
                  </span>
                )}
              </button>
              {open === f.path &&
                (f.binary ? (
                  <p className="muted small">Binary file: no text diff.</p>
                ) : (
                  <>
                    <Diff text={f.patch} path={f.path} />
                    {f.patchTruncated && <p className="muted small">The diff was cut: it is too large to show whole.</p>}
                  </>
                ))}
            </li>
          ))}
        </ul>
      )}
      {diff?.truncated && <p className="muted small">Too many changes: some files are listed without their diff.</p>}
    </section>
  );
}
