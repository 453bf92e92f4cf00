//! What the scripted model says: a queue of turns, each a list of steps.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

/// One reply of the model, answering one agent request.
#[derive(Clone, Debug, Default)]
pub struct Turn {
    pub(crate) steps: Vec<Step>,
    /// Pause before each streamed chunk; zero streams as fast as the client reads.
    pub(crate) chunk_delay: Duration,
    pub(crate) failure: Option<ProviderError>,
}

#[derive(Clone, Debug)]
pub(crate) enum Step {
    /// Streamed as one delta chunk per string.
    Text(Vec<String>),
    ToolCall {
        name: String,
        arguments: Value,
    },
    /// The stream stops here until the gate is released.
    Hold(Gate),
}

/// An HTTP error answer in the provider's own error format, instead of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderError {
    pub status: u16,
    pub message: String,
}

impl Turn {
    pub fn new() -> Self {
        Self::default()
    }

    /// A turn that only says `text`, streamed in a few word-sized deltas.
    pub fn text(text: &str) -> Self {
        Self::new().say(text)
    }

    /// Appends text, split after each space so it streams as several deltas.
    pub fn say(mut self, text: &str) -> Self {
        let pieces = text.split_inclusive(' ').map(str::to_owned).collect();
        self.steps.push(Step::Text(pieces));
        self
    }

    /// Appends text streamed as exactly these deltas.
    pub fn say_deltas<S: Into<String>>(mut self, deltas: impl IntoIterator<Item = S>) -> Self {
        let pieces = deltas.into_iter().map(Into::into).collect();
        self.steps.push(Step::Text(pieces));
        self
    }

    /// Appends a very long text of about `bytes` bytes, in 1 KiB deltas.
    pub fn say_long(mut self, bytes: usize) -> Self {
        let line = "The quick brown fox jumps over the lazy dog, again and again and again.\n";
        let chunk: String = line.repeat(1024 / line.len() + 1);
        let count = bytes.div_ceil(chunk.len()).max(1);
        self.steps.push(Step::Text(vec![chunk; count]));
        self
    }

    /// Appends a call of one of OpenCode's tools with JSON arguments.
    pub fn tool_call(mut self, name: &str, arguments: Value) -> Self {
        self.steps.push(Step::ToolCall {
            name: name.to_owned(),
            arguments,
        });
        self
    }

    /// OpenCode's `write` tool: create or overwrite a file (path relative to the project).
    pub fn write(self, file_path: &str, content: &str) -> Self {
        self.tool_call(
            "write",
            serde_json::json!({"filePath": file_path, "content": content}),
        )
    }

    /// OpenCode's `edit` tool: replace `old` by `new` in a file (it must have been read first).
    pub fn edit(self, file_path: &str, old: &str, new: &str) -> Self {
        self.tool_call(
            "edit",
            serde_json::json!({"filePath": file_path, "oldString": old, "newString": new}),
        )
    }

    /// OpenCode's `bash` tool.
    pub fn bash(self, command: &str, description: &str) -> Self {
        self.tool_call(
            "bash",
            serde_json::json!({"command": command, "description": description}),
        )
    }

    /// OpenCode's `question` tool: one question with these option labels (in 1.18.33 the tool
    /// has no say over typed answers: they are always allowed).
    pub fn question(self, question: &str, header: &str, options: &[&str]) -> Self {
        let options: Vec<Value> = options
            .iter()
            .map(
                |label| serde_json::json!({"label": label, "description": format!("pick {label}")}),
            )
            .collect();
        self.tool_call(
            "question",
            serde_json::json!({"questions": [{
                "question": question,
                "header": header,
                "options": options,
            }]}),
        )
    }

    /// OpenCode's `read` tool.
    pub fn read(self, file_path: &str) -> Self {
        self.tool_call("read", serde_json::json!({"filePath": file_path}))
    }

    /// Stops streaming at this point until `gate` is released.
    pub fn hold(mut self, gate: &Gate) -> Self {
        self.steps.push(Step::Hold(gate.clone()));
        self
    }

    pub fn chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }

    /// Answers with an HTTP error (for example 401, 429, 500) in the provider's format.
    pub fn error(status: u16, message: &str) -> Self {
        Self {
            failure: Some(ProviderError {
                status,
                message: message.to_owned(),
            }),
            ..Self::default()
        }
    }

    pub(crate) fn has_tool_calls(&self) -> bool {
        self.steps
            .iter()
            .any(|step| matches!(step, Step::ToolCall { .. }))
    }
}

/// Holds a streaming reply open until the test releases it, and tells the test when the
/// stream got there, so a test can act mid-turn without sleeping.
#[derive(Clone, Debug)]
pub struct Gate {
    reached: watch::Sender<bool>,
    released: watch::Sender<bool>,
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    pub fn new() -> Self {
        Self {
            reached: watch::channel(false).0,
            released: watch::channel(false).0,
        }
    }

    /// Resolves once a stream has sent everything before the hold.
    pub async fn reached(&self) {
        let mut reached = self.reached.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = reached.wait_for(|reached| *reached).await;
    }

    /// Lets held streams continue (and any later stream pass straight through).
    pub fn release(&self) {
        self.released.send_replace(true);
    }

    pub(crate) async fn pass(&self) {
        self.reached.send_replace(true);
        let mut released = self.released.subscribe();
        let _ = released.wait_for(|released| *released).await;
    }
}
