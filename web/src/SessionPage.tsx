import { useEffect, useRef, useState } from "react";
import { ApiError, api } from "./api";
import { AnswerContext } from "./AskCard";
import { ChangesPanel } from "./ChangesPanel";
import { Composer } from "./Composer";
import { ConfirmDialog } from "./ConfirmDialog";
import { ModelPicker } from "./ModelPicker";
import { QueuedPrompts } from "./QueuedPrompts";
import { SessionSharing } from "./SessionSharing";
import { useTurnNotifications } from "./notifications";
import { Link, navigate } from "./router";
import { createdWithPrompt, removed, setWaiting, setWorking, upsert, useSessions } from "./sessions";
import { TerminalPanel } from "./TerminalPanel";
import { Transcript } from "./Transcript";
import type { ApprovalMode, AskReply, PullRequest, Session } from "./types";
import { useFollow } from "./useFollow";
import { useSessionStream, type Connection } from "./useSessionStream";
import { shortRepo } from "./util";

const CONNECTION_LABEL: Record<Connection, string> = {
  connecting: "Connecting…",
  replaying: "Loading history…",
  live: "Live",
  reconnecting: "Reconnecting…",
  closed: "Offline",
};

/** The sandbox's state, in words (the agent's is told apart: see `agentState`). */
const SANDBOX_LABEL: Record<Session["status"], string> = {
  idle: "not started",
  starting: "starting",
  running: "up",
  paused: "paused",
  error: "failed",
};

type AgentState = "working" | "waiting" | "idle" | "failed";

