// The transcript, as rows (a user message, one part of an assistant message, a progress block,
// an error, a turn footer). Only the newest rows are rendered, with "Show earlier" paging back,
// so a session with thousands of events stays smooth; rows are memoised by identity and the
// reducer only replaces what changed.
import { memo, useMemo, useState } from "react";
import { AskCard } from "./AskCard";
import { Markdown } from "./Markdown";
import { Link } from "./router";
import { type Item, type Part, pauseReasonText } from "./reducer";
import { ToolChip } from "./ToolChip";

const PAGE = 200;

type Row = { key: string; item: Item; part?: Part; quiet?: boolean };

const STEP_LABEL: Record<string, string> = {
  sandbox: "Sandbox",
  clone: "Clone repository",
  restore: "Restore snapshot",
  agent: "Start agent",
  ready: "Ready",
};

/** A time of day, as the reader's clock shows it ("14:02"). */
const clock = (at: string) => new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

export function Transcript({
  items,
  onRetry,
  empty,
  working,
  contentRef,
}: {
  items: Item[];
  /** Sends the last prompt again; absent where a retry could only fail the same way, and for a share link's viewer. */
  onRetry?: () => void;
  empty: string;
  /** The agent is at work on a prompt (sent, or running): say so at the end. */
  working: boolean;
  /** The element whose size the follow-the-end logic watches (see useFollow). */
  contentRef: (el: HTMLElement | null) => void;
}) {
  const rows = useMemo(() => {
    const out: Row[] = [];
    // A turn whose failure an error row already told: its footer does not repeat it.
    let errorInTurn = false;
    for (const item of items) {
      if (item.kind === "user") errorInTurn = false;
      if (item.kind === "error") errorInTurn = true;
      if (item.kind === "assistant") for (const part of item.parts) out.push({ key: `${item.id}/${part.id}`, item, part });
      else out.push({ key: item.id, item, quiet: item.kind === "turn" && errorInTurn });
    }
    return out;
  }, [items]);
  const [shown, setShown] = useState(PAGE);

  if (rows.length === 0 && !working)
    return (
      <div className="transcript-wrap" ref={contentRef}>
        <p className="empty muted">{empty}</p>
      </div>
    );
  const hidden = Math.max(0, rows.length - shown);
  const lastError = [...items].reverse().find((i) => i.kind === "error")?.id;
  return (
    <div className="transcript-wrap" ref={contentRef}>
      <ol className="transcript" aria-label="Transcript">
        {hidden > 0 && (
          <li>
            <button className="link" onClick={() => setShown((n) => n + PAGE)}>
              Show earlier ({hidden} more)
            </button>
          </li>
        )}
        {rows.slice(hidden).map((r) => (
          <li key={r.key}>
            <RowView item={r.item} part={r.part} quiet={r.quiet} retry={r.item.id === lastError && onRetry ? onRetry : undefined} />
          </li>
        ))}
        {working && (
          <li className="working" aria-label="The agent is working">
            <span className="dot working" aria-hidden="true" /> Working…
          </li>
        )}
      </ol>
    </div>
  );
}

const RowView = memo(function RowView({
  item,
  part,
  quiet,
  retry,
}: {
  item: Item;
  part?: Part | undefined;
  quiet?: boolean | undefined;
  retry?: (() => void) | undefined;
}) {
  switch (item.kind) {
    case "user":
      return (
        <div className="msg user" aria-label="Your message">
          {item.text}
          {item.model && <div className="turn-model muted small" aria-label="Model">{item.model}</div>}
        </div>
      );
    case "assistant":
      if (!part) return null;
      if (part.kind === "tool") return <ToolChip call={part.call} />;
      if (part.kind === "reasoning")
        return (
          <details className="reasoning">
            <summary>Reasoning</summary>
            <Markdown text={part.text} />
          </details>
        );
      return (
        <div className="msg assistant">
          <Markdown text={part.text} />
        </div>
      );
    case "ask":
      return <AskCard item={item} />;
    case "paused":
      return (
        <p className="marker muted small" role="note">
          Paused at {clock(item.at)}
          {pauseReasonText(item.reason) ? ` — ${pauseReasonText(item.reason)}` : ""} · the sandbox was stopped and its work kept; a prompt
          resumes it
        </p>
      );
    case "progress":
      // A resume that went well is one quiet line, not a block of steps.
      if (item.steps.some((s) => s.step === "restore") && item.steps.every((s) => s.state === "done"))
        return (
          <p className="marker muted small" role="note">
            Resumed from snapshot at {clock(item.at)}
          </p>
        );
      return (
        <ul className="progress" aria-label="Progress">
          {item.steps.map((s) => (
            <li key={s.step} className={s.state}>
              <span aria-hidden="true">{s.state === "done" ? "✓" : s.state === "failed" ? "✗" : "…"}</span> {STEP_LABEL[s.step] ?? s.step}
              {s.state === "failed" ? " failed" : ""}
              {s.detail ? <span className="muted"> · {s.detail}</span> : null}
            </li>
          ))}
        </ul>
      );
    case "error":
      return (
        <div className="msg error-msg" role="alert">
          <strong>Error</strong> {item.message}
          {needsKey(item.message) && (
            <>
              {" "}
              <Link href="/settings#providers">Add a key</Link>
            </>
          )}
          {overBudget(item.message) && (
            <>
              {" "}
              <Link href="/settings#budget">Budget settings</Link>
            </>
          )}
          {retry && (
            <button className="small" onClick={retry}>
              Retry
            </button>
          )}
        </div>
      );
    case "usage": {
      const u = item.usage;
      if (u.requests === 0) return null;
      const known = [
        `${u.requests} model ${u.requests === 1 ? "request" : "requests"}`,
        tokens(u.inputTokens + u.cacheReadTokens + u.cacheWriteTokens, u.outputTokens + u.reasoningTokens),
        price(u.costUsd),
      ].filter(Boolean);
      return (
        <div className="turn-footer muted small" aria-label="Metered usage">
          Metered by den: {known.join(" · ")}
        </div>
      );
    }
    case "turn": {
      const t = item.tokens;
      return (
        <div className="turn-footer muted small">
          {[
            item.outcome === "completed" ? "Done" : item.outcome === "aborted" ? "Stopped" : item.outcome === "failed" ? "Failed" : "Interrupted",
            tokens(t.input + t.cacheRead, t.output + t.reasoning),
            price(item.cost),
            quiet ? "" : (item.error ?? ""),
          ]
            .filter(Boolean)
            .join(" · ")}
          {!quiet && item.error && needsKey(item.error) && (
            <>
              {" · "}
              <Link href="/settings#providers">Add a key</Link>
            </>
          )}
          {!quiet && item.error && overBudget(item.error) && (
            <>
              {" · "}
              <Link href="/settings#budget">Budget settings</Link>
            </>
          )}
        </div>
      );
    }
  }
});

/** Token counts, or nothing when none were counted (a turn stopped before the model answered). */
function tokens(input: number, output: number): string {
  return input + output > 0 ? `${input.toLocaleString()} in / ${output.toLocaleString()} out tokens` : "";
}

/** A price, or nothing when there is none (a provider den has no price for reads as unknown, not free). */
function price(usd: number): string {
  return usd > 0 ? `$${usd.toFixed(4)}` : "";
}

/** den's gateway refused a model request past the monthly budget (its wording, see gateway.rs). */
function overBudget(message: string): boolean {
  return /monthly model budget/.test(message);
}

/** den's gateway refused a model request for want of a key (its wording, see gateway.rs). */
function needsKey(message: string): boolean {
  return /no key for provider/.test(message);
}
