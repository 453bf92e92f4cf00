//! The `sandbox` suite: the sandbox runtime's own measurements (the metric names of issue 3).
//! It starts its own runtime instance in a scratch directory, so it can run beside a live den,
//! and removes everything it made. den-sandbox starts the processes it needs outside a
//! sandbox (git for the repository, OpenCode on the host); the statistics are den's own.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use den_sandbox::probe::{BasicAuth, Target};
use den_sandbox::{LocalConfig, LocalRuntime, SandboxId, SandboxRuntime, SandboxSpec};
use den_session::agent_sandbox::{OPENCODE_PORT, base_config, opencode_spec};

use super::{Metric, median};
use crate::config::Settings;

/// How long a sandbox (or OpenCode on the host) may take to answer.
const READY: Duration = Duration::from_secs(300);
/// The metric the sandboxed OpenCode starts are compared with.
pub(crate) const HOST_BOOT: &str = "opencode.host_boot_ms_p50";

pub(crate) async fn run(settings: &Settings, quick: bool) -> anyhow::Result<Vec<Metric>> {
    let root = tempfile::tempdir().context("creating a scratch directory")?;
    // Sandboxes run as other uids and must reach their directories below this one.
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o711))?;
    let bench = Bench {
        root: root.path().to_owned(),
        repo: root.path().join("bench-repo"),
        opencode_bin: opencode_bin(settings),
        home_template: home_template(settings),
        quick,
        auth: BasicAuth {
            user: "opencode".into(),
            password: uuid::Uuid::new_v4().to_string(),
        },
    };
    let made = bench.repo.clone();
    tokio::task::spawn_blocking(move || den_sandbox::bench::make_repo(&made)).await??;
    let mut local = LocalConfig::new(bench.root.join("state"));
    local.instance = "bench".into();
    local.uid_base = 2_900_000;
    local.uid_count = 64;
    local.home_template.clone_from(&bench.home_template);
    let (rt, _) = LocalRuntime::start(local).await?;
    let result = bench.measure(&rt).await;
    rt.shutdown().await?;
    result.context("measuring the sandbox runtime")
}

/// The OpenCode binary den would run (`DEN_OPENCODE_BIN` wins, as for `den serve`).
pub(crate) fn opencode_bin(settings: &Settings) -> PathBuf {
    std::env::var_os("DEN_OPENCODE_BIN")
        .map(Into::into)
        .unwrap_or_else(|| {
            den_sandbox::opencode_bin_in(&settings.tools_dir, den_opencode::PINNED_VERSION)
        })
}

pub(crate) fn home_template(settings: &Settings) -> Option<PathBuf> {
    let template = den_sandbox::home_template_in(&settings.tools_dir, den_opencode::PINNED_VERSION);
    template.exists().then_some(template)
}

