//! Running the real OpenCode binary in tests: where it is, a config that points it at the
//! scripted model, and a throwaway server process with its own HOME and git repository.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// The OpenCode version den pins; `scripts/install-opencode` installs exactly this one.
pub const OPENCODE_VERSION: &str = den_opencode::PINNED_VERSION;
/// Provider and model ids of the OpenAI-compatible scripted model in [`scripted_config`].
pub const OPENAI_PROVIDER: &str = "scripted";
pub const OPENAI_MODEL: &str = "scripted-model";
/// Provider and model ids of the Anthropic-format scripted model in [`scripted_config`].
pub const ANTHROPIC_PROVIDER: &str = "scripted-anthropic";
pub const ANTHROPIC_MODEL: &str = "scripted-claude";

/// The OpenCode binary: `DEN_OPENCODE_BIN`, else where `scripts/install-opencode` puts it.
///
/// # Panics
/// When neither exists: tests that need OpenCode must fail loudly, never skip.
pub fn opencode_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("DEN_OPENCODE_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "DEN_OPENCODE_BIN={} does not exist; run scripts/install-opencode",
            path.display()
        );
        return path;
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let path = home.join(format!(
        ".cache/den/tools/opencode-{OPENCODE_VERSION}/node_modules/opencode-linux-x64/bin/opencode"
    ));
    assert!(
        path.is_file(),
        "OpenCode {OPENCODE_VERSION} is not installed at {}; run scripts/install-opencode",
        path.display()
    );
    path
}

/// An OpenCode provider entry for an OpenAI-compatible endpoint (`@ai-sdk/openai-compatible`).
pub fn openai_compatible_provider(base_url: &str, models: &[&str]) -> Value {
    provider_entry("@ai-sdk/openai-compatible", base_url, models)
}

/// An OpenCode provider entry for an Anthropic-format endpoint (`@ai-sdk/anthropic`).
pub fn anthropic_provider(base_url: &str, models: &[&str]) -> Value {
    provider_entry("@ai-sdk/anthropic", base_url, models)
}

fn provider_entry(npm: &str, base_url: &str, models: &[&str]) -> Value {
    let models: serde_json::Map<String, Value> = models
        .iter()
        .map(|model| {
            (
                (*model).to_owned(),
                json!({"name": model, "tool_call": true}),
            )
        })
        .collect();
    json!({
        "npm": npm,
        "name": npm,
        // Providers insist on a key; the scripted model ignores it.
        "options": {"baseURL": base_url, "apiKey": "scripted-key"},
        "models": models,
    })
}

/// A complete OpenCode config: the given providers, `model` as default and title model,
/// every permission allowed, no autoupdate, no sharing.
pub fn opencode_config(providers: serde_json::Map<String, Value>, model: &str) -> Value {
    json!({
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": false,
        "share": "disabled",
        "permission": "allow",
        "model": model,
        "small_model": model,
        "provider": providers,
    })
}

/// The config tests use: both scripted providers on `base_url` (see
/// [`crate::ScriptedModel::base_url`]), the OpenAI-compatible one as default.
pub fn scripted_config(base_url: &str) -> Value {
    let mut providers = serde_json::Map::new();
    providers.insert(
        OPENAI_PROVIDER.to_owned(),
        openai_compatible_provider(base_url, &[OPENAI_MODEL]),
    );
    providers.insert(
        ANTHROPIC_PROVIDER.to_owned(),
        anthropic_provider(base_url, &[ANTHROPIC_MODEL]),
    );
    opencode_config(providers, &format!("{OPENAI_PROVIDER}/{OPENAI_MODEL}"))
}

pub fn write_config(path: &Path, config: &Value) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(config).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}

/// A real `opencode serve` on a loopback port, with a private HOME and a fresh git repository
/// as its project. The process is killed when this is dropped.
pub struct OpencodeServer {
    child: Child,
    base_url: String,
    repo: TempDir,
    home: TempDir,
}

impl OpencodeServer {
    /// Starts OpenCode with `config`, unsecured. It is not ready yet: wait with the client's
    /// `wait_ready`.
    pub async fn start(config: &Value) -> std::io::Result<Self> {
        Self::start_with_password(config, None).await
    }

    /// Like [`Self::start`], but OpenCode requires basic auth (user `opencode`) with `password`
    /// on every route, as den runs it.
    pub async fn start_with_password(
        config: &Value,
        password: Option<&str>,
    ) -> std::io::Result<Self> {
        let home = tempfile::tempdir()?;
        let repo = tempfile::tempdir()?;
        init_git_repo(repo.path()).await?;
        let config_path = home.path().join("opencode.json");
        write_config(&config_path, config)?;
        // `--port 0` does not pick a free port (OpenCode falls back to 4096), so take one.
        let port = free_port()?;
        let log = std::fs::File::create(home.path().join("opencode.log"))?;
        let mut command = command(&opencode_bin());
        command
            .args([
                "serve",
                "--hostname",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .current_dir(repo.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join(".config"))
            .env("XDG_DATA_HOME", home.path().join(".local/share"))
            .env("XDG_CACHE_HOME", home.path().join(".cache"))
            .env("XDG_STATE_HOME", home.path().join(".local/state"))
            .env("OPENCODE_CONFIG", &config_path)
            .env("OPENCODE_DISABLE_AUTOUPDATE", "1")
            .env("OPENCODE_DISABLE_LSP_DOWNLOAD", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        if let Some(password) = password {
            command.env("OPENCODE_SERVER_PASSWORD", password);
        }
        let child = command.spawn()?;
        Ok(Self {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            repo,
            home,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The project directory OpenCode works in.
    pub fn repo(&self) -> &Path {
        self.repo.path()
    }

    /// OpenCode's stdout and stderr so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("opencode.log")).unwrap_or_default()
    }

    /// Kills the process and waits for it to exit.
    pub async fn stop(mut self) -> std::io::Result<()> {
        self.child.kill().await
    }
}

fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// A git repository with one commit, as a den workspace would be.
async fn init_git_repo(dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join("README.md"), "# scratch\n")?;
    let steps: [&[&str]; 3] = [
        &["init", "-q", "-b", "main"],
        &["add", "README.md"],
        &[
            "-c",
            "user.name=den",
            "-c",
            "user.email=den@localhost",
            "commit",
            "-q",
            "-m",
            "init",
        ],
    ];
    for args in steps {
        let status = tokio::time::timeout(
            Duration::from_secs(30),
            command(Path::new("git"))
                .args(args)
                .current_dir(dir)
                .stdin(Stdio::null())
                .status(),
        )
        .await
        .map_err(std::io::Error::other)??;
        if !status.success() {
            return Err(std::io::Error::other(format!(
                "git {args:?} failed: {status}"
            )));
        }
    }
    Ok(())
}

#[expect(
    clippy::disallowed_methods,
    reason = "tests start the real OpenCode on the host; production code starts processes only in den-sandbox"
)]
fn command(program: &Path) -> Command {
    Command::new(program)
}
