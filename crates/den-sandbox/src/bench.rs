//! `den bench sandbox`: measures the local runtime with the metric names of issue 3. The den
//! binary prints the table; this only measures. It starts its own runtime instance under
//! `root_dir`, so it can run beside a live den, and removes everything it made.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{IoContext, Result, SandboxError};
use crate::local::{LocalConfig, LocalRuntime};
use crate::opencode::{OPENCODE_PORT, base_config, opencode_spec};
use crate::probe::{BasicAuth, Target};
use crate::runtime::SandboxRuntime;
use crate::spec::{SandboxId, SandboxSpec};

#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Scratch space (state, a generated repository, artifacts); must be o+x traversable.
    pub root_dir: PathBuf,
    pub opencode_bin: PathBuf,
    pub home_template: Option<PathBuf>,
    /// Fewer iterations (about a minute instead of several).
    pub quick: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub value: f64,
    pub unit: &'static str,
    /// The target or reference this value is judged against, if any.
    pub baseline: Option<String>,
}

fn metric(name: &'static str, value: f64, unit: &'static str, baseline: Option<String>) -> Metric {
    Metric {
        name,
        value,
        unit,
        baseline,
    }
}

fn p50(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

const READY: Duration = Duration::from_secs(300);

pub async fn bench_sandbox(cfg: BenchConfig) -> Result<Vec<Metric>> {
    std::fs::create_dir_all(&cfg.root_dir).ctx(|| format!("create {}", cfg.root_dir.display()))?;
    let repo = cfg.root_dir.join("bench-repo");
    make_repo(&repo)?;
    let mut lc = LocalConfig::new(cfg.root_dir.join("state"));
    lc.instance = "bench".into();
    lc.uid_base = 2_900_000;
    lc.uid_count = 64;
    lc.home_template.clone_from(&cfg.home_template);
    let (rt, _) = LocalRuntime::start(lc).await?;
    let result = run_all(&cfg, &rt, &repo).await;
    rt.shutdown().await?;
    let _ = std::fs::remove_dir_all(&repo);
    result
}

async fn run_all(cfg: &BenchConfig, rt: &Arc<LocalRuntime>, repo: &Path) -> Result<Vec<Metric>> {
    let n = |full: usize, quick: usize| if cfg.quick { quick } else { full };
    let mut out = Vec::new();
    let auth = BasicAuth {
        user: "opencode".into(),
        password: uuid::Uuid::new_v4().to_string(),
    };
    let oc_spec = || opencode_spec(repo, &cfg.opencode_bin, &auth, &base_config());

    // A sandbox running `true`: create → exited.
    let mut v = Vec::new();
    for _ in 0..n(20, 5) {
        let spec = SandboxSpec::new(repo, vec!["/bin/true".into()]);
        let t = Instant::now();
        let h = rt.create(spec, None).await?;
        let mut st = h.status.clone();
        let _ = st.wait_for(crate::SandboxStatus::is_exited).await;
        v.push(ms(t.elapsed()));
        rt.destroy(&h.id).await?;
    }
    out.push(metric(
        "sandbox.start_ms_p50",
        p50(v),
        "ms",
        Some("target ≤ 20".into()),
    ));

    let mut v = Vec::new();
    for _ in 0..n(3, 1) {
        v.push(host_boot_ms(cfg, repo, &auth).await?);
    }
    let floor = p50(v);
    out.push(metric(
        "opencode.host_boot_ms_p50",
        floor,
        "ms",
        Some("floor".into()),
    ));

    let mut v = Vec::new();
    let mut idle_rss = 0.0;
    for i in 0..n(3, 1) {
        let t = Instant::now();
        let h = rt.create(oc_spec(), None).await?;
        oc_target(rt, &h.id, &auth)
            .wait_ready("/session", READY)
            .await?;
        v.push(ms(t.elapsed()));
        h.start_slot.mark_ready();
        if i == 0 {
            // Let start-up work settle before reading the idle footprint.
            tokio::time::sleep(Duration::from_secs(5)).await;
            idle_rss = rt.stats(&h.id)?.rss_kb as f64 / 1024.0;
        }
        rt.destroy(&h.id).await?;
    }
    let ready = p50(v);
    out.push(metric(
        "sandbox.opencode_ready_ms_p50",
        ready,
        "ms",
        Some(format!("target ≤ {:.0} (floor × 1.15)", floor * 1.15)),
    ));
    out.push(metric(
        "sandbox.idle_rss_mb",
        idle_rss,
        "MB",
        Some("spike: ≈440 MB PSS".into()),
    ));

    // Snapshots of small edits and of build output, on the generated 80 MB repository.
    let small_edits = "for f in $(ls src | head -100); do echo '// edit' >> src/$f; done; \
        mkdir -p added; for i in $(seq 1 20); do head -c 20000 /dev/urandom | base64 > added/f$i; done; \
        rm -rf docs; echo ready; exec sleep 3600";
    let sb = rt
        .create(SandboxSpec::new(repo, sh(small_edits)), None)
        .await?;
    wait_log(rt.as_ref(), &sb.id, "ready").await?;
    let art_dir = cfg.root_dir.join("artifacts");
    std::fs::create_dir_all(&art_dir).ctx(|| "create artifacts dir".into())?;
    let small = art_dir.join("small.tar.zst");
    let mut v = Vec::new();
    let mut bytes = 0;
    for _ in 0..n(5, 2) {
        let t = Instant::now();
        bytes = rt.snapshot(&sb.id, &small).await?.size_bytes;
        v.push(ms(t.elapsed()));
    }
    rt.destroy(&sb.id).await?;
    out.push(metric(
        "snapshot.small_ms_p50",
        p50(v),
        "ms",
        Some("target ≤ 100".into()),
    ));
    out.push(metric(
        "snapshot.small_bytes",
        bytes as f64,
        "bytes",
        Some("spike: 517 KB".into()),
    ));

    let build = "mkdir -p build && cp -r /usr/lib/python3.11 build/ && head -c 20000000 /dev/urandom > build/blob \
        && echo ready; exec sleep 3600";
    let sb = rt.create(SandboxSpec::new(repo, sh(build)), None).await?;
    wait_log(rt.as_ref(), &sb.id, "ready").await?;
    let big = art_dir.join("build.tar.zst");
    let mut v = Vec::new();
    for _ in 0..n(3, 1) {
        let t = Instant::now();
        rt.snapshot(&sb.id, &big).await?;
        v.push(ms(t.elapsed()));
    }
    rt.destroy(&sb.id).await?;
    out.push(metric(
        "snapshot.build_ms_p50",
        p50(v),
        "ms",
        Some("spike: 300".into()),
    ));

    // Restore = unpack + start (of `true`), until the sandbox is running.
    let mut v = Vec::new();
    for _ in 0..n(5, 2) {
        let t = Instant::now();
        let h = rt
            .restore(
                &small,
                SandboxSpec::new(repo, vec!["/bin/true".into()]),
                None,
            )
            .await?;
        v.push(ms(t.elapsed()));
        rt.destroy(&h.id).await?;
    }
    out.push(metric(
        "restore.small_ms_p50",
        p50(v),
        "ms",
        Some("target ≤ 250".into()),
    ));

    // An OpenCode sandbox with a session: snapshot, then restore → ready.
    let h = rt.create(oc_spec(), None).await?;
    oc_target(rt, &h.id, &auth)
        .wait_ready("/session", READY)
        .await?;
    oc_target(rt, &h.id, &auth)
        .call(
            "POST",
            "/session",
            Some(r#"{"title":"bench"}"#),
            Duration::from_secs(60),
        )
        .await?;
    let oc_art = art_dir.join("opencode.tar.zst");
    rt.snapshot(&h.id, &oc_art).await?;
    rt.destroy(&h.id).await?;
    let mut v = Vec::new();
    for _ in 0..n(3, 1) {
        let t = Instant::now();
        let h = rt.restore(&oc_art, oc_spec(), None).await?;
        oc_target(rt, &h.id, &auth)
            .wait_ready("/session", READY)
            .await?;
        v.push(ms(t.elapsed()));
        rt.destroy(&h.id).await?;
    }
    out.push(metric("restore.to_ready_ms_p50", p50(v), "ms", None));

    // Ten creates at once (through the create queue).
    let t = Instant::now();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (rt, spec, auth) = (rt.clone(), oc_spec(), auth.clone());
            tokio::spawn(async move {
                let h = rt.create(spec, None).await?;
                let tgt = Target {
                    rt: rt.as_ref(),
                    id: &h.id,
                    port: OPENCODE_PORT,
                    auth: Some(&auth),
                };
                let r = tgt.wait_ready("/session", READY).await;
                h.start_slot.mark_ready();
                Ok::<_, SandboxError>((h.id, r))
            })
        })
        .collect();
    let mut failed = 0;
    let mut ids = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok((id, r))) => {
                failed += usize::from(r.is_err());
                ids.push(id);
            }
            _ => failed += 1,
        }
    }
    let all_ready = ms(t.elapsed());
    for id in ids {
        rt.destroy(&id).await?;
    }
    out.push(metric(
        "concurrent10.all_ready_ms",
        all_ready,
        "ms",
        Some("spike: median 13,905 (no queue)".into()),
    ));
    out.push(metric(
        "concurrent10.failed",
        failed as f64,
        "count",
        Some("target 0".into()),
    ));
    let _ = std::fs::remove_dir_all(&art_dir);
    Ok(out)
}

