import { useState, type FormEvent } from "react";
import { api } from "./api";
import type { User } from "./types";

// The rule den enforces (and `den user passwd`); checked here only to answer at once.
const MIN_PASSWORD_LENGTH = 8;

/** Set a first password (after signing in by link or GitHub) or change the one there is. */
export function PasswordSettings({ user, onChanged }: { user: User; onChanged: () => void }) {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [repeat, setRepeat] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setDone(null);
    if ([...next].length < MIN_PASSWORD_LENGTH) return setError(`The new password needs at least ${MIN_PASSWORD_LENGTH} characters.`);
    if (next !== repeat) return setError("The two new passwords differ.");
    setBusy(true);
    try {
      await api.setPassword(next, user.hasPassword ? current : undefined);
      setDone(
        user.hasPassword
          ? "Password changed. Other browsers were signed out."
          : "Password set. You can now sign in with your username and this password.",
      );
      setCurrent("");
      setNext("");
      setRepeat("");
      onChanged();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="password-h" className="card">
      <h2 id="password-h">Password</h2>
      <p className="muted">
        {user.hasPassword
          ? "Changing it signs out your other browsers."
          : "You have no password yet: set one to sign in again after you sign out."}
      </p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {done && (
        <p className="banner ok flush" role="status">
          {done}
        </p>
      )}
      <form onSubmit={submit} className="password-form">
        {/* For password managers: the account the password belongs to. */}
        <input type="text" autoComplete="username" value={user.username} readOnly hidden />
        {user.hasPassword && (
          <label>
            Current password
            <input type="password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} required />
          </label>
        )}
        <label>
          New password
          <input type="password" autoComplete="new-password" value={next} onChange={(e) => setNext(e.target.value)} required />
        </label>
        <label>
          Repeat new password
          <input type="password" autoComplete="new-password" value={repeat} onChange={(e) => setRepeat(e.target.value)} required />
        </label>
        <button type="submit" className="primary" disabled={busy}>
          {user.hasPassword ? "Change password" : "Set password"}
        </button>
      </form>
    </section>
  );
}
