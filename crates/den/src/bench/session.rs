//! The `session` suite: a session's life on an 80 MB, 5,000-file local repository, through
//! den's REST API and WebSocket: create → ready for a prompt (the commit's first session, which
//! clones it; later ones without a warm pool; later ones claiming a warm pool sandbox), pause
//! after a finished turn, resume → ready; den's own memory per idle running session (OpenCode
//! excluded) and what an idle warm pool sandbox costs.
//! Baseline: OpenCode started directly on the host, no sandbox (the floor of any start).

use std::time::{Duration, Instant};

use super::den::{BenchDen, rss_mb, traversable};
use super::model::BenchModel;
use super::{Metric, median};
use crate::config::Settings;

const FLOOR: &str = "session.floor_opencode_host_boot_ms_p50";

const NO_POOL: &str = "session.create_to_ready_ms_p50";

pub(crate) async fn run(settings: &Settings, quick: bool) -> anyhow::Result<Vec<Metric>> {
    let model = BenchModel::start(5, Duration::from_millis(1)).await?;
    let den = BenchDen::start(settings, &model, 0).await?;
    let result = measure(settings, &den, quick).await;
    den.stop().await;
    let mut metrics = result?;
    // The same repository again, in a den with a warm pool (one den at a time: they share the
    // bench's sandbox instance).
    let den = BenchDen::start(settings, &model, POOL_SIZE).await?;
    let pooled = measure_pool(&den, quick).await;
    den.stop().await;
    metrics.extend(pooled?);
    Ok(metrics)
}

const POOL_SIZE: usize = 2;

/// Creates with a full warm pool: create → ready, and the pool's idle memory.
async fn measure_pool(den: &BenchDen, quick: bool) -> anyhow::Result<Vec<Metric>> {
    let repo = den.repos.join("big");
    let made = repo.clone();
    tokio::task::spawn_blocking(move || den_sandbox::bench::make_repo(&made)).await??;
    // The commit's first session clones it (measured in the den without a pool); here every
    // create is a later one.
    // A session starts with its first prompt.
    let warmup = den.create_session(&repo, Some("hello")).await?;
    den.watch(&warmup).await?.turn_finished().await?;
    delete(den, &warmup).await?;
    wait_pool_full(den).await?;
    let idle_rss = super::den::sandboxes_rss_mb(den.uid_base) / POOL_SIZE as f64;
    let mut create = Vec::new();
    for _ in 0..if quick { 3 } else { 7 } {
        wait_pool_full(den).await?;
        let t0 = Instant::now();
        let session = den.create_session(&repo, Some("hello")).await?;
        let mut watcher = den.watch(&session).await?;
        create.push(ms(t0, watcher.ready().await?));
        watcher.turn_finished().await?;
        watcher.close().await;
        delete(den, &session).await?;
    }
    Ok(vec![
        Metric::new("session.create_to_ready_ms_p50_pool", median(create), "ms")
            .against(NO_POOL)
            .note("a warm pool sandbox claimed; target ≤ 300"),
        Metric::new("session.pool_idle_rss_mb_per_sandbox", idle_rss, "MB")
            .note("what each waiting pool sandbox holds (RSS of its processes)"),
    ])
}

