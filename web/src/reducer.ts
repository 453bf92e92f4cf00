// The session transcript, built from the session's event stream alone.
//
// Pure: `apply(state, events)` returns a new state and never mutates its input, so React can
// compare parts by identity and re-render only what changed. Events carry a per-session `seq`
// (1, 2, 3, … with no gap): anything at or below the last applied seq is a duplicate and is
// dropped; anything beyond the next one is held until the gap fills, so the transcript is the
// same whatever order or how many times the events arrive.
import type {
  ApprovalMode,
  AskClosed,
  DiffSummary,
  PermissionAsk,
  QuestionAsk,
  ProgressStep,
  QueuedPrompt,
  SequencedEvent,
  SessionStatus,
  StepState,
  Todo,
  TokenUsage,
  ToolCall,
  TurnOutcome,
  UsageTotals,
} from "./types";
import type { PauseReason } from "./types";

export type Part =
  | { kind: "text" | "reasoning"; id: string; text: string }
  | { kind: "tool"; id: string; call: ToolCall };

export type Item =
  | { kind: "user"; id: string; text: string; model?: string | null }
  | { kind: "assistant"; id: string; parts: Part[] }
  | { kind: "progress"; id: string; at: string; steps: { step: ProgressStep; state: StepState; detail?: string | null }[] }
  /** The session was paused (by a person, for idleness, or by den stopping): its sandbox is gone, its work kept. */
  | { kind: "paused"; id: string; at: string; reason?: PauseReason | null }
  | { kind: "error"; id: string; code: string; message: string }
  | { kind: "usage"; id: string; usage: UsageTotals }
  /** The agent waits for the person: a permission ask or questions, pending until `closed`. */
  | { kind: "ask"; id: string; ask: { kind: "permission"; permission: PermissionAsk } | { kind: "question"; question: QuestionAsk }; closed: AskClosed | null }
  | {
      kind: "turn";
      id: string;
      outcome: TurnOutcome;
      tokens: TokenUsage;
      cost: number;
      error?: string | null;
    };

export interface Transcript {
  /** The highest seq applied; the next connection asks for events after it. */
  lastSeq: number;
  /** Events that arrived ahead of a gap, by seq. */
  pending: Map<number, SequencedEvent>;
  items: Item[];
  status: SessionStatus | null;
  error: string | null;
  title: string | null;
  todos: Todo[];
  queue: QueuedPrompt[];
  /** The id of the running turn, if one runs. */
  turn: string | null;
  /** Totals of the session's changes as of the last turn (`diff_changed`). */
  diff: DiffSummary | null;
  /** The session's approval mode, once an event changed it (else the session's own). */
  approvalMode: ApprovalMode | null;
  /** How many asks and questions wait for the person. */
  waiting: number;
}

export const empty = (): Transcript => ({
  lastSeq: 0,
  pending: new Map(),
  items: [],
  status: null,
  error: null,
  title: null,
  todos: [],
  queue: [],
  turn: null,
  diff: null,
  approvalMode: null,
  waiting: 0,
});

/** Applies a batch of events (replayed or live, in any order, possibly repeated). */
export function apply(state: Transcript, events: readonly SequencedEvent[]): Transcript {
  let next = state;
  let pending = state.pending;
  let copied = false;
  const own = () => {
    if (!copied) pending = new Map(pending);
    copied = true;
    return pending;
  };
  for (const ev of events) {
    if (ev.seq <= next.lastSeq) continue;
    if (ev.seq > next.lastSeq + 1) {
      own().set(ev.seq, ev);
      continue;
    }
    next = applyOne(next, ev);
    // Drain whatever this event made contiguous.
    for (let n = pending.get(next.lastSeq + 1); n; n = pending.get(next.lastSeq + 1)) {
      own().delete(n.seq);
      next = applyOne(next, n);
    }
  }
  if (copied) for (const seq of pending.keys()) if (seq <= next.lastSeq) pending.delete(seq);
  return next.pending === pending ? next : { ...next, pending };
}

/** True when events are held behind a gap (the connection should resync from `lastSeq`). */
export const hasGap = (state: Transcript): boolean => state.pending.size > 0;

