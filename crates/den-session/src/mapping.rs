//! OpenCode's events, translated into den's vocabulary for one turn at a time.
//!
//! OpenCode streams everything about every session of its server; the mapper keeps only events
//! of the session's own agent conversation, drops the server's global noise (heartbeats,
//! plugin and catalog events), and keeps unknown events of the conversation as
//! `SessionEvent::Agent` rather than losing them.

use std::collections::{HashMap, HashSet};

use den_opencode::{Event, Message, Part, ToolPart};
use den_protocol::events::{Role, SessionEvent, TextKind, Todo, TokenUsage, ToolCall, ToolState};
use serde_json::Value;

/// What a turn's events have told so far.
#[derive(Debug, Default)]
pub(crate) struct TurnMapper {
    agent_session_id: String,
    user_messages: HashSet<String>,
    assistant_messages: HashSet<String>,
    text_parts: HashMap<String, TextKind>,
    tool_states: HashMap<String, ToolCall>,
    usage: HashMap<String, (TokenUsage, f64)>,
    /// The error OpenCode reported for the turn, if any.
    pub(crate) error: Option<String>,
    /// OpenCode reported the turn aborted.
    pub(crate) aborted: bool,
    /// OpenCode reported the conversation idle: the turn is over.
    pub(crate) finished: bool,
    /// OpenCode reported the conversation busy with this turn. Until then an idle is a late
    /// echo of the previous turn (an aborted turn is followed by more than one), not this
    /// turn's end.
    busy: bool,
}

impl TurnMapper {
    pub(crate) fn new(agent_session_id: &str) -> Self {
        Self {
            agent_session_id: agent_session_id.to_owned(),
            ..Self::default()
        }
    }

    /// The agent conversation this turn belongs to.
    pub(crate) fn agent_session_id(&self) -> &str {
        &self.agent_session_id
    }

    /// Tokens and cost of the turn so far.
    pub(crate) fn usage(&self) -> (TokenUsage, f64) {
        self.usage.values().fold(
            (TokenUsage::default(), 0.0),
            |(mut sum, cost), (tokens, c)| {
                sum.input += tokens.input;
                sum.output += tokens.output;
                sum.reasoning += tokens.reasoning;
                sum.cache_read += tokens.cache_read;
                sum.cache_write += tokens.cache_write;
                (sum, cost + c)
            },
        )
    }

