//! Test support for den (dev-only): a scripted model server, a git smart-HTTP server standing
//! in for GitHub's, and helpers to run the real OpenCode binary against them.
//!
//! Layout:
//! - `model`: [`ScriptedModel`], an OpenAI chat-completions and Anthropic messages streaming
//!   server replaying [`Turn`]s and recording every request.
//! - `git_server`: [`GitServer`], `git http-backend` behind Basic auth (password = token),
//!   recording every push.
//! - `fake_opencode`: [`FakeOpencode`], OpenCode's HTTP API on a unix socket replaying a
//!   recorded turn (or hanging, or breaking its stream), for actor tests without sandboxes.
//! - `opencode`: locating the pinned OpenCode binary, writing its config, and running it as a
//!   throwaway [`OpencodeServer`].

mod fake_opencode;
mod git_server;
mod github_rest;
mod model;
mod opencode;

pub use fake_opencode::{FAKE_AGENT_SESSION, FakeOpencode, FakeReply};
pub use git_server::{GitServer, RecordedPush, RefUpdate, init_repository, ref_updates};
pub use github_rest::{RecordedPull, UserRepository};
pub use model::{
    Api, Gate, ProviderError, RecordedRequest, RequestKind, SIDE_REPLY, ScriptedModel, Turn,
};
pub use opencode::{
    ANTHROPIC_MODEL, ANTHROPIC_PROVIDER, OPENAI_MODEL, OPENAI_PROVIDER, OPENCODE_VERSION,
    OpencodeServer, anthropic_provider, openai_compatible_provider, opencode_bin, opencode_config,
    scripted_config, write_config,
};
