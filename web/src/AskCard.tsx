// The agent waits for the person: a permission ask (what exactly would run or change, answered
// once / always / reject with an optional message) or its questions (options, and typed text
// where allowed). Pending until an `ask_closed` event says how and by whom it was closed; every
// tab shows the same, since both come from the session's history.
import { createContext, useContext, useState } from "react";
import type { Item } from "./reducer";
import type { AskClosed, AskReply, PermissionAsk, QuestionAsk } from "./types";

/** Sends an answer for the open session (the session page provides it). */
export const AnswerContext = createContext<(ask: string, reply: AskReply) => Promise<void>>(() => Promise.resolve());

type AskItem = Extract<Item, { kind: "ask" }>;

const OUTCOME: Record<AskClosed["outcome"], string> = {
  once: "Allowed once",
  always: "Always allowed",
  rejected: "Rejected",
  answered: "Answered",
  dismissed: "Dismissed",
  expired: "Expired (nobody answered)",
  cancelled: "Cancelled (the turn ended)",
};

export function AskCard({ item }: { item: AskItem }) {
  const send = useContext(AnswerContext);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const answer = async (reply: AskReply) => {
    setBusy(true);
    setError(null);
    try {
      await send(item.id, reply);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const closed = item.closed;
  const label = item.ask.kind === "permission" ? "The agent asks for permission" : "The agent asks you";
  return (
    <section className={`ask ${closed ? "closed" : "pending"}`} aria-label={label}>
      {item.ask.kind === "permission" ? (
        <PermissionBody ask={item.ask.permission} pending={!closed} busy={busy} answer={answer} />
      ) : (
        <QuestionBody ask={item.ask.question} pending={!closed} busy={busy} answer={answer} />
      )}
      {closed && (
        <p className="ask-outcome small" role="note">
          {OUTCOME[closed.outcome]}
          {closed.by ? ` by ${closed.by}` : ""}
          {closed.answers ? `: ${closed.answers.map((a) => a.join(", ")).join("; ")}` : ""}
          {closed.message ? ` — “${closed.message}”` : ""}
        </p>
      )}
      {error && (
        <p className="error small" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

type BodyProps<T> = { ask: T; pending: boolean; busy: boolean; answer: (reply: AskReply) => Promise<void> };

function PermissionBody({ ask, pending, busy, answer }: BodyProps<PermissionAsk>) {
  const [message, setMessage] = useState("");
  return (
    <>
      <h3 className="ask-title">{ask.permission === "bash" ? "Run this command?" : ask.permission === "edit" ? `Change ${ask.file ?? "a file"}?` : `Allow ${ask.permission}?`}</h3>
      {ask.command && <pre className="ask-command" aria-label="Command">{ask.command}</pre>}
      {ask.diff && <pre className="ask-diff" aria-label="Change">{ask.diff}</pre>}
      {pending && (
        <div className="ask-actions">
          <button disabled={busy} onClick={() => void answer({ reply: "once" })}>
            Allow once
          </button>
          <button disabled={busy} onClick={() => void answer({ reply: "always" })} title={ask.always.length ? `Also allows: ${ask.always.join(", ")}` : undefined}>
            Always allow
          </button>
          <input aria-label="Message to the agent" placeholder="Why not? (optional)" value={message} onChange={(e) => setMessage(e.target.value)} />
          <button className="danger-outline" disabled={busy} onClick={() => void answer({ reply: "reject", ...(message.trim() ? { message: message.trim() } : {}) })}>
            Reject
          </button>
        </div>
      )}
    </>
  );
}

function QuestionBody({ ask, pending, busy, answer }: BodyProps<QuestionAsk>) {
  const [chosen, setChosen] = useState<string[][]>(() => ask.questions.map(() => []));
  const [typed, setTyped] = useState<string[]>(() => ask.questions.map(() => ""));
  const toggle = (q: number, label: string, multiple: boolean) =>
    setChosen((all) => all.map((c, i) => (i !== q ? c : multiple ? (c.includes(label) ? c.filter((l) => l !== label) : [...c, label]) : [label])));
  const answers = ask.questions.map((question, i) => {
    const text = typed[i]!.trim();
    if (text && question.freeText) return question.multiple ? [...chosen[i]!, text] : [text];
    return chosen[i]!;
  });
  const complete = answers.every((a) => a.length > 0);
  return (
    <>
      {ask.questions.map((question, q) => (
        <fieldset key={q} className="ask-question" disabled={!pending || busy}>
          <legend>{question.header}</legend>
          <p>{question.question}</p>
          <div className="ask-options">
            {question.options.map((option) => (
              <button
                key={option.label}
                type="button"
                aria-pressed={chosen[q]!.includes(option.label)}
                title={option.description ?? undefined}
                onClick={() => toggle(q, option.label, question.multiple)}
              >
                {option.label}
              </button>
            ))}
          </div>
          {question.freeText && pending && (
            <input aria-label="Your own answer" placeholder="Or type your own answer" value={typed[q]} onChange={(e) => setTyped((all) => all.map((t, i) => (i === q ? e.target.value : t)))} />
          )}
        </fieldset>
      ))}
      {pending && (
        <div className="ask-actions">
          <button disabled={busy || !complete} onClick={() => void answer({ reply: "answer", answers })}>
            Answer
          </button>
          <button className="danger-outline" disabled={busy} onClick={() => void answer({ reply: "reject" })}>
            Dismiss
          </button>
        </div>
      )}
    </>
  );
}
