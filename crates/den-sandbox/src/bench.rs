//! The processes `den bench` starts outside a sandbox (only this crate starts processes): the
//! benchmark repository, made with git, and OpenCode booted on the host without a sandbox (the
//! floor a sandboxed start is compared with). The benchmark itself (what it measures, its
//! statistics and its table) lives in the den binary's `bench` module.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{IoContext, Result, SandboxError};
use crate::probe::BasicAuth;

/// A git repository like the spike's: ~5,000 files, ~80 MB, one commit, at `dir` (kept if it
/// exists).
#[expect(
    clippy::disallowed_methods,
    reason = "den-sandbox runs git to build the bench repository"
)]
pub fn make_repo(dir: &Path) -> Result<()> {
    if dir.join(".git").is_dir() {
        return Ok(());
    }
    for sub in ["src", "docs", "assets"] {
        std::fs::create_dir_all(dir.join(sub)).ctx(|| format!("create {}", dir.display()))?;
    }
    // Deterministic text of varied content, so it compresses like source rather than zeros.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut text = |len: usize| {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.push_str(&format!("let v{} = {};\n", x % 9973, x >> 20));
        }
        s
    };
    for i in 0..4800 {
        std::fs::write(dir.join(format!("src/f{i:04}.rs")), text(16_000))
            .ctx(|| "write bench file".into())?;
    }
    for i in 0..200 {
        std::fs::write(dir.join(format!("docs/d{i:03}.md")), text(16_000))
            .ctx(|| "write bench file".into())?;
    }
    let d = dir.to_string_lossy();
    for args in [
        vec!["init", "-q", &d],
        vec!["-C", &d, "add", "-A"],
        vec![
            "-C",
            &d,
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@den",
            "commit",
            "-qm",
            "bench",
        ],
    ] {
        let st = std::process::Command::new("git")
            .args(&args)
            .status()
            .ctx(|| "run git".into())?;
        if !st.success() {
            return Err(SandboxError::Command {
                command: format!("git {args:?}"),
                detail: st.to_string(),
            });
        }
    }
    Ok(())
}

/// Where and how [`host_boot`] starts OpenCode.
#[derive(Debug, Clone, Copy)]
pub struct HostBoot<'a> {
    pub opencode_bin: &'a Path,
    /// Copied into OpenCode's HOME first, as for a sandbox.
    pub home_template: Option<&'a Path>,
    /// Scratch space for OpenCode's HOME (removed afterwards).
    pub scratch: &'a Path,
    /// Given up on after this long.
    pub within: Duration,
}

/// OpenCode started directly on the host (no sandbox) in `repo`: how long from launch until
/// `GET /session` answers 200.
#[expect(
    clippy::disallowed_methods,
    reason = "den-sandbox starts OpenCode on the host for the floor"
)]
pub async fn host_boot(cfg: HostBoot<'_>, repo: &Path, auth: &BasicAuth) -> Result<Duration> {
    let home = cfg.scratch.join("host-home");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).ctx(|| "create host home".into())?;
    if let Some(t) = cfg.home_template {
        let st = std::process::Command::new("cp")
            .args(["-a", &format!("{}/.", t.display()), &home.to_string_lossy()])
            .status()
            .ctx(|| "copy the HOME template".into())?;
        if !st.success() {
            return Err(SandboxError::Command {
                command: "cp -a".into(),
                detail: st.to_string(),
            });
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ctx(|| "find a free port".into())?
        .port();
    let t = Instant::now();
    let mut child = tokio::process::Command::new(cfg.opencode_bin)
        .args([
            "serve",
            "--port",
            &port.to_string(),
            "--hostname",
            "127.0.0.1",
        ])
        .current_dir(repo)
        .env_clear()
        .env("HOME", &home)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("OPENCODE_SERVER_USERNAME", &auth.user)
        .env("OPENCODE_SERVER_PASSWORD", &auth.password)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ctx(|| format!("start {}", cfg.opencode_bin.display()))?;
    // OpenCode never answers a request that arrived before it was ready, so readiness is
    // probed with short, retried requests to its global health (which opens no project); then
    // the first project request (which opens the repository, seconds on a loaded host) is
    // waited for as long as it takes.
    let probe = |path: &'static str, within: Duration| async move {
        let attempt = tokio::time::timeout(within, async {
            let s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            crate::probe::request(Box::new(s), "GET", path, Some(auth), None).await
        })
        .await;
        matches!(attempt, Ok(Ok(r)) if r.status == 200)
    };
    let timed_out = || SandboxError::Timeout {
        what: "OpenCode on the host".into(),
        secs: cfg.within.as_secs(),
    };
    let result = async {
        while !probe("/global/health", Duration::from_secs(1)).await {
            if t.elapsed() > cfg.within {
                return Err(timed_out());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let left = cfg.within.saturating_sub(t.elapsed());
        if probe("/session", left).await {
            Ok(t.elapsed())
        } else {
            Err(timed_out())
        }
    }
    .await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&home);
    result
}
