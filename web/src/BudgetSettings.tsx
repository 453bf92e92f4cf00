// Settings → Budget: what the person's model requests cost this month (as den's gateway metered
// them), the admin's cap for them, and a lower cap of their own they may set or remove.
import { useEffect, useState, type FormEvent } from "react";
import { api } from "./api";
import type { Budget } from "./types";

const dollars = (usd: number | null | undefined) => (usd === null || usd === undefined ? "no cap" : `$${usd.toFixed(2)}`);

export function BudgetSettings() {
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
    </section>
  );
}
