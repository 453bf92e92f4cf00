//! The two streaming wire formats: OpenAI chat completions and Anthropic messages.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::model::script::{Gate, Step, Turn};

/// Tool call ids must be unique across a whole conversation, not only within one turn.
static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

/// One piece of a streamed reply.
#[derive(Clone, Debug)]
pub(crate) enum Frame {
    /// Ready-to-send SSE text (one or more complete events).
    Data(String),
    Hold(Gate),
}

fn next_call_id(prefix: &str) -> String {
    format!("{prefix}{}", NEXT_CALL.fetch_add(1, Ordering::Relaxed))
}

/// Splits a tool call's JSON arguments into two deltas so clients must accumulate them.
fn split_arguments(arguments: &Value) -> [String; 2] {
    let text = arguments.to_string();
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    [text[..cut].to_owned(), text[cut..].to_owned()]
}

pub(crate) fn openai_frames(turn: &Turn, model: &str) -> Vec<Frame> {
    let chunk = |delta: Value, finish: Value| {
        let body = json!({
            "id": "chatcmpl-scripted",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        Frame::Data(format!("data: {body}\n\n"))
    };
    let mut frames = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let mut tool_index = 0;
    for step in &turn.steps {
        match step {
            Step::Text(pieces) => frames.extend(
                pieces
                    .iter()
                    .map(|piece| chunk(json!({"content": piece}), Value::Null)),
            ),
            Step::ToolCall { name, arguments } => {
                let start = json!({"tool_calls": [{"index": tool_index, "id": next_call_id("call_"),
                    "type": "function", "function": {"name": name, "arguments": ""}}]});
                frames.push(chunk(start, Value::Null));
                for part in split_arguments(arguments) {
                    let delta = json!({"tool_calls": [{"index": tool_index,
                        "function": {"arguments": part}}]});
                    frames.push(chunk(delta, Value::Null));
                }
                tool_index += 1;
            }
            Step::Hold(gate) => frames.push(Frame::Hold(gate.clone())),
        }
    }
    let finish = if turn.has_tool_calls() {
        "tool_calls"
    } else {
        "stop"
    };
    frames.push(chunk(json!({}), json!(finish)));
    let usage = json!({
        "id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 0, "model": model,
        "choices": [],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    });
    frames.push(Frame::Data(format!("data: {usage}\n\ndata: [DONE]\n\n")));
    frames
}

pub(crate) fn openai_error(message: &str, status: u16) -> Value {
    json!({"error": {"message": message, "type": openai_error_type(status), "param": null,
        "code": null}})
}

fn openai_error_type(status: u16) -> &'static str {
    match status {
        401 => "invalid_request_error",
        429 => "rate_limit_exceeded",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

fn anthropic_event(name: &str, data: &Value) -> Frame {
    Frame::Data(format!("event: {name}\ndata: {data}\n\n"))
}

pub(crate) fn anthropic_frames(turn: &Turn, model: &str) -> Vec<Frame> {
    let start = json!({"type": "message_start", "message": {
        "id": "msg_scripted", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 1}}});
    let mut frames = vec![anthropic_event("message_start", &start)];
    let mut index = 0;
    for step in &turn.steps {
        match step {
            Step::Text(pieces) => {
                let block = json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "text", "text": ""}});
                frames.push(anthropic_event("content_block_start", &block));
                for piece in pieces {
                    let delta = json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "text_delta", "text": piece}});
                    frames.push(anthropic_event("content_block_delta", &delta));
                }
            }
            Step::ToolCall { name, arguments } => {
                let block = json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "tool_use", "id": next_call_id("toolu_"),
                        "name": name, "input": {}}});
                frames.push(anthropic_event("content_block_start", &block));
                for part in split_arguments(arguments) {
                    let delta = json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": part}});
                    frames.push(anthropic_event("content_block_delta", &delta));
                }
            }
            Step::Hold(gate) => {
                frames.push(Frame::Hold(gate.clone()));
                continue;
            }
        }
        let stop = json!({"type": "content_block_stop", "index": index});
        frames.push(anthropic_event("content_block_stop", &stop));
        index += 1;
    }
    let stop_reason = if turn.has_tool_calls() {
        "tool_use"
    } else {
        "end_turn"
    };
    let delta = json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
        "usage": {"output_tokens": 5}});
    frames.push(anthropic_event("message_delta", &delta));
    frames.push(anthropic_event(
        "message_stop",
        &json!({"type": "message_stop"}),
    ));
    frames
}

