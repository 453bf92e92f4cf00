//! What the session layer needs to know, assembled by the binary.

use std::path::PathBuf;
use std::time::Duration;

use den_sandbox::{Limits, NetworkPolicy};

/// The wire format of a model provider den forwards to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI chat-completions (`@ai-sdk/openai-compatible`).
    OpenAiCompatible,
    /// Anthropic messages (`@ai-sdk/anthropic`).
    Anthropic,
}

impl ProviderKind {
    /// The AI SDK package OpenCode uses for this format.
    pub(crate) fn npm_package(self) -> &'static str {
        match self {
            Self::OpenAiCompatible => "@ai-sdk/openai-compatible",
            Self::Anthropic => "@ai-sdk/anthropic",
        }
    }
}

/// A provider an admin configured: OpenCode inside a sandbox reaches it through den's model
/// gateway, which forwards to `base_url`.
#[derive(Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    /// The upstream base URL, e.g. `https://api.example.com/v1`.
    pub base_url: String,
    pub models: Vec<String>,
    /// A key den adds to forwarded requests; never given to the sandbox.
    pub api_key: Option<String>,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("models", &self.models)
            .finish_non_exhaustive()
    }
}

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
    /// The pinned OpenCode binary on the host.
    pub opencode_bin: PathBuf,
    pub providers: Vec<ProviderConfig>,
    /// A running session with nothing to do is paused after this long.
    pub idle_timeout: Duration,
    /// How long OpenCode may take to answer after its sandbox starts.
    pub ready_timeout: Duration,
    pub clone_timeout: Duration,
    pub limits: Limits,
    /// A sandbox's hard lifetime.
    pub lifetime: Duration,
    pub network: NetworkPolicy,
    /// The longest prompt accepted, in bytes.
    pub max_prompt_bytes: usize,
    /// The longest queue of waiting prompts.
    pub max_queue: usize,
}

impl SessionConfig {
    /// Defaults for everything but the paths.
    pub fn new(data_dir: &std::path::Path, gateway_socket: PathBuf, opencode_bin: PathBuf) -> Self {
        Self {
            workspaces_dir: data_dir.join("workspaces"),
            snapshots_dir: data_dir.join("snapshots"),
            gateway_socket,
            git_gateway_socket: None,
            opencode_bin,
            providers: Vec::new(),
            idle_timeout: Duration::from_secs(600),
            ready_timeout: Duration::from_secs(120),
            clone_timeout: Duration::from_secs(600),
            limits: Limits::default(),
            lifetime: Duration::from_secs(3600),
            network: NetworkPolicy::Internet,
            max_prompt_bytes: 100_000,
            max_queue: 20,
        }
    }
}

/// The port on a sandbox's loopback where den's model gateway answers.
pub const GATEWAY_PORT: u16 = 4141;
/// The port on a sandbox's loopback where den's git gateway answers (`origin`).
pub const GIT_GATEWAY_PORT: u16 = 4142;
