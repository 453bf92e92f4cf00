import { useEffect, useState, type FormEvent } from "react";
import { api } from "./api";
import { BudgetSettings } from "./BudgetSettings";
import { GitCredentials } from "./GitCredentials";
import { GithubConnection } from "./GithubConnection";
import { NotificationSettings } from "./NotificationSettings";
import { PasswordSettings } from "./PasswordSettings";
import { ProviderKeys } from "./ProviderKeys";
import type { ApiToken, CreatedToken, User } from "./types";

export function Settings({ user, onSignOut, onAccountChanged }: { user: User; onSignOut: () => void; onAccountChanged: () => void }) {
  const [tokens, setTokens] = useState<ApiToken[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [created, setCreated] = useState<CreatedToken | null>(null);

  const load = () => api.tokens().then(setTokens, (e: Error) => setError(e.message));
  useEffect(() => void load(), []);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      setCreated(await api.createToken(name.trim()));
      setName("");
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const revoke = async (t: ApiToken) => {
    setError(null);
    try {
      await api.revokeToken(t.id);
      if (created?.info.id === t.id) setCreated(null);
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <div className="settings">
      <h1>Settings</h1>
      <section aria-labelledby="account-h" className="card">
        <h2 id="account-h">Account</h2>
        <dl>
          <dt>Username</dt>
          <dd>{user.username}</dd>
          <dt>Role</dt>
          <dd>{user.isAdmin ? "Administrator" : "User"}</dd>
          {user.githubLogin && (
            <>
              <dt>GitHub</dt>
              <dd>{user.githubLogin}</dd>
            </>
          )}
        </dl>
        <button onClick={onSignOut}>Sign out</button>
      </section>
      <PasswordSettings user={user} onChanged={onAccountChanged} />
      <ProviderKeys />
      <BudgetSettings isAdmin={user.isAdmin} />
      <GithubConnection onChanged={onAccountChanged} />
      <GitCredentials />
      <NotificationSettings />
      <section aria-labelledby="tokens-h" className="card">
        <h2 id="tokens-h">API tokens</h2>
        <p className="muted">For scripts and the command line: send as <code>Authorization: Bearer …</code>.</p>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        {created && (
          <div className="banner ok" role="status">
            <p>
              New token <strong>{created.info.name}</strong>. Copy it now: it is shown only once.
            </p>
            <code className="token" aria-label="New token">
              {created.token}
            </code>{" "}
            <button className="small" onClick={() => void navigator.clipboard?.writeText(created.token)}>
              Copy
            </button>
          </div>
        )}
        <form onSubmit={create} className="row">
          <input aria-label="Token name" placeholder="Token name, e.g. laptop" value={name} onChange={(e) => setName(e.target.value)} maxLength={100} required />
          <button type="submit" className="primary">
            Create token
          </button>
        </form>
        {tokens === null ? (
          <p className="muted">Loading tokens…</p>
        ) : tokens.length === 0 ? (
          <p className="muted">No tokens yet.</p>
        ) : (
          <ul className="tokens" aria-label="Tokens">
            {tokens.map((t) => (
              <li key={t.id}>
                <span>
                  <strong>{t.name}</strong> <code>{t.prefix}…</code>
                  <span className="muted small"> created {new Date(t.createdAt).toLocaleDateString()}{t.lastUsedAt ? `, last used ${new Date(t.lastUsedAt).toLocaleDateString()}` : ", never used"}</span>
                </span>
                <button className="small danger-outline" aria-label={`Revoke ${t.name}`} onClick={() => void revoke(t)}>
                  Revoke
                </button>
              </li>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}