pub(crate) fn anthropic_error(message: &str, status: u16) -> Value {
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

fn responses_event(data: &Value) -> Frame {
    let name = data["type"].as_str().unwrap_or("message");
    Frame::Data(format!("event: {name}\ndata: {data}\n\n"))
}

/// OpenAI's Responses API stream (what `@ai-sdk/openai` reads): `response.created`, then per
/// text step a message item with `output_text` deltas, per tool call a `function_call` item
/// with argument deltas, and `response.completed` with the usage.
pub(crate) fn responses_frames(turn: &Turn, model: &str) -> Vec<Frame> {
    let response = |status: &str, output: &[Value], usage: Value| {
        json!({"id": "resp_scripted", "object": "response", "created_at": 0, "status": status,
            "model": model, "output": output, "incomplete_details": null, "usage": usage})
    };
    let mut frames = vec![
        responses_event(&json!({"type": "response.created", "sequence_number": 0,
            "response": response("in_progress", &[], Value::Null)})),
        responses_event(
            &json!({"type": "response.in_progress", "sequence_number": 1,
            "response": response("in_progress", &[], Value::Null)}),
        ),
    ];
    let mut output = Vec::new();
    for step in &turn.steps {
        let index = output.len();
        match step {
            Step::Text(pieces) => {
                let id = format!("msg_scripted_{index}");
                let item = json!({"id": id, "type": "message", "status": "in_progress",
                    "role": "assistant", "content": []});
                frames.push(responses_event(
                    &json!({"type": "response.output_item.added",
                    "output_index": index, "item": item}),
                ));
                frames.push(responses_event(
                    &json!({"type": "response.content_part.added",
                    "item_id": id, "output_index": index, "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": []}}),
                ));
                for piece in pieces {
                    frames.push(responses_event(
                        &json!({"type": "response.output_text.delta",
                        "item_id": id, "output_index": index, "content_index": 0,
                        "delta": piece, "logprobs": []}),
                    ));
                }
                let text: String = pieces.concat();
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                frames.push(responses_event(
                    &json!({"type": "response.output_text.done",
                    "item_id": id, "output_index": index, "content_index": 0, "text": text,
                    "logprobs": []}),
                ));
                frames.push(responses_event(
                    &json!({"type": "response.content_part.done",
                    "item_id": id, "output_index": index, "content_index": 0, "part": part}),
                ));
                let done = json!({"id": id, "type": "message", "status": "completed",
                    "role": "assistant", "content": [part]});
                frames.push(responses_event(
                    &json!({"type": "response.output_item.done",
                    "output_index": index, "item": done}),
                ));
                output.push(done);
            }
            Step::ToolCall { name, arguments } => {
                let id = format!("fc_scripted_{index}");
                let call_id = next_call_id("call_");
                let item = json!({"id": id, "type": "function_call", "status": "in_progress",
                    "call_id": call_id, "name": name, "arguments": ""});
                frames.push(responses_event(
                    &json!({"type": "response.output_item.added",
                    "output_index": index, "item": item}),
                ));
                for part in split_arguments(arguments) {
                    frames.push(responses_event(&json!({
                        "type": "response.function_call_arguments.delta",
                        "item_id": id, "output_index": index, "delta": part})));
                }
                let text = arguments.to_string();
                frames.push(responses_event(&json!({
                    "type": "response.function_call_arguments.done",
                    "item_id": id, "output_index": index, "arguments": text})));
                let done = json!({"id": id, "type": "function_call", "status": "completed",
                    "call_id": call_id, "name": name, "arguments": text});
                frames.push(responses_event(
                    &json!({"type": "response.output_item.done",
                    "output_index": index, "item": done}),
                ));
                output.push(done);
            }
            Step::Hold(gate) => frames.push(Frame::Hold(gate.clone())),
        }
    }
    let usage = json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15});
    frames.push(responses_event(&json!({"type": "response.completed",
        "response": response("completed", &output, usage)})));
    frames
}
