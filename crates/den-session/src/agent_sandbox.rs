//! Building the sandbox spec that runs the pinned OpenCode server. It lives with the session
//! side, not in den-sandbox, so the sandbox runtime runs whatever spec it is given and knows
//! nothing of the agent. den-opencode talks to the server; this only knows how to start it:
//! binary mounted read-only, generated config placed in HOME, basic-auth credentials in the
//! environment, listening on the sandbox's own loopback.

use std::path::Path;

use den_sandbox::probe::BasicAuth;
use den_sandbox::{HomeFile, SandboxSpec, ToolMount};

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

/// A config with what den always wants: no auto-update, sharing off, and every permission
/// allowed (the sandbox is the boundary), naming each one: OpenCode asks by default before a
/// repeated tool call ("doom loop") or a path outside the workspace, and a turn waiting on an
/// ask nobody can answer never ends. The question tool is denied for the same reason, until
/// den relays questions to the user. Callers add providers before passing it to
/// `opencode_spec`.
pub fn base_config() -> serde_json::Value {
    serde_json::json!({
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": false,
        "share": "disabled",
        "permission": permissions(),
    })
}

/// Every permission OpenCode 1.18 knows, allowed, and its question tool denied.
fn permissions() -> serde_json::Value {
    serde_json::json!({
        "read": "allow", "edit": "allow", "glob": "allow", "grep": "allow", "list": "allow",
        "bash": "allow", "task": "allow", "external_directory": "allow", "todowrite": "allow",
        "webfetch": "allow", "websearch": "allow", "lsp": "allow", "doom_loop": "allow",
        "skill": "allow", "question": "deny",
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
    // variable after every config file, so a repository cannot turn an ask back on.
    spec.env
        .insert("OPENCODE_PERMISSION".into(), permissions().to_string());
    spec.expose.push(OPENCODE_PORT);
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec must keep a repository's own opencode.json from turning an ask back on (a turn
    /// waiting on an ask nobody answers never ends) and must expose OpenCode to den only.
    #[test]
    fn the_agent_spec_allows_every_permission_by_environment_and_exposes_only_opencode() {
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
        assert_eq!(permission["question"], "deny");
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
