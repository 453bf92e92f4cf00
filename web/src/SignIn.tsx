import { useEffect, useState, type FormEvent } from "react";
import { api } from "./api";
import type { AuthOptions, User } from "./types";

// What den's redirects to the sign-in page mean (`/?signin_error=<code>`), and what to do.
const SIGNIN_ERRORS: Record<string, string> = {
  link_invalid:
    "This sign-in link was already used or has expired: each link works once, for a few minutes. Sign in with your password below, or ask your den admin for a new link (on the server: den user link YOUR-NAME).",
};

/** The message of the `signin_error` den redirected here with, if any. */
function redirectError(): string | null {
  const code = new URLSearchParams(window.location.search).get("signin_error");
  if (code === null) return null;
  return SIGNIN_ERRORS[code] ?? "Signing in did not work. Try again.";
}

/** Takes `signin_error` off the address, so a reload or a bookmark does not repeat it. */
function forgetRedirectError() {
  const params = new URLSearchParams(window.location.search);
  if (!params.has("signin_error")) return;
  params.delete("signin_error");
  const query = params.toString();
  window.history.replaceState(window.history.state, "", window.location.pathname + (query ? `?${query}` : ""));
}

export function SignIn({ options, onSignedIn }: { options: AuthOptions; onSignedIn: (u: User) => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(redirectError);
  const [busy, setBusy] = useState(false);
  useEffect(forgetRedirectError, []);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await api.login(username, password));
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  };
  return (
    <main className="center">
      <form className="card signin" onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">Sign in to den</h1>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <label>
          Username
          <input autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} required autoFocus />
        </label>
        <label>
          Password
          <input type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
        </label>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        {options.github && (
          <a className="button" href="/api/auth/github/start">
            Sign in with GitHub
          </a>
        )}
      </form>
    </main>
  );
}
