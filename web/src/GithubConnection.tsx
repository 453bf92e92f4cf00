// Settings → GitHub: whether den holds a GitHub token for the person (never shown), "Connect
// GitHub" (also for someone signed in with a password, and to reconnect when GitHub refused to
// renew the token), and "Disconnect" (den forgets the token).
import { useEffect, useState } from "react";
import { api } from "./api";
import type { GithubStatus } from "./types";

export function GithubConnection({ onChanged }: { onChanged: () => void }) {
  const [status, setStatus] = useState<GithubStatus | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const load = () => api.github().then(setStatus, (e: Error) => setError(e.message));
  useEffect(() => {
    void load();
    if (location.hash === "#github") document.getElementById("github")?.scrollIntoView();
  }, []);

  const connect = async () => {
    setBusy(true);
    setError(null);
    try {
      // den answers GitHub's page; GitHub comes back to den, which returns here.
      const { url } = await api.connectGithub();
      window.location.assign(url);
    } catch (e) {
      setError((e as Error).message);
      setBusy(false);
    }
  };
  const disconnect = async () => {
    setError(null);
    try {
      await api.disconnectGithub();
      await load();
      onChanged();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  if (status && !status.available) return null;
  return (
    <section aria-labelledby="github-h" className="card" id="github">
      <h2 id="github-h">GitHub</h2>
      <p className="muted">
        With GitHub connected, den lists your repositories, clones private ones, pushes your sessions' branches and opens pull
        requests as you. Your token stays with den, encrypted; it never enters a sandbox.
      </p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {status === null ? (
        <p className="muted">Loading…</p>
      ) : status.needsReconnect ? (
        <p className="banner error" role="status">
          GitHub no longer accepts den's access{status.login ? ` for ${status.login}` : ""}: reconnect GitHub.
        </p>
      ) : status.connected ? (
        <p role="status">Connected{status.login ? ` as ${status.login}` : ""}.</p>
      ) : (
        <p className="muted" role="status">
          Not connected.
        </p>
      )}
      {status && (
        <div className="row">
          <button className="primary" onClick={() => void connect()} disabled={busy} aria-busy={busy}>
            {status.needsReconnect ? "Reconnect GitHub" : status.connected ? "Connect again" : "Connect GitHub"}
          </button>
          {(status.connected || status.needsReconnect) && (
            <button className="danger-outline" onClick={() => void disconnect()}>
              Disconnect
            </button>
          )}
        </div>
      )}
    </section>
  );
}
