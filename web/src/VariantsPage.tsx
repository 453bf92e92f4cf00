// "Try N variants": the forks side by side, each with its live state and its changes (the
// session's own changes view, refetched as each variant's turns end).
import { ChangesPanel } from "./ChangesPanel";
import { Link } from "./router";
import { useSessions } from "./sessions";
import { useSessionStream } from "./useSessionStream";

export function VariantsPage({ ids, of }: { ids: string[]; of: string | null }) {
  return (
    <div className="variants">
      <header className="session-head">
        <h1>Variants</h1>
        {of && <Link href={`/s/${of}`}>Back to the source session</Link>}
      </header>
      <div className="variant-grid" style={{ gridTemplateColumns: `repeat(${Math.max(ids.length, 1)}, minmax(18rem, 1fr))` }}>
        {ids.map((id) => (
          <Variant key={id} id={id} />
        ))}
      </div>
    </div>
  );
}

function Variant({ id }: { id: string }) {
  const { sessions } = useSessions();
  const { transcript: t } = useSessionStream(id, () => undefined);
  const listed = sessions.find((s) => s.id === id);
  const title = t.title ?? listed?.title ?? id;
  // The variant's own turns are those after the pause its fork history ends with.
  let since = 0;
  t.items.forEach((item, i) => {
    if (item.kind === "paused") since = i + 1;
  });
  const own = t.items.slice(since).filter((i) => i.kind === "turn");
  const last = own[own.length - 1];
  const state =
    t.turn !== null ? "working" : t.status === "error" || (last?.kind === "turn" && last.outcome !== "completed") ? "failed" : last ? "done" : "starting";
  // The variant's last answer, to compare with the others' beside its changes.
  const answer = [...t.items.slice(since)].reverse().find((i) => i.kind === "assistant");
  const reply =
    answer?.kind === "assistant"
      ? answer.parts
          .filter((p) => p.kind === "text")
          .map((p) => (p.kind === "text" ? p.text : ""))
          .join("")
          .slice(0, 600)
      : "";
  return (
    <section className="variant" aria-label={`Variant ${title}`}>
      <h2>
        <Link href={`/s/${id}`}>{title}</Link>
      </h2>
      <p className="muted small" aria-label="Variant state">
        {state}
      </p>
      {reply && <p className="variant-reply">{reply}</p>}
      <ChangesPanel id={id} summary={t.diff} pull={null} onPull={() => undefined} />
    </section>
  );
}