/// Until the warm pool has all its sandboxes booted.
async fn wait_pool_full(den: &BenchDen) -> anyhow::Result<()> {
    let deadline = Instant::now() + super::den::WITHIN;
    while den.manager.warm_sandboxes() < POOL_SIZE {
        anyhow::ensure!(Instant::now() < deadline, "the warm pool did not fill");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn ms(since: Instant, until: Instant) -> f64 {
    until.duration_since(since).as_secs_f64() * 1000.0
}

async fn measure(settings: &Settings, den: &BenchDen, quick: bool) -> anyhow::Result<Vec<Metric>> {
    let repo = den.repos.join("big");
    let started = Instant::now();
    let made = repo.clone();
    tokio::task::spawn_blocking(move || den_sandbox::bench::make_repo(&made)).await??;
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        "bench repository made"
    );

    let floor = floor_ms(settings, &repo, quick).await?;

    let runs = if quick { 3 } else { 6 };
    let (mut create, mut pause, mut resume) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let t0 = Instant::now();
        let session = den.create_session(&repo, Some("hello")).await?;
        let mut watcher = den.watch(&session).await?;
        create.push(ms(t0, watcher.ready().await?));
        watcher.turn_finished().await?;

        let t0 = Instant::now();
        let (status, body) = den
            .api(
                reqwest::Method::POST,
                &format!("/api/sessions/{session}/pause"),
                None,
            )
            .await?;
        pause.push(t0.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            status == reqwest::StatusCode::NO_CONTENT,
            "pause: {status} {body}"
        );

        let t0 = Instant::now();
        let (status, body) = den
            .api(
                reqwest::Method::POST,
                &format!("/api/sessions/{session}/resume"),
                None,
            )
            .await?;
        anyhow::ensure!(status.is_success(), "resume: {status} {body}");
        resume.push(ms(t0, watcher.ready().await?));
        watcher.close().await;
        delete(den, &session).await?;
    }

    let per_session = idle_rss_per_session(den, &repo, if quick { 5 } else { 10 }).await?;
    // The first create of a commit clones it; later ones reuse den's pristine clone.
    let first = create.first().copied().unwrap_or(0.0);
    let later = median(create.get(1..).unwrap_or_default().to_vec());
    Ok(vec![
        Metric::new(FLOOR, floor, "ms").note("OpenCode on the host, no sandbox"),
        Metric::new("session.create_to_ready_ms_first", first, "ms")
            .against(NO_POOL)
            .note("first session of the commit (80 MB clone, overlapped with the boot); target ≤ 1.3x"),
        Metric::new(NO_POOL, later, "ms")
            .against(FLOOR)
            .note("no warm pool; target ≤ 1.1x the floor"),
        Metric::new("session.pause_ms_p50", median(pause), "ms").note("target ≤ 150"),
        Metric::new("session.resume_to_ready_ms_p50", median(resume), "ms")
            .against(FLOOR)
            .note("from the snapshot, never through the pool; target ≤ 1.2x the floor"),
        Metric::new("den.rss_mb_per_idle_session", per_session, "MB").note("target ≤ 5"),
    ])
}

async fn delete(den: &BenchDen, session: &str) -> anyhow::Result<()> {
    let (status, body) = den
        .api(
            reqwest::Method::DELETE,
            &format!("/api/sessions/{session}"),
            None,
        )
        .await?;
    anyhow::ensure!(status.is_success(), "delete: {status} {body}");
    Ok(())
}

/// den's resident memory with `k` idle running sessions, minus without, per session.
async fn idle_rss_per_session(
    den: &BenchDen,
    repo: &std::path::Path,
    k: usize,
) -> anyhow::Result<f64> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_mb("self")?;
    let mut sessions = Vec::new();
    for _ in 0..k {
        sessions.push(den.create_session(repo, Some("hello")).await?);
    }
    for session in &sessions {
        let mut watcher = den.watch(session).await?;
        watcher.turn_finished().await?;
        watcher.close().await;
    }
    // Let the finished turns' snapshots and buffers settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_mb("self")?;
    tracing::info!(before, after, k, "den's memory with idle sessions");
    for session in &sessions {
        delete(den, session).await?;
    }
    Ok((after - before) / k as f64)
}

/// OpenCode started on the host in the repository (no sandbox, no den): the floor.
async fn floor_ms(settings: &Settings, repo: &std::path::Path, quick: bool) -> anyhow::Result<f64> {
    let root = tempfile::tempdir()?;
    traversable(root.path())?;
    let opencode_bin = super::sandbox::opencode_bin(settings);
    let home_template = super::sandbox::home_template(settings);
    let auth = den_sandbox::probe::BasicAuth {
        user: "opencode".to_owned(),
        password: uuid_like(),
    };
    let mut runs = Vec::new();
    for _ in 0..if quick { 1 } else { 3 } {
        let boot = super::sandbox::host_boot_ms(
            &opencode_bin,
            home_template.as_deref(),
            root.path(),
            repo,
            &auth,
        );
        runs.push(boot.await?);
    }
    Ok(median(runs))
}

fn uuid_like() -> String {
    format!("{:x}", super::model::now_ns())
}
