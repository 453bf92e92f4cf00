//! Building a sandbox spec that runs the pinned OpenCode server. den-opencode talks to it; this
//! only knows how to start it: binary mounted read-only, generated config placed in HOME,
//! basic-auth credentials in the environment, listening on the sandbox's own loopback.

use std::path::Path;

use crate::probe::BasicAuth;
use crate::spec::{HomeFile, SandboxSpec, ToolMount, WORKSPACE_DIR};

/// The port OpenCode listens on inside every sandbox (exposed to den, never to the host).
pub const OPENCODE_PORT: u16 = 4096;
/// Where the OpenCode binary appears inside the sandbox.
pub const OPENCODE_SANDBOX_BIN: &str = "/opt/opencode/bin/opencode";
/// Where the generated config goes, relative to HOME.
pub const OPENCODE_CONFIG_PATH: &str = ".config/opencode/opencode.json";

/// A config with what den always wants: no auto-update, sharing off, and den's permission
/// rules (see [`permissions`]). The repository's own instruction files are named by absolute
/// path, because den turns the repository's OpenCode config off (see `opencode_spec`), and
/// with it OpenCode's search for them. Callers add providers before passing it to
/// `opencode_spec`.
pub fn base_config() -> serde_json::Value {
    let instructions: Vec<String> = ["AGENTS.md", "CLAUDE.md"]
        .iter()
        .map(|name| format!("{WORKSPACE_DIR}/{name}"))
        .collect();
    serde_json::json!({
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": false,
        "share": "disabled",
        "permission": permissions(),
        "instructions": instructions,
    })
}

/// Every permission OpenCode 1.18 knows, named: file edits and shell commands ask, so den
/// decides each one by the session's approval mode (it allows them at once in `auto`, and
/// passes them to the person in `ask`); everything else is allowed, since OpenCode asks by
/// default before a repeated tool call ("doom loop") or a path outside the workspace, which
/// nobody should have to answer (the sandbox is the boundary). The question tool is on: den
/// relays the agent's questions to the person.
fn permissions() -> serde_json::Value {
    serde_json::json!({
        "read": "allow", "edit": "ask", "glob": "allow", "grep": "allow", "list": "allow",
        "bash": "ask", "task": "allow", "external_directory": "allow", "todowrite": "allow",
        "webfetch": "allow", "websearch": "allow", "lsp": "allow", "doom_loop": "allow",
        "skill": "allow", "question": "allow",
    })
}

/// A spec running `opencode serve` on `OPENCODE_PORT` with `config` as its global config.
pub fn opencode_spec(
    workspace: &Path,
    opencode_bin: &Path,
    auth: &BasicAuth,
    config: &serde_json::Value,
) -> SandboxSpec {
    let command = [
        OPENCODE_SANDBOX_BIN,
        "serve",
        "--port",
        &OPENCODE_PORT.to_string(),
        "--hostname",
        "127.0.0.1",
    ]
    .map(String::from)
    .to_vec();
    let mut spec = SandboxSpec::new(workspace, command);
    spec.tools.push(ToolMount {
        host_path: opencode_bin.to_path_buf(),
        sandbox_path: OPENCODE_SANDBOX_BIN.into(),
    });
    spec.home_files.push(HomeFile {
        path: OPENCODE_CONFIG_PATH.into(),
        contents: config.to_string().into_bytes(),
        mode: 0o600,
    });
    for (k, v) in [
        ("OPENCODE_SERVER_USERNAME", auth.user.as_str()),
        ("OPENCODE_SERVER_PASSWORD", auth.password.as_str()),
        ("OPENCODE_DISABLE_AUTOUPDATE", "1"),
    ] {
        spec.env.insert(k.into(), v.into());
    }
    // A repository's own opencode.json outranks the global config; OpenCode applies this
    // variable after every config file. That is not enough: an agent's own `permission`
    // (`agent.build.permission` in a repository's opencode.json, or an agent file in its
    // `.opencode/`) is merged after it, and a plugin in `.opencode/` can answer asks itself.
    // So the repository's OpenCode config is not loaded at all, and an ask cannot be turned
    // off by the repository (the e2e test `a_repository_config_cannot_turn_asks_off` checks).
    spec.env
        .insert("OPENCODE_PERMISSION".into(), permissions().to_string());
    spec.env
        .insert("OPENCODE_DISABLE_PROJECT_CONFIG".into(), "1".into());
    spec.expose.push(OPENCODE_PORT);
    spec
}