/// OpenCode started on the host in `repo` (no sandbox, no den), in milliseconds: the floor.
pub(crate) async fn host_boot_ms(
    opencode_bin: &Path,
    home_template: Option<&Path>,
    scratch: &Path,
    repo: &Path,
    auth: &BasicAuth,
) -> anyhow::Result<f64> {
    let boot = den_sandbox::bench::HostBoot {
        opencode_bin,
        home_template,
        scratch,
        within: READY,
    };
    let took = den_sandbox::bench::host_boot(boot, repo, auth)
        .await
        .context("starting OpenCode on the host")?;
    Ok(ms(took))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

struct Bench {
    root: PathBuf,
    repo: PathBuf,
    opencode_bin: PathBuf,
    home_template: Option<PathBuf>,
    quick: bool,
    auth: BasicAuth,
}

impl Bench {
    fn runs(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }

    fn opencode(&self) -> SandboxSpec {
        opencode_spec(&self.repo, &self.opencode_bin, &self.auth, &base_config())
    }

    fn target<'a>(&'a self, rt: &'a LocalRuntime, id: &'a SandboxId) -> Target<'a> {
        Target {
            rt,
            id,
            port: OPENCODE_PORT,
            auth: Some(&self.auth),
        }
    }

    async fn measure(&self, rt: &Arc<LocalRuntime>) -> anyhow::Result<Vec<Metric>> {
        let mut out = Vec::new();
        let repo = self.repo.as_path();

        // A sandbox running `true`: create → exited.
        let mut runs = Vec::new();
        for _ in 0..self.runs(20, 5) {
            let spec = SandboxSpec::new(repo, vec!["/bin/true".into()]);
            let t = Instant::now();
            let h = rt.create(spec, None).await?;
            let mut status = h.status.clone();
            let _ = status.wait_for(den_sandbox::SandboxStatus::is_exited).await;
            runs.push(ms(t.elapsed()));
            rt.destroy(&h.id).await?;
        }
        out.push(Metric::new("sandbox.start_ms_p50", median(runs), "ms").note("target ≤ 20"));

        let mut runs = Vec::new();
        for _ in 0..self.runs(3, 1) {
            let home_template = self.home_template.as_deref();
            let boot = host_boot_ms(
                &self.opencode_bin,
                home_template,
                &self.root,
                repo,
                &self.auth,
            );
            runs.push(boot.await?);
        }
        let floor = median(runs);
        out.push(Metric::new(HOST_BOOT, floor, "ms").note("floor"));

        let mut runs = Vec::new();
        let mut idle_rss = 0.0;
        for i in 0..self.runs(3, 1) {
            let t = Instant::now();
            let h = rt.create(self.opencode(), None).await?;
            self.target(rt, &h.id).wait_ready("/session", READY).await?;
            runs.push(ms(t.elapsed()));
            h.start_slot.mark_ready();
            if i == 0 {
                // Let start-up work settle before reading the idle footprint.
                tokio::time::sleep(Duration::from_secs(5)).await;
                idle_rss = rt.stats(&h.id)?.rss_kb as f64 / 1024.0;
            }
            rt.destroy(&h.id).await?;
        }
        out.push(
            Metric::new("sandbox.opencode_ready_ms_p50", median(runs), "ms")
                .against(HOST_BOOT)
                .note(format!("target ≤ {:.0} (floor × 1.15)", floor * 1.15)),
        );
        out.push(Metric::new("sandbox.idle_rss_mb", idle_rss, "MB").note("spike: ≈440 MB PSS"));

        // Snapshots of small edits and of build output, on the generated 80 MB repository.
        let small_edits = "for f in $(ls src | head -100); do echo '// edit' >> src/$f; done; \
            mkdir -p added; for i in $(seq 1 20); do head -c 20000 /dev/urandom | base64 > added/f$i; done; \
            rm -rf docs; echo ready; exec sleep 3600";
        let sb = rt
            .create(SandboxSpec::new(repo, sh(small_edits)), None)
            .await?;
        wait_log(rt.as_ref(), &sb.id, "ready").await?;
        let artifacts = self.root.join("artifacts");
        std::fs::create_dir_all(&artifacts).context("creating the artifacts directory")?;
        let small = artifacts.join("small.tar.zst");
        let mut runs = Vec::new();
        let mut bytes = 0;
        for _ in 0..self.runs(5, 2) {
            let t = Instant::now();
            bytes = rt.snapshot(&sb.id, &small).await?.size_bytes;
            runs.push(ms(t.elapsed()));
        }
        rt.destroy(&sb.id).await?;
        out.push(Metric::new("snapshot.small_ms_p50", median(runs), "ms").note("target ≤ 100"));
        out.push(Metric::new("snapshot.small_bytes", bytes as f64, "bytes").note("spike: 517 KB"));

        let build = "mkdir -p build && cp -r /usr/lib/python3.11 build/ && head -c 20000000 /dev/urandom > build/blob \
            && echo ready; exec sleep 3600";
        let sb = rt.create(SandboxSpec::new(repo, sh(build)), None).await?;
        wait_log(rt.as_ref(), &sb.id, "ready").await?;
        let big = artifacts.join("build.tar.zst");
        let mut runs = Vec::new();
        for _ in 0..self.runs(3, 1) {
            let t = Instant::now();
            rt.snapshot(&sb.id, &big).await?;
            runs.push(ms(t.elapsed()));
        }
        rt.destroy(&sb.id).await?;
        out.push(Metric::new("snapshot.build_ms_p50", median(runs), "ms").note("spike: 300"));

        // Restore = unpack + start (of `true`), until the sandbox is running.
        let mut runs = Vec::new();
        for _ in 0..self.runs(5, 2) {
            let t = Instant::now();
            let spec = SandboxSpec::new(repo, vec!["/bin/true".into()]);
            let h = rt.restore(&small, spec, None).await?;
            runs.push(ms(t.elapsed()));
            rt.destroy(&h.id).await?;
        }
        out.push(Metric::new("restore.small_ms_p50", median(runs), "ms").note("target ≤ 250"));

        // An OpenCode sandbox with a session: snapshot, then restore → ready.
        let h = rt.create(self.opencode(), None).await?;
        self.target(rt, &h.id).wait_ready("/session", READY).await?;
        self.target(rt, &h.id)
            .call(
                "POST",
                "/session",
                Some(r#"{"title":"bench"}"#),
                Duration::from_secs(60),
            )
            .await?;
        let with_session = artifacts.join("opencode.tar.zst");
        rt.snapshot(&h.id, &with_session).await?;
        rt.destroy(&h.id).await?;
        let mut runs = Vec::new();
        for _ in 0..self.runs(3, 1) {
            let t = Instant::now();
            let h = rt.restore(&with_session, self.opencode(), None).await?;
            self.target(rt, &h.id).wait_ready("/session", READY).await?;
            runs.push(ms(t.elapsed()));
            rt.destroy(&h.id).await?;
        }
        out.push(Metric::new("restore.to_ready_ms_p50", median(runs), "ms").against(HOST_BOOT));

        // Ten creates at once (through the create queue).
        let t = Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (rt, spec, auth) = (rt.clone(), self.opencode(), self.auth.clone());
                tokio::spawn(async move {
                    let h = rt.create(spec, None).await?;
                    let target = Target {
                        rt: rt.as_ref(),
                        id: &h.id,
                        port: OPENCODE_PORT,
                        auth: Some(&auth),
                    };
                    let ready = target.wait_ready("/session", READY).await;
                    h.start_slot.mark_ready();
                    Ok::<_, den_sandbox::SandboxError>((h.id, ready))
                })
            })
            .collect();
        let mut failed = 0;
        let mut ids = Vec::new();
        for task in tasks {
            match task.await {
                Ok(Ok((id, ready))) => {
                    failed += usize::from(ready.is_err());
                    ids.push(id);
                }
                _ => failed += 1,
            }
        }
        let all_ready = ms(t.elapsed());
        for id in ids {
            rt.destroy(&id).await?;
        }
        out.push(
            Metric::new("concurrent10.all_ready_ms", all_ready, "ms")
                .note("spike: median 13,905 (no queue)"),
        );
        out.push(Metric::new("concurrent10.failed", failed as f64, "count").note("target 0"));
        let _ = std::fs::remove_dir_all(&artifacts);
        Ok(out)
    }
}

/// Waits until the sandbox's output contains `word` (its set-up script finished).
async fn wait_log(rt: &dyn SandboxRuntime, id: &SandboxId, word: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY;
    while !String::from_utf8_lossy(&rt.logs(id, 4096).await?).contains(word) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "bench set-up in {id} did not finish in {} s",
            READY.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