    /// den's events for one OpenCode event (often none).
    pub(crate) fn map(&mut self, event: Event) -> Vec<SessionEvent> {
        if event.session_id() != Some(self.agent_session_id.as_str()) {
            return Vec::new();
        }
        match event {
            Event::MessageUpdated { info, .. } => self.message(info),
            Event::MessagePartUpdated { part, .. } => self.part(part),
            Event::MessagePartDelta {
                message_id,
                part_id,
                field,
                delta,
                ..
            } => {
                if field != "text" || self.user_messages.contains(&message_id) {
                    return Vec::new();
                }
                match self.text_parts.get(&part_id) {
                    Some(TextKind::Reasoning) => vec![SessionEvent::ReasoningDelta {
                        message_id,
                        part_id,
                        delta,
                    }],
                    Some(TextKind::Text) | None => vec![SessionEvent::TextDelta {
                        message_id,
                        part_id,
                        delta,
                    }],
                }
            }
            Event::TodoUpdated { todos, .. } => vec![SessionEvent::Todos {
                todos: todos
                    .into_iter()
                    .map(|todo| Todo {
                        content: todo.content,
                        status: todo.status,
                        priority: Some(todo.priority),
                    })
                    .collect(),
            }],
            Event::SessionError { error, .. } => {
                let error = error
                    .map(|e| (e.name, e.data))
                    .unwrap_or_else(|| ("UnknownError".to_owned(), serde_json::Value::Null));
                if error.0 == "MessageAbortedError" {
                    // Before this turn is busy it is the echo of stopping an earlier one (den
                    // marks a stop of its own itself, when the agent answers it).
                    self.aborted |= self.busy;
                    return Vec::new();
                }
                let message = error
                    .1
                    .get("message")
                    .and_then(|m| m.as_str())
                    .map_or_else(|| error.0.clone(), str::to_owned);
                self.error = Some(message.clone());
                vec![SessionEvent::Error {
                    code: error.0,
                    message,
                }]
            }
            Event::SessionIdle { .. } => {
                // A turn den stopped ends at the next idle, busy or not.
                self.finished = self.busy || self.aborted;
                Vec::new()
            }
            // `session.idle` (the last event of a turn) ends the turn, not this status, so late
            // updates of the turn still belong to it.
            Event::SessionStatus {
                status:
                    den_opencode::SessionStatus::Retry {
                        attempt, message, ..
                    },
                ..
            } => {
                self.busy = true;
                vec![SessionEvent::Error {
                    code: "provider_retry".to_owned(),
                    message: format!("attempt {attempt}: {message}"),
                }]
            }
            Event::SessionStatus {
                status: den_opencode::SessionStatus::Busy,
                ..
            } => {
                self.busy = true;
                Vec::new()
            }
            Event::SessionStatus { .. } => Vec::new(),
            // Bookkeeping den does not show: the conversation's own metadata and echoes.
            Event::SessionCreated(_)
            | Event::SessionUpdated(_)
            | Event::SessionDiff { .. }
            | Event::MessagePartRemoved { .. }
            | Event::ServerConnected {}
            | Event::ServerHeartbeat {} => Vec::new(),
            other => {
                let kind = other.kind().to_owned();
                let properties = serde_json::to_value(&other)
                    .ok()
                    .and_then(|value| value.get("properties").cloned())
                    .unwrap_or(serde_json::Value::Null);
                vec![SessionEvent::Agent { kind, properties }]
            }
        }
    }

    fn message(&mut self, info: Message) -> Vec<SessionEvent> {
        match info {
            Message::User(user) => {
                // den announced the user's message itself when the prompt was sent.
                self.user_messages.insert(user.id);
                Vec::new()
            }
            Message::Assistant(assistant) => {
                let tokens = TokenUsage {
                    input: assistant.tokens.input as u64,
                    output: assistant.tokens.output as u64,
                    reasoning: assistant.tokens.reasoning as u64,
                    cache_read: assistant.tokens.cache.read as u64,
                    cache_write: assistant.tokens.cache.write as u64,
                };
                self.usage
                    .insert(assistant.id.clone(), (tokens, assistant.cost));
                if self.assistant_messages.insert(assistant.id.clone()) {
                    return vec![SessionEvent::Message {
                        message_id: assistant.id,
                        role: Role::Assistant,
                        text: None,
                    }];
                }
                Vec::new()
            }
            Message::Other(_) => Vec::new(),
        }
    }

    fn part(&mut self, part: Part) -> Vec<SessionEvent> {
        match part {
            Part::Text(text) => {
                if self.user_messages.contains(&text.message_id) || text.synthetic == Some(true) {
                    return Vec::new();
                }
                self.text_part(text.message_id, text.id, TextKind::Text, text.text)
            }
            Part::Reasoning(reasoning) => self.text_part(
                reasoning.message_id,
                reasoning.id,
                TextKind::Reasoning,
                reasoning.text,
            ),
            Part::Tool(tool) => self.tool(tool),
            Part::StepStart(_) | Part::StepFinish(_) | Part::Patch(_) | Part::Other(_) => {
                Vec::new()
            }
        }
    }

    /// The first sighting of a part only records its kind (its text streams as deltas); later
    /// updates carry the full text so far, sent whole so a client that missed a delta heals.
    fn text_part(
        &mut self,
        message_id: String,
        part_id: String,
        kind: TextKind,
        text: String,
    ) -> Vec<SessionEvent> {
        let seen = self.text_parts.insert(part_id.clone(), kind).is_some();
        if !seen && text.is_empty() {
            return Vec::new();
        }
        vec![SessionEvent::PartText {
            message_id,
            part_id,
            kind,
            text,
        }]
    }

