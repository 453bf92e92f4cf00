import { useMemo, useState } from "react";
import { api } from "./api";
import { Composer } from "./Composer";
import { ModelPicker } from "./ModelPicker";
import { navigate } from "./router";
import { upsert, useSessions } from "./sessions";

export function Home() {
  const { sessions } = useSessions();
  const recent = useMemo(() => [...new Set(sessions.map((s) => s.repository))].slice(0, 10), [sessions]);
  const [repository, setRepository] = useState("");
  const [model, setModel] = useState<string>("");
  const [locked, setLocked] = useState(false);
  const [prompt, setPrompt] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

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
      const session = await api.createSession(repository.trim(), model, prompt.trim());
      upsert(session);
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
          {recent.map((r) => (
            <option key={r} value={r} />
          ))}
        </datalist>
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
