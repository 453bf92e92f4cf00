// A scripted model for the browser tests: speaks OpenAI chat-completions streaming (and, for
// text-only turns, Anthropic Messages streaming at /v1/messages) on 127.0.0.1 and replays queued
// turns, like den-test-support's ScriptedModel (which is Rust and in-process, so not usable from
// here). Each agent request (one offering tools) takes the next turn; OpenCode's side requests
// (titles, summaries) get a short fixed text. Every request is recorded with the key it carried;
// `requireKey(key)` makes any other key get the provider's 401.
import { createServer } from "node:http";

export const MODEL = "scripted-model";
let nextCall = 1;

/**
 * A turn's steps: { text: ["pie", "ces"], delayMs? } streams text; { tool: "write",
 * args: {...} } calls a tool; { hold: promise } waits (a slow stream the test controls).
 */
export async function startScriptedModel() {
  const turns = [];
  const requests = [];
  let requiredKey = null;
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const json = body ? JSON.parse(body) : {};
    const agent = Array.isArray(json.tools) && json.tools.length > 0;
    const anthropic = req.url === "/v1/messages";
    const key = req.headers["x-api-key"] ?? req.headers.authorization?.replace(/^Bearer /, "") ?? null;
    requests.push({ agent, body: json, key, api: anthropic ? "anthropic" : "openai" });
    if (requiredKey !== null && key !== requiredKey) {
      res.writeHead(401, { "Content-Type": "application/json" });
      res.end(
        JSON.stringify(
          anthropic
            ? { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } }
            : { error: { message: "Incorrect API key provided", type: "invalid_request_error", param: null, code: "invalid_api_key" } },
        ),
      );
      return;
    }
    const turn = agent ? (turns.shift() ?? [{ text: ["(no scripted turn left)"] }]) : [{ text: ["Scripted session"] }];
    if (turn.error) {
      // { error: { status, message } }: the provider refuses the request.
      res.writeHead(turn.error.status, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ error: { message: turn.error.message, type: "invalid_request_error", param: null, code: null } }));
      return;
    }
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    if (anthropic) return anthropicText(res, json.model, turn);
    const chunk = (delta, finish = null) =>
      res.write(
        `data: ${JSON.stringify({ id: "chatcmpl-scripted", object: "chat.completion.chunk", created: 0, model: MODEL, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`,
      );
    chunk({ role: "assistant", content: "" });
    let tools = 0;
    for (const step of turn) {
      if (res.destroyed) return;
      if (step.hold) await step.hold;
      for (const piece of step.text ?? []) {
        chunk({ content: piece });
        if (step.delayMs) await new Promise((r) => setTimeout(r, step.delayMs)); // the stream's pace, not synchronisation
      }
      if (step.tool) {
        chunk({ tool_calls: [{ index: tools, id: `call_${nextCall++}`, type: "function", function: { name: step.tool, arguments: "" } }] });
        chunk({ tool_calls: [{ index: tools, function: { arguments: JSON.stringify(step.args) } }] });
        tools++;
      }
    }
    chunk({}, tools > 0 ? "tool_calls" : "stop");
    res.write(
      `data: ${JSON.stringify({ id: "chatcmpl-scripted", object: "chat.completion.chunk", created: 0, model: MODEL, choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } })}\n\ndata: [DONE]\n\n`,
    );
    res.end();
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    baseUrl: `http://127.0.0.1:${server.address().port}/v1`,
    push: (turn) => turns.push(turn),
    requireKey: (key) => (requiredKey = key),
    /** Drops turns (and a required key) a previous test left, so each test starts from its own script. */
    clear: () => {
      turns.length = 0;
      requiredKey = null;
    },
    requests,
    close: () =>
      new Promise((r) => {
        server.close(r);
        // A held reply would otherwise keep the server open forever.
        server.closeAllConnections();
      }),
  };
}

/** A gate a turn can wait on: `gate.promise` in a step, `gate.open()` from the test. */
export function gate() {
  let open;
  const promise = new Promise((r) => (open = r));
  return { promise, open };
}

/** A text-only turn in Anthropic's Messages streaming format (10 tokens in, 5 out). */
function anthropicText(res, model, turn) {
  const event = (type, data) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  event("message_start", {
    message: { id: "msg_scripted", type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 10, output_tokens: 1 } },
  });
  event("content_block_start", { index: 0, content_block: { type: "text", text: "" } });
  for (const step of turn) for (const piece of step.text ?? []) event("content_block_delta", { index: 0, delta: { type: "text_delta", text: piece } });
  event("content_block_stop", { index: 0 });
  event("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 5 } });
  event("message_stop", {});
  res.end();
}