    fn tool(&mut self, tool: ToolPart) -> Vec<SessionEvent> {
        let (state, input, output, error, title, diff) = match tool.state {
            den_opencode::ToolState::Pending { input } => {
                (ToolState::Pending, input, None, None, None, None)
            }
            den_opencode::ToolState::Running { input, title } => {
                (ToolState::Running, input, None, None, title, None)
            }
            den_opencode::ToolState::Completed {
                input,
                output,
                title,
                metadata,
                ..
            } => {
                let diff = metadata
                    .get("diff")
                    .and_then(|d| d.as_str())
                    .map(str::to_owned)
                    .or_else(|| new_file_diff(&tool.tool, &input, &metadata));
                (
                    ToolState::Completed,
                    input,
                    Some(output),
                    None,
                    Some(title),
                    diff,
                )
            }
            den_opencode::ToolState::Error { input, error, .. } => {
                (ToolState::Failed, input, None, Some(error), None, None)
            }
        };
        let call = ToolCall {
            message_id: tool.message_id,
            part_id: tool.id.clone(),
            call_id: tool.call_id,
            tool: tool.tool,
            state,
            title,
            input,
            output,
            error,
            diff,
        };
        if self.tool_states.get(&tool.id) == Some(&call) {
            return Vec::new();
        }
        self.tool_states.insert(tool.id, call.clone());
        vec![SessionEvent::Tool(call)]
    }
}

/// OpenCode's `write` reports no diff. When it created the file (`exists: false`), the diff is
/// the whole content added, so API clients get it too. An overwrite's old content is unknown
/// here, so it gets none rather than a wrong one.
fn new_file_diff(tool: &str, input: &Value, metadata: &Value) -> Option<String> {
    if tool != "write" || metadata.get("exists").and_then(Value::as_bool) != Some(false) {
        return None;
    }
    let path = input.get("filePath")?.as_str()?;
    let path = path.strip_prefix("/workspace/").unwrap_or(path);
    let content = input.get("content")?.as_str()?;
    let lines: Vec<&str> = content.lines().collect();
    let mut diff = format!("--- /dev/null\n+++ b/{path}\n");
    if lines.is_empty() {
        return Some(diff);
    }
    diff.push_str(&format!("@@ -0,0 +1,{} @@\n", lines.len()));
    for line in lines {
        diff.push('+');
        diff.push_str(line);
        diff.push('\n');
    }
    if !content.ends_with('\n') {
        diff.push_str("\\ No newline at end of file\n");
    }
    Some(diff)
}

