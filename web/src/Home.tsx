import { useEffect, useMemo, useState } from "react";
import { api } from "./api";
import { Composer } from "./Composer";
import { ModelPicker } from "./ModelPicker";
import { Link, navigate } from "./router";
import { createdWithPrompt, upsert, useSessions } from "./sessions";
import type { ApprovalMode, BranchList, RepositoryList } from "./types";

export function Home() {
  const { sessions } = useSessions();
  // A repository is offered again only from sessions that did not fail: a URL that never
  // cloned must not come back as a suggestion.
  const recent = useMemo(() => [...new Set(sessions.filter((s) => s.status !== "error").map((s) => s.repository))].slice(0, 10), [sessions]);
  const [repository, setRepository] = useState("");
  const [model, setModel] = useState<string>("");
  const [locked, setLocked] = useState(false);
  const [prompt, setPrompt] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [found, setFound] = useState<RepositoryList | null>(null);
  const [findError, setFindError] = useState<string | null>(null);
  const [branches, setBranches] = useState<BranchList | null>(null);
  const [branch, setBranch] = useState("");
  const [approvalMode, setApprovalMode] = useState<ApprovalMode>("auto");

  // The picker searches what the person types (a name part); anything typed is still accepted.
  useEffect(() => {
    const text = repository.trim();
    const query = /^(https?:\/\/|\/)/.test(text) ? "" : text;
    let current = true;
    const timer = setTimeout(() => {
      api
        .repositories(query)
        .then((list) => {
          if (current) {
            setFound(list);
            setFindError(null);
          }
        })
        .catch((e: Error) => {
          if (current) setFindError(e.message);
        });
    }, 250);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [repository]);
  // A complete repository (a URL or an absolute path) offers its branches, the default chosen.
  useEffect(() => {
    const text = repository.trim();
    setBranches(null);
    setBranch("");
    if (!/^(https?:\/\/[^/]+\/.+|\/.+)/.test(text)) return;
    let current = true;
    const timer = setTimeout(() => {
      api.branches(text).then(
        (list) => {
          if (!current) return;
          setBranches(list);
          setBranch(list.defaultBranch ?? list.branches[0] ?? "");
        },
        // Not (yet) a repository den can read: the session's own clone will say why.
        () => current && setBranches(null),
      );
    }, 400);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [repository]);
  const suggestions = useMemo(() => {
    const listed = [
      ...(found?.github ?? []).map((r) => ({ value: r.cloneUrl, label: `${r.fullName}${r.private ? " (private)" : ""}` })),
      ...(found?.local ?? []).map((r) => ({ value: r.path, label: `${r.name} (local)` })),
    ];
    const values = new Set(listed.map((r) => r.value));
    return [...listed, ...recent.filter((r) => !values.has(r)).map((r) => ({ value: r, label: "recent" }))];
  }, [found, recent]);

  const send = async () => {
    if (!repository.trim()) {
      setError("Choose a repository first: a git URL or a local path.");
      return;
    }
    if (locked) {
      setError("Choose a model you can use: a locked one needs a key first (Settings → Providers).");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      // The default branch is what den uses without one: send only another pick.
      const picked = branch && branch !== branches?.defaultBranch ? branch : undefined;
      const session = await api.createSession(repository.trim(), model, prompt.trim(), picked, approvalMode);
      upsert(session);
      if (prompt.trim()) createdWithPrompt.add(session.id);
      navigate(`/s/${session.id}`);
    } catch (e) {
      setError((e as Error).message);
      setBusy(false);
    }
  };

  return (
    <div className="home">
      <h1>What should we build?</h1>
      <div className="home-form">
        <label>
          Repository
          <input
            list="recent-repos"
            value={repository}
            onChange={(e) => setRepository(e.target.value)}
            placeholder="https://github.com/owner/repo.git or /srv/git/project"
            autoComplete="off"
            spellCheck={false}
          />
        </label>
        <datalist id="recent-repos">
          {suggestions.map((r) => (
            <option key={r.value} value={r.value} label={r.label} />
          ))}
        </datalist>
        {found && !found.githubConnected && (
          <p className="muted small">
            GitHub is not connected (<Link href="/settings#github">Settings → GitHub</Link>): type any git URL, or pick a local repository.
          </p>
        )}
        {found && (
          <p className="muted small" data-testid="local-roots">
            {found.localRoots.length > 0
              ? `Local repositories may be in: ${found.localRoots.join(", ")}.`
              : "No local folders are allowed on this den: use a git URL."}
          </p>
        )}
        {findError && <p className="muted small">Could not list your repositories: {findError}</p>}
        {branches && branches.branches.length > 0 && (
          <label>
            Branch
            <select value={branch} onChange={(e) => setBranch(e.target.value)}>
              {branches.branches.map((b) => (
                <option key={b} value={b}>
                  {b}
                  {b === branches.defaultBranch ? " (default)" : ""}
                </option>
              ))}
            </select>
          </label>
        )}
        {recent.length > 0 && (
          <div className="chips" aria-label="Recent repositories">
            {recent.slice(0, 5).map((r) => (
              <button key={r} className="chip" onClick={() => setRepository(r)} aria-label={`Use ${r}`}>
                {r}
              </button>
            ))}
          </div>
        )}
        <ModelPicker
          value={model}
          onChange={(id, isLocked) => {
            setModel(id);
            setLocked(isLocked);
          }}
        />
        <label title="Ask: file edits and shell commands wait for your answer. Auto: they run at once (the sandbox is the boundary).">
          Approvals
          <select aria-label="Approval mode" value={approvalMode} onChange={(e) => setApprovalMode(e.target.value as ApprovalMode)}>
            <option value="auto">auto: edits and commands run at once</option>
            <option value="ask">ask: edits and commands wait for me</option>
          </select>
        </label>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <Composer
          label="Prompt"
          value={prompt}
          onChange={setPrompt}
          onSend={() => void send()}
          placeholder="Describe what you'd like to build or fix…"
          busy={busy}
          sendLabel="Start"
        />
      </div>
    </div>
  );
}
