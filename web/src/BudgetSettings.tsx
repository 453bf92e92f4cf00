// Settings → Budget: what the person's model requests cost this month (as den's gateway metered
// them), the admin's cap for them, and a lower cap of their own they may set or remove. Admins
// also see everyone's budget and set a cap per person.
import { useEffect, useState, type FormEvent } from "react";
import { api } from "./api";
import type { Budget, BudgetOverview, PersonBudget } from "./types";

const dollars = (usd: number | null | undefined) => (usd === null || usd === undefined ? "no cap" : `$${usd.toFixed(2)}`);

/** One person's row in the admin's table: their numbers and the admin's cap for them. */
function PersonRow({ person, onSaved, onError }: { person: PersonBudget; onSaved: (p: PersonBudget) => void; onError: (m: string | null) => void }) {
  const [amount, setAmount] = useState("");
  const save = async (usd: number | null) => {
    onError(null);
    try {
      onSaved(await api.setPersonBudget(person.username, usd));
      setAmount("");
    } catch (err) {
      onError((err as Error).message);
    }
  };
  return (
    <tr>
      <td>{person.username}</td>
      <td>${person.spentUsd.toFixed(4)}</td>
      <td>{person.adminCapUsd === null || person.adminCapUsd === undefined ? "default" : dollars(person.adminCapUsd)}</td>
      <td>{dollars(person.capUsd)}</td>
      <td>
        <form className="row" onSubmit={(e) => { e.preventDefault(); void save(Number(amount)); }}>
          <input type="number" min={0} step="0.01" aria-label={`Cap for ${person.username}`} value={amount} onChange={(e) => setAmount(e.target.value)} required />
          <button type="submit" className="small">Set</button>
          {person.adminCapUsd !== null && person.adminCapUsd !== undefined && (
            <button type="button" className="small" aria-label={`Default cap for ${person.username}`} onClick={() => void save(null)}>
              Default
            </button>
          )}
        </form>
      </td>
    </tr>
  );
}

function EveryonesBudgets() {
  const [overview, setOverview] = useState<BudgetOverview | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => void api.budgets().then(setOverview, (e: Error) => setError(e.message)), []);
  if (!overview) return error ? <p className="error" role="alert">{error}</p> : null;
  const saved = (p: PersonBudget) => setOverview({ ...overview, people: overview.people.map((q) => (q.username === p.username ? p : q)) });
  return (
    <>
      <h3>Everyone (admin)</h3>
      <p className="muted small">den's default cap: {dollars(overview.defaultCapUsd)} a month. A cap you set for a person replaces it for them.</p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <table className="budgets" aria-label="Everyone's budgets">
        <thead>
          <tr>
            <th>Person</th>
            <th>Spent</th>
            <th>Your cap</th>
            <th>Applies</th>
            <th>Set a cap</th>
          </tr>
        </thead>
        <tbody>
          {overview.people.map((p) => (
            <PersonRow key={p.username} person={p} onSaved={saved} onError={setError} />
          ))}
        </tbody>
      </table>
    </>
  );
}

export function BudgetSettings({ isAdmin }: { isAdmin: boolean }) {
  const [budget, setBudget] = useState<Budget | null>(null);
  const [amount, setAmount] = useState("");
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api.budget().then(setBudget, (e: Error) => setError(e.message));
    if (location.hash === "#budget") document.getElementById("budget")?.scrollIntoView();
  }, []);

  const save = async (usd: number | null) => {
    setError(null);
    try {
      setBudget(await api.setBudget(usd));
      setAmount("");
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void save(Number(amount));
  };

  return (
    <section aria-labelledby="budget-h" className="card" id="budget">
      <h2 id="budget-h">Budget</h2>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {budget === null ? (
        <p className="muted">Loading budget…</p>
      ) : (
        <>
          <dl aria-label="Monthly budget">
            <dt>Spent this month</dt>
            <dd>${budget.spentUsd.toFixed(4)}</dd>
            <dt>Admin's cap for you</dt>
            <dd>{dollars(budget.adminCapUsd)}</dd>
            <dt>Your own cap</dt>
            <dd>{dollars(budget.ownCapUsd)}</dd>
            <dt>Applies</dt>
            <dd>{dollars(budget.capUsd)} a month</dd>
          </dl>
          <p className="muted small">
            Past the cap, den refuses model requests until the month ends. Your own cap can only be lower than the admin's.
          </p>
          <form onSubmit={submit} className="row">
            <input
              type="number"
              aria-label="Your monthly cap in US dollars"
              placeholder="US dollars a month"
              min={0}
              step="0.01"
              value={amount}
              onChange={(e) => setAmount(e.target.value)}
              required
            />
            <button type="submit" className="primary">
              Set my cap
            </button>
            {budget.ownCapUsd !== null && budget.ownCapUsd !== undefined && (
              <button type="button" className="small" onClick={() => void save(null)}>
                Remove my cap
              </button>
            )}
          </form>
        </>
      )}
      {isAdmin && <EveryonesBudgets />}
    </section>
  );
}