#[cfg(test)]
#[path = "mapping_fuzz.rs"]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: &str = "ses_df2e96209ffewlNYjhnCfRGqM9";

    /// A turn OpenCode 1.18.33 really streamed (recorded by den-opencode's live tests): a text
    /// delta, a `write` tool call, idle; with the server's global noise in between.
    fn recorded_turn() -> Vec<Event> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../den-opencode/tests/fixtures/live-events.jsonl"
        );
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| {
                let envelope: serde_json::Value = serde_json::from_str(line).unwrap();
                serde_json::from_value(serde_json::json!({"type": envelope["type"], "properties": envelope["properties"]})).unwrap()
            })
            .collect()
    }

    fn event(kind: &str, properties: serde_json::Value) -> Event {
        serde_json::from_value(serde_json::json!({"type": kind, "properties": properties})).unwrap()
    }

    #[test]
    fn a_recorded_turn_maps_to_message_text_tool_lifecycle_and_an_end() {
        let mut mapper = TurnMapper::new(SESSION);
        let mapped: Vec<SessionEvent> = recorded_turn()
            .into_iter()
            .flat_map(|e| mapper.map(e))
            .collect();
        let kinds: Vec<&str> = mapped.iter().map(SessionEvent::kind).collect();
        assert_eq!(
            kinds,
            ["message", "text_delta", "tool", "tool", "tool"],
            "{mapped:#?}"
        );
        assert!(matches!(
            &mapped[0],
            SessionEvent::Message {
                role: Role::Assistant,
                text: None,
                ..
            }
        ));
        let states: Vec<ToolState> = mapped
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Tool(call) => Some(call.state),
                _ => None,
            })
            .collect();
        assert_eq!(
            states,
            [ToolState::Pending, ToolState::Running, ToolState::Completed]
        );
        let SessionEvent::Tool(written) = &mapped[4] else {
            panic!("{mapped:#?}")
        };
        assert_eq!(
            written.diff.as_deref(),
            Some("--- /dev/null\n+++ b/hello.txt\n@@ -0,0 +1,1 @@\n+hi there\n"),
            "a write that created a file carries its diff"
        );
        assert!(mapper.finished && !mapper.aborted && mapper.error.is_none());
    }

    #[test]
    fn an_overwrite_has_no_made_up_diff_and_a_missing_final_newline_is_marked() {
        let input = serde_json::json!({"filePath": "/workspace/a.txt", "content": "x\ny"});
        assert_eq!(
            new_file_diff("write", &input, &serde_json::json!({"exists": true})),
            None
        );
        assert_eq!(
            new_file_diff("write", &input, &serde_json::json!({"exists": false})).as_deref(),
            Some(
                "--- /dev/null\n+++ b/a.txt\n@@ -0,0 +1,2 @@\n+x\n+y\n\\ No newline at end of file\n"
            )
        );
        assert_eq!(
            new_file_diff("read", &input, &serde_json::json!({"exists": false})),
            None
        );
    }

    #[test]
    fn an_idle_before_the_turn_is_busy_is_a_late_echo_not_the_end() {
        let mut mapper = TurnMapper::new("s");
        mapper.map(event("session.idle", serde_json::json!({"sessionID": "s"})));
        assert!(!mapper.finished);
        mapper.map(event(
            "session.status",
            serde_json::json!({"sessionID": "s", "status": {"type": "busy"}}),
        ));
        mapper.map(event("session.idle", serde_json::json!({"sessionID": "s"})));
        assert!(mapper.finished);
    }

    #[test]
    fn other_conversations_and_global_noise_are_ignored_and_unknown_events_kept() {
        let mut mapper = TurnMapper::new("s");
        let other = event(
            "message.part.delta",
            serde_json::json!({"sessionID": "t", "messageID": "m", "partID": "p", "field": "text", "delta": "x"}),
        );
        assert!(mapper.map(other).is_empty());
        assert!(
            mapper
                .map(event("plugin.added", serde_json::json!({"name": "x"})))
                .is_empty()
        );
        let unknown = mapper.map(event(
            "session.frobnicated",
            serde_json::json!({"sessionID": "s", "level": 3}),
        ));
        assert_eq!(
            unknown,
            vec![SessionEvent::Agent {
                kind: "session.frobnicated".into(),
                properties: serde_json::json!({"sessionID": "s", "level": 3})
            }]
        );
    }

    #[test]
    fn an_abort_is_recorded_without_an_error_and_provider_errors_are_shown() {
        let mut mapper = TurnMapper::new("s");
        let aborted = event(
            "session.error",
            serde_json::json!({"sessionID": "s", "error": {"name": "MessageAbortedError", "data": {"message": "aborted"}}}),
        );
        // Before the turn is busy: the echo of an earlier turn's stop.
        assert!(mapper.map(aborted.clone()).is_empty());
        assert!(!mapper.aborted);
        let busy = event(
            "session.status",
            serde_json::json!({"sessionID": "s", "status": {"type": "busy"}}),
        );
        assert!(mapper.map(busy).is_empty());
        assert!(mapper.map(aborted).is_empty());
        assert!(mapper.aborted);
        let failed = event(
            "session.error",
            serde_json::json!({"sessionID": "s", "error": {"name": "APIError", "data": {"message": "rate limited"}}}),
        );
        assert_eq!(
            mapper.map(failed),
            vec![SessionEvent::Error {
                code: "APIError".into(),
                message: "rate limited".into()
            }]
        );
        assert_eq!(mapper.error.as_deref(), Some("rate limited"));
    }
}
