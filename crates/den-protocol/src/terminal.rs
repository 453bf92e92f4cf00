//! The terminal WebSocket (`GET /api/sessions/{id}/terminal`): a shell in the session's
//! sandbox. Every frame either way is one JSON text message.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The largest terminal den accepts, in either dimension.
pub const MAX_TERMINAL_CELLS: u16 = 1000;

/// What a client sends over the terminal WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TerminalClientMessage {
    /// Keystrokes, typed into the shell as they are.
    Input { data: String },
    /// The terminal's new size in character cells (1 to 1000 each).
    Resize { cols: u16, rows: u16 },
}

/// What the server sends over the terminal WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalServerMessage {
    /// The shell's output (with its escape sequences), for the terminal emulator.
    Output { data: String },
    /// A message was refused (malformed, or a size out of range); nothing changed.
    Refused { code: String, message: String },
}
