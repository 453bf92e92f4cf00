// Settings → Git hosts: a person's credentials for https git hosts (username + token), sealed
// by den and added on the host to the git traffic of their sessions. The token is sent once,
// never shown back: the list shows only the host, the username and when it was saved.
import { useEffect, useState, type FormEvent } from "react";
import { api } from "./api";
import type { GitCredential } from "./types";

export function GitCredentials() {
  const [credentials, setCredentials] = useState<GitCredential[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [host, setHost] = useState("");
  const [username, setUsername] = useState("");
  const [token, setToken] = useState("");

  const load = () => api.gitCredentials().then(setCredentials, (e: Error) => setError(e.message));
  useEffect(() => void load(), []);

  const save = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setSaved(null);
    // A pasted URL names its host: keep only that.
    const name = host.trim().replace(/^https?:\/\//, "").split("/")[0]?.toLowerCase() ?? "";
    try {
      await api.putGitCredential(name, username.trim(), token.trim());
      setSaved(`Credential for ${name} saved.`);
      setHost("");
      setUsername("");
      setToken("");
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const remove = async (c: GitCredential) => {
    setError(null);
    setSaved(null);
    try {
      await api.deleteGitCredential(c.host);
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <section aria-labelledby="git-h" className="card" id="git">
      <h2 id="git-h">Git hosts</h2>
      <p className="muted">
        A token for a git host lets den clone your private repositories there and push your sessions' branches. den keeps it
        encrypted, adds it outside the sandbox, and never shows it again.
      </p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {saved && (
        <p className="banner ok" role="status">
          {saved}
        </p>
      )}
      {credentials === null ? (
        <p className="muted">Loading credentials…</p>
      ) : credentials.length === 0 ? (
        <p className="muted">No git host credentials yet.</p>
      ) : (
        <ul className="tokens" aria-label="Git host credentials">
          {credentials.map((c) => (
            <li key={c.host}>
              <span>
                <strong>{c.host}</strong> <span className="muted small">as {c.username}, saved {new Date(c.updatedAt).toLocaleDateString()}</span>
              </span>
              <button className="small danger-outline" aria-label={`Delete credential for ${c.host}`} onClick={() => void remove(c)}>
                Delete
              </button>
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={save} className="endpoint-form">
        <input aria-label="Git host" placeholder="host, e.g. github.com" value={host} onChange={(e) => setHost(e.target.value)} maxLength={253} required />
        <input aria-label="Git username" placeholder="username (GitHub: x-access-token)" value={username} onChange={(e) => setUsername(e.target.value)} maxLength={200} required />
        <input type="password" aria-label="Git token" placeholder="token" value={token} onChange={(e) => setToken(e.target.value)} autoComplete="off" maxLength={4096} required />
        <button type="submit">Save credential</button>
      </form>
    </section>
  );
}
