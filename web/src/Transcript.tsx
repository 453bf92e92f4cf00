// The transcript, as rows (a user message, one part of an assistant message, a progress block,
// an error, a turn footer). Only the newest rows are rendered, with "Show earlier" paging back,
// so a session with thousands of events stays smooth; rows are memoised by identity and the
// reducer only replaces what changed.
import { memo, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { Markdown } from "./Markdown";
import { Link } from "./router";
import type { Item, Part } from "./reducer";
import { ToolChip } from "./ToolChip";

const PAGE = 200;

type Row = { key: string; item: Item; part?: Part };

const STEP_LABEL: Record<string, string> = {
  sandbox: "Sandbox",
  clone: "Clone repository",
  restore: "Restore snapshot",
  agent: "Start agent",
  ready: "Ready",
};

export function Transcript({ items, onRetry, empty }: { items: Item[]; onRetry: () => void; empty: string }) {
  const rows = useMemo(() => {
    const out: Row[] = [];
    for (const item of items) {
      if (item.kind === "assistant") for (const part of item.parts) out.push({ key: `${item.id}/${part.id}`, item, part });
      else out.push({ key: item.id, item });
    }
    return out;
  }, [items]);
  const [shown, setShown] = useState(PAGE);
  const end = useRef<HTMLLIElement>(null);
  const stick = useRef(true);

  // Follow new output while the reader is at the bottom; leave them be when they scrolled up.
  useEffect(() => {
    const scroller = end.current?.closest(".main");
    if (!scroller) return;
    const onScroll = () => {
      stick.current = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    };
    scroller.addEventListener("scroll", onScroll, { passive: true });
    return () => scroller.removeEventListener("scroll", onScroll);
  }, []);
  useLayoutEffect(() => {
    if (stick.current) end.current?.scrollIntoView({ block: "end" });
  }, [rows]);

  if (rows.length === 0) return <p className="empty muted">{empty}</p>;
  const hidden = Math.max(0, rows.length - shown);
  const lastError = [...items].reverse().find((i) => i.kind === "error")?.id;
  return (
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
          <RowView item={r.item} part={r.part} retry={r.item.id === lastError ? onRetry : undefined} />
        </li>
      ))}
      <li ref={end} aria-hidden="true" className="end" />
    </ol>
  );
}

const RowView = memo(function RowView({ item, part, retry }: { item: Item; part?: Part | undefined; retry?: (() => void) | undefined }) {
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
    case "progress":
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
      return (
        <div className="turn-footer muted small" aria-label="Metered usage">
          Metered by den: {u.requests} model {u.requests === 1 ? "request" : "requests"} ·{" "}
          {(u.inputTokens + u.cacheReadTokens + u.cacheWriteTokens).toLocaleString()} in /{" "}
          {(u.outputTokens + u.reasoningTokens).toLocaleString()} out tokens · ${u.costUsd.toFixed(4)}
        </div>
      );
    }
    case "turn": {
      const t = item.tokens;
      return (
        <div className="turn-footer muted small">
          {item.outcome === "completed" ? "Done" : item.outcome === "aborted" ? "Stopped" : item.outcome === "failed" ? "Failed" : "Interrupted"}
          {" · "}
          {(t.input + t.cacheRead).toLocaleString()} in / {(t.output + t.reasoning).toLocaleString()} out tokens · ${item.cost.toFixed(4)}
          {item.error ? ` · ${item.error}` : ""}
          {item.error && needsKey(item.error) && (
            <>
              {" · "}
              <Link href="/settings#providers">Add a key</Link>
            </>
          )}
          {item.error && overBudget(item.error) && (
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

/** den's gateway refused a model request past the monthly budget (its wording, see gateway.rs). */
function overBudget(message: string): boolean {
  return /monthly model budget/.test(message);
}

/** den's gateway refused a model request for want of a key (its wording, see gateway.rs). */
function needsKey(message: string): boolean {
  return /no key for provider/.test(message);
}