export function SessionPage({ id }: { id: string }) {
  const [session, setSession] = useState<Session | null>(null);
  const [missing, setMissing] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  // The model the next prompt asks for (the session's own until the person picks another).
  const [nextModel, setNextModel] = useState<{ id: string; locked: boolean }>({ id: "", locked: false });
  const [draft, setDraft] = useState("");
  // Prompts on their way to den: sent one after another, so a follow-up typed while the
  // previous is in flight is sent after it, never dropped.
  const [inFlight, setInFlight] = useState(0);
  const sendChain = useRef<Promise<unknown>>(Promise.resolve());
  // The prompt den accepted to run now, until its turn starts (the agent is working from Enter on).
  // ("first": the prompt the session was created with, whose id den does not return.)
  // `from`: the transcript's length when it was sent (only a failure after it ends the wait).
  const [awaiting, setAwaiting] = useState<{ id: string; from: number } | null>(() => (createdWithPrompt.delete(id) ? { id: "first", from: 0 } : null));
  const follow = useFollow();
  const [renaming, setRenaming] = useState<string | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [showChanges, setShowChanges] = useState(false);
  const [showTerminal, setShowTerminal] = useState(false);
  const [pull, setPull] = useState<PullRequest | null>(null);
  const { sessions } = useSessions();
  const { transcript: t, connection } = useSessionStream(id, setNotice);
  const itemCount = useRef(0);
  itemCount.current = t.items.length;

  // The agent's state, apart from the sandbox's: working from Enter until its turn ends.
  const lastItem = t.items[t.items.length - 1];
  const awaitedDone =
    awaiting !== null &&
    (t.turn === awaiting.id ||
      (awaiting.id === "first" && (t.turn !== null || t.items.some((i) => i.kind === "turn"))) ||
      t.items.some((i) => i.id === `turn-${awaiting.id}`) ||
      t.items.slice(awaiting.from).some((i) => i.kind === "error" || (i.kind === "progress" && i.steps.some((s) => s.state === "failed"))));
  useEffect(() => {
    if (awaitedDone) setAwaiting(null);
  }, [awaitedDone]);
  const working = inFlight > 0 || t.turn !== null || (awaiting !== null && !awaitedDone);
  const lastTurn = [...t.items].reverse().find((i) => i.kind === "turn" || i.kind === "user" || i.kind === "error");
  // Waiting for the person (a question or a permission ask) comes first: the agent cannot go on.
  const waiting = t.waiting > 0;
  const agent: AgentState = waiting
    ? "waiting"
    : working
    ? "working"
    : t.status === "error" || lastTurn?.kind === "error" || (lastTurn?.kind === "turn" && lastTurn.outcome === "failed")
      ? "failed"
      : "idle";
  useEffect(() => {
    setWorking(id, working);
    return () => setWorking(id, false);
  }, [id, working]);
  useEffect(() => {
    setWaiting(id, waiting);
    return () => setWaiting(id, false);
  }, [id, waiting]);

  // What a screen reader hears: a turn starting, ending, failing (never each streamed delta).
  const [announcement, setAnnouncement] = useState("");
  const previousAgent = useRef<AgentState | null>(null);
  useEffect(() => {
    const before = previousAgent.current;
    previousAgent.current = agent;
    if (before === null || before === agent || connection !== "live") return;
    if (agent === "waiting") setAnnouncement("The agent waits for your answer.");
    else if (agent === "working") setAnnouncement("The agent is working.");
    else if (agent === "failed") setAnnouncement(`The turn failed${lastItem?.kind === "error" ? `: ${lastItem.message}` : "."}`);
    else setAnnouncement(lastTurn?.kind === "turn" && lastTurn.outcome === "aborted" ? "The turn was stopped." : "The agent finished.");
    // Announce on changes of state only (not on every new item), so the items are left out.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [agent, connection]);
  const seenTitle = t.title ?? sessions.find((s) => s.id === id)?.title ?? session?.title ?? "A session";
  const marker = useTurnNotifications(agent, connection === "live", seenTitle, lastItem?.kind === "error" ? lastItem.message : undefined);

  useEffect(() => {
    api.session(id).then(setSession, (e: unknown) => {
      if (e instanceof ApiError && (e.status === 404 || e.status === 400)) setMissing(true);
      else setLoadError((e as Error).message);
    });
  }, [id]);

  // The pull request's state is GitHub's: read it now, when the tab comes back, and each minute.
  useEffect(() => {
    let current = true;
    const refresh = () =>
      api.pullRequest(id).then(
        (p) => current && setPull(p),
        // None yet (404), or no GitHub for this session (409): no link to show.
        () => current && setPull(null),
      );
    void refresh();
    const timer = setInterval(() => void refresh(), 60_000);
    window.addEventListener("focus", refresh);
    return () => {
      current = false;
      clearInterval(timer);
      window.removeEventListener("focus", refresh);
    };
  }, [id]);

  if (missing)
    return (
      <div className="empty">
        <h1>Session not found</h1>
        <p className="muted">It does not exist, was deleted, or belongs to someone else.</p>
        <button onClick={() => navigate("/")}>Go home</button>
      </div>
    );
  if (loadError)
    return (
      <div className="empty" role="alert">
        <h1>Could not load this session</h1>
        <p>{loadError}</p>
      </div>
    );
  if (!session) return <p className="empty muted" aria-busy="true">Loading session…</p>;

  // The freshest word on the session: its own events, else the live list, else what we loaded.
  const listed = sessions.find((s) => s.id === id);
  const status = t.status ?? listed?.status ?? session.status;
  const title = t.title ?? listed?.title ?? session.title;
  const running = t.turn !== null;
  document.title = `${marker}${waiting ? "? " : working ? "● " : ""}${title} · den`;
  const approvalMode = t.approvalMode ?? session.approvalMode;

  /** Runs an action; a failure is shown as the notice. Whether it succeeded. */
  const act = async (f: () => Promise<unknown>) => {
    setNotice(null);
    try {
      await f();
      return true;
    } catch (e) {
      setNotice((e as Error).message);
      return false;
    }
  };
  /** Sends a prompt after any still in flight. From the box: the box empties at once, and gets the words back if den refuses them. */
  const prompt = (text: string, fromDraft: boolean) => {
    if (nextModel.locked) {
      setNotice("That model is locked: add its key in Settings → Providers, or pick another.");
      return;
    }
    if (fromDraft) setDraft("");
    follow.jump();
    setInFlight((n) => n + 1);
    const switching = nextModel.id && nextModel.id !== session.model ? nextModel.id : undefined;
    sendChain.current = sendChain.current.then(async () => {
      const sent = await act(async () => {
        const accepted = await api.prompt(id, text, switching);
        if (!accepted.queued) setAwaiting({ id: accepted.id, from: itemCount.current });
        if (switching) setSession((s) => s && { ...s, model: switching });
      });
      if (!sent && fromDraft) setDraft((d) => (d.trim() ? `${text}\n${d}` : text));
      setInFlight((n) => n - 1);
    });
  };
  const rename = async (next: string) => {
    setRenaming(null);
    if (!next.trim() || next === title) return;
    await act(async () => {
      const s = await api.rename(id, next.trim());
      setSession(s);
      upsert(s);
    });
  };
  const del = async () => {
    setConfirmDelete(false);
    await act(async () => {
      await api.remove(id);
      removed(id);
      navigate("/", true);
    });
  };
  const lastPrompt = [...t.items].reverse().find((i) => i.kind === "user");
  // What den's gateway metered for this session: the sum of its turns' usage events.
  const metered = t.items.reduce(
    (sum, i) => (i.kind === "usage" ? { requests: sum.requests + i.usage.requests, cost: sum.cost + i.usage.costUsd } : sum),
    { requests: 0, cost: 0 },
  );
  const stop = () => void act(() => api.control(id, "abort"));
  const answer = (ask: string, reply: AskReply) => api.answer(id, ask, reply);
  // The session's failure, unless the transcript already tells it (one failure, shown once).
  const statusError = status === "error" ? (t.error ?? session.error) : null;
  // The last start failed at the clone: retrying, resuming or prompting repeats the same failure
  // (the repository went away, or den may no longer read it), so only what helps is offered.
  const lastProgress = [...t.items].reverse().find((i) => i.kind === "progress");
  const cloneFailed =
    status === "error" && lastProgress?.kind === "progress" && lastProgress.steps.some((s) => s.step === "clone" && s.state === "failed");
  const toldInTranscript =
    statusError !== null &&
    t.items.some((i) => (i.kind === "error" && i.message === statusError) || (i.kind === "progress" && i.steps.some((s) => s.state === "failed" && s.detail === statusError)));

  return (
    <div className="session">
      <header className="session-head">
        <div className="session-ident">
          <div className="session-titleline">
            <span className={`dot ${waiting ? "waiting" : working ? "working" : status}`} role="img" aria-label={`Sandbox: ${status}`} title={`Sandbox ${SANDBOX_LABEL[status]}`} />
            {renaming !== null ? (
              <input
                className="rename"
                aria-label="Session title"
                value={renaming}
                autoFocus
                onChange={(e) => setRenaming(e.target.value)}
                onKeyDown={(e) => {
                  if (e.key === "Enter") e.currentTarget.blur();
                  if (e.key === "Escape") {
                    // Cancel: the blur that follows must not save.
                    e.currentTarget.dataset.cancelled = "1";
                    setRenaming(null);
                  }
                }}
                onBlur={(e) => void (e.currentTarget.dataset.cancelled ? setRenaming(null) : rename(renaming))}
              />
            ) : (
              <h1 className="session-title">{title}</h1>
            )}
          </div>
          <div className="session-meta">
            <span className="status-text" aria-label="State">
              Sandbox {SANDBOX_LABEL[status]} · <span className={`agent ${agent}`}>Agent {agent}</span>
            </span>
            <span className="muted small repo" title={session.repository}>
              {shortRepo(session.repository)} · {session.workBranch} · {session.model}
            </span>
            {metered.requests > 0 && (
              <span className="muted small" aria-label="Session usage" title="Metered by den's gateway, title requests included">
                {metered.requests} model {metered.requests === 1 ? "request" : "requests"}
                {metered.cost > 0 ? ` · $${metered.cost.toFixed(4)}` : ""}
              </span>
            )}
            {pull && (
              <a className={`pull ${pull.state}`} href={pull.url} target="_blank" rel="noreferrer" aria-label={`Pull request #${pull.number}: ${pull.state}`}>
                PR #{pull.number} · {pull.state}
                {pull.draft && pull.state === "open" ? " (draft)" : ""}
              </a>
            )}
            <span className={`conn ${connection}`} role="status" aria-label={`Connection: ${CONNECTION_LABEL[connection]}`}>
              {CONNECTION_LABEL[connection]}
            </span>
          </div>
        </div>
        <div className="actions">
          {running && (
            <button onClick={stop} className="danger" title="Stops the running turn; queued prompts then run (Clear all removes them)">
              Stop
            </button>
          )}
          {/* A running turn (or one about to start) would refuse the pause: offer it once the agent is idle. */}
          {status === "running" && !working && <button onClick={() => void act(() => api.control(id, "pause"))}>Pause</button>}
          {(status === "paused" || status === "error") && !cloneFailed && (
            <button onClick={() => void act(() => api.control(id, "resume"))}>Resume</button>
          )}
          <label className="approval" title="Ask: file edits and shell commands wait for your answer. Auto: they run at once (the sandbox is the boundary).">
            <span className="approval-word">Approvals </span>
            <select
              aria-label="Approval mode"
              value={approvalMode}
              onChange={(e) => {
                const mode = e.target.value as ApprovalMode;
                void act(async () => setSession(await api.setApprovalMode(id, mode)));
              }}
            >
              <option value="auto">auto</option>
              <option value="ask">ask</option>
            </select>
          </label>
          <button onClick={() => setShowChanges(!showChanges)} aria-pressed={showChanges}>
            Changes{t.diff ? ` (${t.diff.files})` : ""}
          </button>
          <button
            className="terminal-button"
            onClick={() => setShowTerminal(!showTerminal)}
            aria-pressed={showTerminal}
            disabled={status !== "running" && !showTerminal}
            title={status === "running" ? "A shell in the session's sandbox" : "Resume the session to open a terminal"}
          >
            Terminal
          </button>
          <SessionSharing id={id} onError={setNotice} />
          <button onClick={() => setRenaming(title)}>Rename</button>
          <button onClick={() => setConfirmDelete(true)} className="danger-outline">
            Delete
          </button>
        </div>
      </header>
      {cloneFailed && (
        <p className="banner error" role="alert">
          den cannot clone this session&apos;s repository ({session.repository}), so trying again will not help. Delete this session, or{" "}
          <Link href="/">start a new session</Link> with another repository.
        </p>
      )}
      {statusError && !toldInTranscript && !cloneFailed && (
        <p className="banner error" role="alert">
          {statusError.replace(/[.\s]+$/, "")}. Send a prompt to try again, or Resume.
        </p>
      )}
      {notice && (
        <p className="banner error" role="alert">
          {notice}{" "}
          <button className="link" onClick={() => setNotice(null)} aria-label="Dismiss">
            ×
          </button>
        </p>
      )}
      {showTerminal && <TerminalPanel id={id} onClose={() => setShowTerminal(false)} />}
      {showChanges && <ChangesPanel id={id} summary={t.diff} pull={pull} onPull={setPull} onClose={() => setShowChanges(false)} />}
      <AnswerContext.Provider value={answer}>
      <Transcript
        items={t.items}
        onRetry={cloneFailed ? undefined : () => lastPrompt?.kind === "user" && prompt(lastPrompt.text, false)}
        working={working}
        contentRef={follow.ref}
        empty={
          connection === "live"
            ? status === "paused"
              ? "Paused. Send a prompt to resume."
              : "Nothing here yet. Send a prompt to start."
            : "Loading history…"
        }
      />
      </AnswerContext.Provider>
      {t.todos.length > 0 && (
        <section className="todos" aria-label="Todos">
          <h2>Todos</h2>
          <ul>
            {t.todos.map((todo, i) => (
              <li key={i} className={todo.status}>
                <span aria-hidden="true">{todo.status === "completed" ? "☑" : todo.status === "cancelled" ? "☒" : todo.status === "in_progress" ? "◐" : "☐"}</span> {todo.content}
              </li>
            ))}
          </ul>
        </section>
      )}
      <div className="session-model">
        <ModelPicker
          label="Model for the next prompt"
          value={nextModel.id || session.model}
          onChange={(model, locked) => setNextModel({ id: model, locked })}
        />
      </div>
      {/* Pinned to the bottom: the way back to the end, the waiting prompts, the prompt box. */}
      <div className="session-composer">
        {!follow.following && (
          <button className="jump" onClick={follow.jump}>
            ↓ Jump to latest
          </button>
        )}
        {t.queue.length > 0 && (
          <QueuedPrompts
            items={t.queue}
            onEdit={(item, text) => act(() => api.editQueued(id, item, text))}
            onRemove={(item) => void act(() => api.dequeue(id, item))}
            onClear={() => void act(() => api.clearQueue(id))}
          />
        )}
        <Composer
          label="Prompt"
          value={draft}
          onChange={setDraft}
          onSend={() => draft.trim() && prompt(draft.trim(), true)}
          placeholder={running ? "Send a follow-up (it queues)…" : status === "paused" ? "Send a message to resume…" : "Ask or build anything…"}
          sendLabel={running ? "Queue" : "Send"}
        />
      </div>
      <div className="visually-hidden" role="status" aria-live="polite" aria-label="Agent announcements">
        {announcement}
      </div>
      {confirmDelete && (
        <ConfirmDialog
          title="Delete this session?"
          body="Its history, sandbox and snapshots are deleted. This cannot be undone."
          confirm="Delete"
          onConfirm={() => void del()}
          onCancel={() => setConfirmDelete(false)}
        />
      )}
    </div>
  );
}
