import { describe, expect, test } from "vitest";
import { apply, empty, hasGap, pauseReasonText, type Transcript } from "./reducer";
import type { SequencedEvent, SessionEvent } from "./types";

const at = "2026-01-01T00:00:00Z";
const seqd = (events: SessionEvent[]): SequencedEvent[] => events.map((event, i) => ({ seq: i + 1, at, event }));

const tool = (state: "pending" | "running" | "completed" | "failed", output: string | null = null): SessionEvent => ({
  type: "tool",
  messageId: "a1",
  partId: "p2",
  callId: "c1",
  tool: "write",
  state,
  title: "hello.txt",
  input: { filePath: "hello.txt" } as unknown as Record<string, never>,
  output,
  error: null,
  diff: state === "completed" ? "--- a/hello.txt\n+++ b/hello.txt\n@@\n+hi\n" : null,
});

// A turn as den streams it: progress, the prompt, streamed text, a tool call, the end.
const turn = seqd([
  { type: "status", status: "starting", error: null },
  { type: "progress", step: "sandbox", state: "started", detail: null },
  { type: "progress", step: "sandbox", state: "done", detail: null },
  { type: "progress", step: "clone", state: "done", detail: null },
  { type: "progress", step: "ready", state: "done", detail: null },
  { type: "status", status: "running", error: null },
  { type: "message", messageId: "u1", role: "user", text: "write hello" },
  { type: "turn_started", turnId: "u1", prompt: "write hello" },
  { type: "message", messageId: "a1", role: "assistant", text: null },
  { type: "reasoning_delta", messageId: "a1", partId: "p0", delta: "thinking" },
  { type: "text_delta", messageId: "a1", partId: "p1", delta: "Sure, " },
  { type: "text_delta", messageId: "a1", partId: "p1", delta: "writing it." },
  tool("running"),
  tool("completed", "Wrote file"),
  { type: "todos", todos: [{ content: "write hello", status: "completed", priority: null }] },
  {
    type: "turn_finished",
    turnId: "u1",
    outcome: "completed",
    tokens: { input: 10, output: 5, reasoning: 0, cacheRead: 0, cacheWrite: 0 },
    cost: 0.001,
    error: null,
  },
]);

// What a user sees: compares everything but the gap buffer.
const view = (t: Transcript) => ({ ...t, pending: t.pending.size });

