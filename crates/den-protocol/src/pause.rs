//! Why a session was paused, carried by the status event that says so, so a client can write
//! "Paused at 14:02 — idle for 10 minutes" rather than a bare "paused".

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum PauseReason {
    /// The person asked for it (the Pause button, `den pause`, the API).
    Person,
    /// Nothing happened for `minutes` (`sandbox.idle_timeout_minutes`).
    Idle { minutes: u32 },
    /// den stopped (or restarted) while the session ran; its sandbox stopped with it.
    DenStopped,
}
