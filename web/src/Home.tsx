import { useMemo, useState } from "react";
import { MODELS, api } from "./api";
import { Composer } from "./Composer";
import { navigate } from "./router";
import { upsert, useSessions } from "./sessions";

export function Home() {
  const { sessions } = useSessions();
  const recent = useMemo(() => [...new Set(sessions.map((s) => s.repository))].slice(0, 10), [sessions]);
  const [repository, setRepository] = useState("");
  const [model, setModel] = useState<string>(MODELS[0].id);
  const [prompt, setPrompt] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const send = async () => {
    if (!repository.trim()) {
      setError("Choose a repository first: a git URL or a local path.");
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
        <label>
          Model
          <select value={model} onChange={(e) => setModel(e.target.value)}>
            {MODELS.map((m) => (
              <option key={m.id} value={m.id}>
                {m.name}
              </option>
            ))}
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