describe("event reducer", () => {
  test("builds the transcript of a turn", () => {
    const t = apply(empty(), turn);
    expect(t.lastSeq).toBe(turn.length);
    expect(t.status).toBe("running");
    expect(t.turn).toBeNull();
    expect(t.items.map((i) => i.kind)).toEqual(["progress", "user", "assistant", "turn"]);
    const progress = t.items[0];
    expect(progress?.kind === "progress" && progress.steps.map((s) => `${s.step}:${s.state}`)).toEqual([
      "sandbox:done",
      "clone:done",
      "ready:done",
    ]);
    const a = t.items[2];
    if (a?.kind !== "assistant") throw new Error("assistant expected");
    expect(a.parts.map((p) => p.kind)).toEqual(["reasoning", "text", "tool"]);
    expect(a.parts[1]).toMatchObject({ text: "Sure, writing it." });
    expect(a.parts[2]).toMatchObject({ call: { state: "completed", output: "Wrote file" } });
    expect(t.todos).toHaveLength(1);
  });

  test("a running turn is tracked until it finishes", () => {
    const t = apply(empty(), turn.slice(0, 12));
    expect(t.turn).toBe("u1");
    const a = t.items[2];
    expect(a?.kind === "assistant" && a.parts[1]).toMatchObject({ text: "Sure, writing it." });
  });

  test("replay then live, split anywhere, equals one pass", () => {
    const whole = apply(empty(), turn);
    for (let cut = 0; cut <= turn.length; cut++) {
      const t = apply(apply(empty(), turn.slice(0, cut)), turn.slice(cut));
      expect(view(t)).toEqual(view(whole));
    }
  });

  test("duplicates are dropped: a reconnect that replays what we have changes nothing", () => {
    const once = apply(empty(), turn);
    const twice = apply(apply(empty(), turn.slice(0, 10)), turn.slice(5));
    expect(view(twice)).toEqual(view(once));
    expect(apply(once, turn)).toBe(once);
  });

  test("out-of-order deliveries are held until the gap fills", () => {
    const shuffled = [...turn].reverse();
    const t = apply(empty(), shuffled.slice(0, 8));
    expect(t.lastSeq).toBe(0);
    expect(hasGap(t)).toBe(true);
    const done = apply(t, shuffled.slice(8));
    expect(hasGap(done)).toBe(false);
    expect(view(done)).toEqual(view(apply(empty(), turn)));
  });

  test("part_text replaces accumulated deltas, even when some were missed", () => {
    const events = seqd([
      { type: "message", messageId: "a1", role: "assistant", text: null },
      { type: "text_delta", messageId: "a1", partId: "p1", delta: "Hel" },
      { type: "part_text", messageId: "a1", partId: "p1", kind: "text", text: "Hello, world" },
    ]);
    const t = apply(empty(), events);
    const a = t.items[0];
    expect(a?.kind === "assistant" && a.parts).toEqual([{ kind: "text", id: "p1", text: "Hello, world" }]);
  });

  test("tool lifecycle updates one chip in place", () => {
    const events = seqd([
      { type: "message", messageId: "a1", role: "assistant", text: null },
      tool("pending"),
      tool("running"),
      { ...tool("failed"), error: "disk full" } as SessionEvent,
    ]);
    const t = apply(empty(), events);
    const a = t.items[0];
    if (a?.kind !== "assistant") throw new Error("assistant expected");
    expect(a.parts).toHaveLength(1);
    expect(a.parts[0]).toMatchObject({ kind: "tool", call: { state: "failed", error: "disk full" } });
  });

  test("a turn without a user message event still shows the prompt, once", () => {
    const t = apply(empty(), seqd([{ type: "turn_started", turnId: "t9", prompt: "go" }]));
    expect(t.items).toEqual([{ kind: "user", id: "t9", text: "go", model: null }]);
  });

  test("a turn's metered usage is shown once, however often it is replayed", () => {
    const usage = {
      requests: 2,
      inputTokens: 20,
      outputTokens: 10,
      reasoningTokens: 0,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      costUsd: 0.0002,
    };
    const event = { type: "turn_usage", turnId: "t1", usage } as const;
    const t = apply(apply(empty(), seqd([event])), seqd([event]));
    expect(t.items).toEqual([{ kind: "usage", id: "usage-t1", usage }]);
  });

  test("each turn shows the model that answers it", () => {
    const t = apply(
      empty(),
      seqd([
        { type: "message", messageId: "t1", role: "user", text: "one" },
        { type: "turn_started", turnId: "t1", prompt: "one", model: "opencode/big-pickle" },
        { type: "turn_started", turnId: "t2", prompt: "two", model: "anthropic/claude-opus-4-5-20251101" },
      ]),
    );
    expect(t.items.map((i) => (i.kind === "user" ? i.model : undefined))).toEqual([
      "opencode/big-pickle",
      "anthropic/claude-opus-4-5-20251101",
    ]);
  });

  test("errors, queue and renames", () => {
    const t = apply(
      empty(),
      seqd([
        { type: "queue", items: [{ id: "q1", text: "next" }] },
        { type: "renamed", title: "New name" },
        { type: "error", code: "prompt_failed", message: "model unavailable" },
        { type: "status", status: "error", error: "sandbox died" },
      ]),
    );
    expect(t.queue).toEqual([{ id: "q1", text: "next" }]);
    expect(t.title).toBe("New name");
    expect(t.items).toMatchObject([{ kind: "error", message: "model unavailable" }]);
    expect(t.error).toBe("sandbox died");
  });

  test("a start attempt is one block whatever the order of its steps", () => {
    const t = apply(
      empty(),
      seqd([
        { type: "progress", step: "clone", state: "started", detail: "/srv/git/demo" },
        { type: "progress", step: "clone", state: "done", detail: null },
        { type: "progress", step: "sandbox", state: "started", detail: null },
        { type: "progress", step: "sandbox", state: "done", detail: null },
        { type: "progress", step: "ready", state: "done", detail: null },
      ]),
    );
    expect(t.items).toHaveLength(1);
    expect(t.items[0]).toMatchObject({ steps: [{ step: "clone", state: "done" }, { step: "sandbox" }, { step: "ready" }] });
  });

  test("a second start attempt gets its own progress block", () => {
    const t = apply(
      empty(),
      seqd([
        { type: "progress", step: "sandbox", state: "done", detail: null },
        { type: "progress", step: "ready", state: "done", detail: null },
        { type: "status", status: "paused", error: null },
        { type: "progress", step: "sandbox", state: "started", detail: null },
        { type: "progress", step: "restore", state: "started", detail: "snapshot" },
      ]),
    );
    expect(t.items.filter((i) => i.kind === "progress")).toHaveLength(2);
  });

  test("a pause leaves one marker with its time, however often the status repeats", () => {
    const t = apply(
      empty(),
      seqd([
        { type: "status", status: "running", error: null },
        { type: "status", status: "paused", error: null },
        { type: "status", status: "paused", error: null },
        { type: "status", status: "running", error: null },
        { type: "status", status: "paused", error: null },
      ]),
    );
    const markers = t.items.filter((i) => i.kind === "paused");
    expect(markers).toHaveLength(2);
    expect(markers[0]).toMatchObject({ kind: "paused", at });
  });

  test("a pause marker says why: idle for N minutes, by the person, or den stopping", () => {
    const t = apply(
      empty(),
      seqd([
        { type: "status", status: "paused", error: null, pause: { by: "idle", minutes: 10 } },
        { type: "status", status: "running", error: null },
        { type: "status", status: "paused", error: null, pause: { by: "person" } },
        { type: "status", status: "running", error: null },
        { type: "status", status: "paused", error: null },
      ]),
    );
    const reasons = t.items.flatMap((i) => (i.kind === "paused" ? [pauseReasonText(i.reason)] : []));
    expect(reasons).toEqual(["idle for 10 minutes", "paused by you", null]);
    expect(pauseReasonText({ by: "den_stopped" })).toBe("den stopped");
  });

  test("the latest diff summary is kept, and adds nothing to the transcript", () => {
    const t = apply(
      empty(),
      seqd([
        { type: "diff_changed", summary: { files: 1, additions: 2, deletions: 0 } },
        { type: "diff_changed", summary: { files: 3, additions: 5, deletions: 1 } },
      ]),
    );
    expect(t.diff).toEqual({ files: 3, additions: 5, deletions: 1 });
    expect(t.items).toHaveLength(0);
  });

  test("5,000 events apply quickly", () => {
    const many: SessionEvent[] = [{ type: "message", messageId: "a1", role: "assistant", text: null }];
    for (let i = 0; i < 4999; i++) {
      many.push({ type: "text_delta", messageId: "a1", partId: `p${i % 50}`, delta: "word " });
    }
    const started = performance.now();
    const t = apply(empty(), seqd(many));
    expect(performance.now() - started).toBeLessThan(1000);
    const a = t.items[0];
    expect(a?.kind === "assistant" && a.parts).toHaveLength(50);
  });

  test("an ask is pending until it is closed, once, however often its events are replayed", () => {
    const ask = seqd([
      {
        type: "permission_asked",
        askId: "per_1",
        permission: "bash",
        command: "rm -rf build",
        file: null,
        diff: null,
        patterns: ["rm -rf build"],
        always: ["rm *"],
        expiresAt: at,
      },
      { type: "approval_mode_changed", mode: "ask", by: "alice" },
    ]);
    const pending = apply(empty(), ask);
    expect(pending.waiting).toBe(1);
    expect(pending.approvalMode).toBe("ask");
    const item = pending.items[0];
    expect(item?.kind === "ask" && item.ask.kind === "permission" && item.ask.permission.command).toBe("rm -rf build");
    const closed: SequencedEvent = { seq: 3, at, event: { type: "ask_closed", askId: "per_1", outcome: "rejected", by: "alice", message: "no", answers: null } };
    const done = apply(pending, [closed, closed]);
    expect(done.waiting).toBe(0);
    const after = done.items[0];
    expect(after?.kind === "ask" && after.closed?.outcome).toBe("rejected");
    // A replay from the start gives the same transcript.
    expect(view(apply(empty(), [...ask, closed, ...ask]))).toEqual(view(done));
  });
});