fn oc_target<'a>(rt: &'a LocalRuntime, id: &'a SandboxId, auth: &'a BasicAuth) -> Target<'a> {
    Target {
        rt,
        id,
        port: OPENCODE_PORT,
        auth: Some(auth),
    }
}

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

async fn wait_log(rt: &dyn SandboxRuntime, id: &SandboxId, word: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !String::from_utf8_lossy(&rt.logs(id, 4096).await?).contains(word) {
        if Instant::now() > deadline {
            return Err(SandboxError::Timeout {
                what: format!("bench set-up in {id}"),
                secs: 300,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A git repository like the spike's: ~5,000 files, ~80 MB.
#[expect(
    clippy::disallowed_methods,
    reason = "den-sandbox runs git to build the bench repository"
)]
/// An 80 MB, 5,000-file git repository with one commit at `dir` (kept if it exists).
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

/// OpenCode started directly on the host (no sandbox): launch → GET /session 200.
#[expect(
    clippy::disallowed_methods,
    reason = "den-sandbox starts OpenCode on the host for the floor"
)]
pub async fn host_boot_ms(cfg: &BenchConfig, repo: &Path, auth: &BasicAuth) -> Result<f64> {
    let home = cfg.root_dir.join("host-home");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).ctx(|| "create host home".into())?;
    if let Some(t) = &cfg.home_template {
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
    let mut child = tokio::process::Command::new(&cfg.opencode_bin)
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
    let result = loop {
        let attempt = tokio::time::timeout(Duration::from_secs(1), async {
            let s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            crate::probe::request(Box::new(s), "GET", "/session", Some(auth), None).await
        })
        .await;
        if let Ok(Ok(r)) = attempt
            && r.status == 200
        {
            break Ok(ms(t.elapsed()));
        }
        if t.elapsed() > READY {
            break Err(SandboxError::Timeout {
                what: "OpenCode on the host".into(),
                secs: READY.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&home);
    result
}
