//! What the session layer needs to know, assembled by the binary.

use std::path::PathBuf;
use std::time::Duration;

use den_sandbox::egress::{AllowedHost, EgressPolicy};
use den_sandbox::{Limits, NetworkPolicy};

use crate::catalog::Catalog;

/// The session layer's settings.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Base checkouts, one per session (the read-only lower layer of its sandboxes).
    pub workspaces_dir: PathBuf,
    /// Snapshot archives, one directory per session.
    pub snapshots_dir: PathBuf,
    /// The host unix socket of den's model gateway, forwarded into every sandbox.
    pub gateway_socket: PathBuf,
    /// The host unix socket of den's git gateway, forwarded into the sandboxes of sessions on
    /// an http(s) repository, whose `origin` it becomes. `None`: origin stays the real URL.
    pub git_gateway_socket: Option<PathBuf>,
    /// Credentials for git hosts beyond the person's stored ones (their GitHub token), for
    /// den's clone on the host.
    pub credentials: Option<crate::Credentials>,
    /// The pinned OpenCode binary on the host.
    pub opencode_bin: PathBuf,
    /// Every provider and model den knows (its own, and the admin's).
    pub catalog: Catalog,
    /// A running session with nothing to do is paused after this long.
    pub idle_timeout: Duration,
    /// A running turn on which the agent shows no activity (no event of its conversation) for
    /// this long fails with a clear error, so a lost end of turn cannot hold the session.
    pub turn_inactivity_timeout: Duration,
    /// A permission ask or question nobody answers for this long is closed as refused.
    pub ask_timeout: Duration,
    /// How long OpenCode may take to answer after its sandbox starts.
    pub ready_timeout: Duration,
    pub clone_timeout: Duration,
    pub limits: Limits,
    /// A sandbox's hard lifetime.
    pub lifetime: Duration,
    pub network: NetworkPolicy,
    /// Hosts an admin allows repositories from despite the network rules (internal git
    /// servers); every other repository host is reached only as a sandbox could reach it.
    pub repository_hosts: Vec<AllowedHost>,
    /// The longest prompt accepted, in bytes.
    pub max_prompt_bytes: usize,
    /// The longest queue of waiting prompts.
    pub max_queue: usize,
    /// This den's name among those sharing the database (the sandbox instance name): recorded
    /// on each session it starts, so recovery after a restart takes only its own sessions.
    pub runner: String,
    /// How many sandboxes with a booted OpenCode wait to be claimed by a new session (the
    /// warm pool; 0: none, each session boots its own).
    pub warm_pool: usize,
    /// Turn off OpenCode's features a sandboxed session does not use
    /// (`workspace::IDLE_COST_ENV`).
    pub lean_agent: bool,
}

impl SessionConfig {
    /// Defaults for everything but the paths.
    pub fn new(data_dir: &std::path::Path, gateway_socket: PathBuf, opencode_bin: PathBuf) -> Self {
        Self {
            workspaces_dir: data_dir.join("workspaces"),
            snapshots_dir: data_dir.join("snapshots"),
            gateway_socket,
            git_gateway_socket: None,
            credentials: None,
            opencode_bin,
            catalog: Catalog::builtin(),
            idle_timeout: Duration::from_secs(600),
            turn_inactivity_timeout: Duration::from_secs(30 * 60),
            ask_timeout: Duration::from_secs(30 * 60),
            ready_timeout: Duration::from_secs(120),
            clone_timeout: Duration::from_secs(600),
            limits: Limits::default(),
            lifetime: Duration::from_secs(3600),
            network: NetworkPolicy::Internet,
            repository_hosts: Vec::new(),
            max_prompt_bytes: 100_000,
            max_queue: 20,
            runner: "den".to_owned(),
            warm_pool: 0,
            lean_agent: true,
        }
    }
}

impl SessionConfig {
    /// The rules host-side git follows when it fetches a session's repository.
    pub fn repository_egress(&self) -> EgressPolicy {
        EgressPolicy {
            network: self.network,
            allowed_hosts: self.repository_hosts.clone(),
        }
    }
}

/// The port on a sandbox's loopback where den's model gateway answers.
pub const GATEWAY_PORT: u16 = 4141;
/// The port on a sandbox's loopback where den's git gateway answers (`origin`).
pub const GIT_GATEWAY_PORT: u16 = 4142;