function applyOne(s: Transcript, { seq, at, event: e }: SequencedEvent): Transcript {
  const t: Transcript = { ...s, lastSeq: seq };
  switch (e.type) {
    case "status": {
      // A pause leaves a marker in the transcript (once, however often it is repeated).
      const items =
        e.status === "paused" && s.status !== "paused" ? [...t.items, { kind: "paused" as const, id: `paused-${seq}`, at, reason: e.pause ?? null }] : t.items;
      return { ...t, items, status: e.status, error: e.error ?? null };
    }
    case "renamed":
      return { ...t, title: e.title };
    case "todos":
      return { ...t, todos: e.todos };
    case "queue":
      return { ...t, queue: e.items };
    case "progress": {
      const last = t.items[t.items.length - 1];
      // One block per start attempt: an attempt ends when it is ready or a step failed, or
      // when anything else came between (a resume after a turn is a new attempt).
      const ended = last?.kind === "progress" && last.steps.some((x) => x.state === "failed" || (x.step === "ready" && x.state === "done"));
      if (last?.kind === "progress" && !ended) {
        const steps = last.steps.filter((x) => x.step !== e.step);
        const entry = { step: e.step, state: e.state, detail: e.detail ?? null };
        const at = last.steps.findIndex((x) => x.step === e.step);
        if (at >= 0) steps.splice(at, 0, entry);
        else steps.push(entry);
        return replaceLast(t, { ...last, steps });
      }
      const item: Item = {
        kind: "progress",
        id: `progress-${seq}`,
        at,
        steps: [{ step: e.step, state: e.state, detail: e.detail ?? null }],
      };
      return { ...t, items: [...t.items, item] };
    }
    case "message":
      if (t.items.some((i) => i.id === e.messageId)) return t;
      if (e.role === "user") {
        return { ...t, items: [...t.items, { kind: "user", id: e.messageId, text: e.text ?? "" }] };
      }
      return { ...t, items: [...t.items, { kind: "assistant", id: e.messageId, parts: [] }] };
    case "turn_started": {
      // The turn names the model that answers it; the transcript shows it beside the prompt.
      const model = e.model ?? null;
      const known = t.items.some((i) => i.kind === "user" && i.id === e.turnId);
      const items = known
        ? t.items.map((i) => (i.kind === "user" && i.id === e.turnId ? { ...i, model } : i))
        : [...t.items, { kind: "user" as const, id: e.turnId, text: e.prompt, model }];
      return { ...t, items, turn: e.turnId };
    }
    case "turn_usage": {
      // What den's gateway metered for the turn (title requests included).
      const id = `usage-${e.turnId}`;
      if (t.items.some((i) => i.id === id)) return t;
      return { ...t, items: [...t.items, { kind: "usage", id, usage: e.usage }] };
    }
    case "turn_finished": {
      const item: Item = {
        kind: "turn",
        id: `turn-${e.turnId}`,
        outcome: e.outcome,
        tokens: e.tokens,
        cost: e.cost,
        error: e.error ?? null,
      };
      return { ...t, items: [...t.items, item], turn: t.turn === e.turnId ? null : t.turn };
    }
    case "text_delta":
    case "reasoning_delta": {
      const kind = e.type === "text_delta" ? "text" : "reasoning";
      return updatePart(t, e.messageId, e.partId, (p) =>
        p && p.kind !== "tool" ? { ...p, text: p.text + e.delta } : { kind, id: e.partId, text: e.delta },
      );
    }
    case "part_text":
      // The part's complete text: replaces whatever deltas accumulated (some may be missing).
      return updatePart(t, e.messageId, e.partId, () => ({ kind: e.kind, id: e.partId, text: e.text }));
    case "tool": {
      const { type: _type, ...call } = e;
      return updatePart(t, e.messageId, e.partId, () => ({ kind: "tool", id: e.partId, call }));
    }
    case "error":
      return { ...t, items: [...t.items, { kind: "error", id: `error-${seq}`, code: e.code, message: e.message }] };
    case "diff_changed":
      return { ...t, diff: e.summary };
    case "agent":
      return t;
    case "permission_asked":
    case "question_asked": {
      if (t.items.some((i) => i.id === e.askId)) return t;
      const { type: _type, ...body } = e;
      const ask = e.type === "permission_asked" ? { kind: "permission" as const, permission: body as PermissionAsk } : { kind: "question" as const, question: body as QuestionAsk };
      return { ...t, items: [...t.items, { kind: "ask", id: e.askId, ask, closed: null }], waiting: t.waiting + 1 };
    }
    case "ask_closed": {
      const { type: _type, ...closed } = e;
      let opened = false;
      const items = t.items.map((i) => {
        if (i.kind !== "ask" || i.id !== e.askId || i.closed) return i;
        opened = true;
        return { ...i, closed };
      });
      return opened ? { ...t, items, waiting: Math.max(0, t.waiting - 1) } : t;
    }
    case "approval_mode_changed":
      return { ...t, approvalMode: e.mode };
  }
}

function replaceLast(t: Transcript, item: Item): Transcript {
  const items = t.items.slice();
  items[items.length - 1] = item;
  return { ...t, items };
}

function updatePart(t: Transcript, messageId: string, partId: string, f: (old: Part | undefined) => Part): Transcript {
  // Search from the end: the message being streamed is almost always the last item.
  let at = -1;
  for (let i = t.items.length - 1; i >= 0; i--) {
    if (t.items[i]!.id === messageId) {
      at = i;
      break;
    }
  }
  const items = t.items.slice();
  if (at < 0 || items[at]!.kind !== "assistant") {
    // A part before its message event (not expected, but never drop content).
    items.push({ kind: "assistant", id: messageId, parts: [f(undefined)] });
    return { ...t, items };
  }
  const msg = items[at] as Extract<Item, { kind: "assistant" }>;
  const parts = msg.parts.slice();
  const p = parts.findIndex((x) => x.id === partId);
  if (p >= 0) parts[p] = f(parts[p]);
  else parts.push(f(undefined));
  items[at] = { ...msg, parts };
  return { ...t, items };
}

/** Why a session paused, as the transcript's marker says it ("idle for 10 minutes"). */
export function pauseReasonText(reason: PauseReason | null | undefined): string | null {
  switch (reason?.by) {
    case "idle":
      return `idle for ${reason.minutes} minute${reason.minutes === 1 ? "" : "s"}`;
    case "person":
      return "paused by you";
    case "den_stopped":
      return "den stopped";
    default:
      return null;
  }
}
