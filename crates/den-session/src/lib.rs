//! Sessions: one actor per live session drives the agent (OpenCode) in the session's sandbox,
//! and records every event before anyone sees it.
//!
//! The actor is the only writer of a session's state and event log. Everything else holds a
//! [`SessionHandle`] (commands in, a lossless [`EventSubscription`] out). The
//! [`SessionManager`] finds or starts actors, recovers sessions after a restart, and pushes
//! changes of each user's session list.
//!
//! What it does not do: HTTP (den-server), starting processes (den-sandbox), the OpenCode wire
//! format (den-opencode).
//!
//! Layout:
//! - `cluster`: many den nodes on one database: leases, heartbeat, forwarding, fan-out.
//! - `manager`: the registry of actors, restart recovery, the session list stream.
//! - `handle`: the handle and the actor's command set.
//! - `actor`: the actor's loop; `actor/lifecycle` (start, resume, pause, exit), `actor/turn`
//!   (prompts, the queue, turns).
//! - `changes`: the session's diff, computed by git inside its sandbox.
//! - `push`: commit and push the session's branch, inside its sandbox.
//! - `terminal`: shells in the session's sandbox (OpenCode's PTYs), ended with the sandbox.
//! - `mapping`: OpenCode events into den events.
//! - `eventlog`: append (store, then broadcast) and gapless subscriptions.
//! - `workspace`: the session's checkout, its OpenCode config and its sandbox spec.
//! - `agent_sandbox`: the spec that runs OpenCode in a sandbox (den-sandbox runs any spec).
//! - `catalog`: den's providers and models, and which key a request uses.
//! - `snapshot_migration`: a start step moving snapshots recorded as host paths into the
//!   artifact store.
//! - `title`: titles from the first prompt, or from the repository.

mod actor;
pub mod agent_sandbox;
pub mod catalog;
mod changes;
pub mod cluster;
mod config;
mod credentials;
mod error;
mod eventlog;
mod fork;
mod handle;
mod manager;
mod mapping;
mod pool;
mod push;
mod registry;
mod snapshot_migration;
mod terminal;
pub mod title;
mod workspace;

/// Listing a repository's branches with host git (hardened; `ls-remote` only), for the
/// server's branch picker.
pub use den_git::{GitError, HttpAuth, RemoteBranches, remote_branches};
pub use den_sandbox::egress::{AllowedHost, EgressPolicy, EgressRefusal};

pub use catalog::{AdminProvider, Catalog, ProviderConfig, ProviderKind};
pub use config::{GATEWAY_PORT, GIT_GATEWAY_PORT, SessionConfig};
pub use credentials::{CredentialSource, Credentials};
pub use error::{Result, SessionError};
pub use eventlog::{Delivery, EncodedEvent, EventSubscription};
pub use fork::ForkTarget;
pub use handle::{CommandOutcome, SessionCommand, SessionHandle};
pub use manager::{ListChange, SessionManager};
pub use push::Author;
pub use snapshot_migration::SnapshotMigration;
pub use terminal::{Terminal, TerminalClosing, TerminalSize};
