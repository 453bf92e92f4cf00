import { useEffect, useState } from "react";
import { api } from "./api";
import { Diff } from "./ToolChip";
import type { DiffSummary, PushResult, SessionDiff } from "./types";

const STATUS_MARK: Record<string, string> = {
  added: "A",
  modified: "M",
  deleted: "D",
  renamed: "R",
  copied: "C",
  type_changed: "T",
};

/** The session's changes against its base commit (refetched after each turn), each file's
 * diff on demand, and the Push button. */
export function ChangesPanel({ id, summary, onClose }: { id: string; summary: DiffSummary | null; onClose: () => void }) {
  const [diff, setDiff] = useState<SessionDiff | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [pushing, setPushing] = useState(false);
  const [pushed, setPushed] = useState<PushResult | null>(null);
  const [pushError, setPushError] = useState<string | null>(null);

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
        <button className="link" onClick={onClose} aria-label="Close changes">
          ×
        </button>
      </header>
      {pushed && (
        <p className="banner ok" role="status">
          Pushed {pushed.branch} at {pushed.commit.slice(0, 8)}
          {pushed.committed ? " (uncommitted work was committed first)" : ""}.
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
                    <Diff text={f.patch} />
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
