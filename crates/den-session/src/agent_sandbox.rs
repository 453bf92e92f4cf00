//! Building the sandbox spec that runs the pinned OpenCode server. It lives with the session
//! side, not in den-sandbox, so the sandbox runtime runs whatever spec it is given and knows
//! nothing of the agent. den-opencode talks to the server; this only knows how to start it:
//! binary mounted read-only, generated config placed in HOME, basic-auth credentials in the
//! environment, listening on the sandbox's own loopback.

use std::path::Path;

use den_sandbox::probe::BasicAuth;
use den_sandbox::{HomeFile, SandboxSpec, ToolMount, WORKSPACE_DIR};

/// The port OpenCode listens on inside every sandbox (exposed to den, never to the host).
pub const OPENCODE_PORT: u16 = 4096;
/// Where the OpenCode binary appears inside the sandbox.
pub const OPENCODE_SANDBOX_BIN: &str = "/opt/opencode/bin/opencode";
/// Where the generated config goes, relative to HOME.
pub const OPENCODE_CONFIG_PATH: &str = ".config/opencode/opencode.json";
/// The variables `opencode_spec` puts OpenCode's own basic-auth credentials in. Processes
/// OpenCode starts inherit its environment; a terminal den opens blanks these.
pub const OPENCODE_CREDENTIAL_ENV: [&str; 2] =
    ["OPENCODE_SERVER_USERNAME", "OPENCODE_SERVER_PASSWORD"];

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec decides permissions by environment and keeps the repository's own OpenCode
    /// config out (it could widen what `ask` lets through), and exposes OpenCode to den only.
    #[test]
    fn the_agent_spec_sets_dens_permissions_keeps_project_config_out_and_exposes_only_opencode() {
        let auth = BasicAuth {
            user: "opencode".into(),
            password: "pw".into(),
        };
        let spec = opencode_spec(
            Path::new("/tmp/ws"),
            Path::new("/bin/opencode"),
            &auth,
            &base_config(),
        );
        let permission: serde_json::Value =
            serde_json::from_str(&spec.env["OPENCODE_PERMISSION"]).unwrap();
        assert_eq!(permission["doom_loop"], "allow");
        assert_eq!(permission["question"], "allow");
        assert_eq!(permission["bash"], "ask");
        assert_eq!(permission["edit"], "ask");
        assert_eq!(spec.env["OPENCODE_DISABLE_PROJECT_CONFIG"], "1");
        assert_eq!(spec.expose, vec![OPENCODE_PORT]);
        let config = &spec.home_files[0];
        assert_eq!(config.path.to_str(), Some(OPENCODE_CONFIG_PATH));
        assert_eq!(config.mode, 0o600);
    }

    #[test]
    fn the_credential_variables_are_the_ones_the_spec_sets() {
        let auth = BasicAuth {
            user: "opencode".to_owned(),
            password: "secret".to_owned(),
        };
        let spec = opencode_spec(
            Path::new("/w"),
            Path::new("/bin/opencode"),
            &auth,
            &base_config(),
        );
        for name in OPENCODE_CREDENTIAL_ENV {
            assert!(spec.env.contains_key(name), "{name}");
        }
        let password = spec.env.get("OPENCODE_SERVER_PASSWORD");
        assert_eq!(password.map(String::as_str), Some("secret"));
    }
}
