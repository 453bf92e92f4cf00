//! The `density` suite: how many sessions one host holds.
//!
//! Running sessions: idle sessions are started one after another on one den (no warm pool) until
//! the first of: the host's available memory under 10%, a start failing, or `MAX_SESSIONS`;
//! then each gets a prompt, one after another, and the prompt's latency (sent → turn finished)
//! is compared with the same prompt to one session alone, measured first in the same run.
//! Paused sessions: 10,000 paused sessions across 100 people in the store; the session list's
//! latency with them, and den's start-up recovery with them against an empty store.

use std::time::{Duration, Instant};

use super::den::{BenchDen, available_memory_share, rss_mb, sandboxes_rss_mb};
use super::model::BenchModel;
use super::{Metric, median, quantile};
use crate::config::Settings;

const MAX_SESSIONS: usize = 100;
const MIN_AVAILABLE: f64 = 0.10;
const PAUSED_USERS: usize = 100;
const PAUSED_PER_USER: usize = 100;

pub(crate) async fn run(settings: &Settings, quick: bool) -> anyhow::Result<Vec<Metric>> {
    let model = BenchModel::start(5, Duration::from_millis(1)).await?;
    let den = BenchDen::start(settings, &model, 0).await?;
    let result = async {
        let mut metrics = running(&den, quick).await?;
        metrics.extend(paused(&den, quick).await?);
        Ok(metrics)
    }
    .await;
    den.stop().await;
    result
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// One prompt to `session`, sent → its turn finished.
async fn prompt_ms(den: &BenchDen, session: &str) -> anyhow::Result<f64> {
    let mut watcher = den.watch(session).await?;
    // Past what is already stored: the history replays first.
    watcher.caught_up().await?;
    let t0 = Instant::now();
    den.prompt(session, "hello").await?;
    watcher.turn_finished().await?;
    watcher.close().await;
    Ok(ms(t0))
}

async fn running(den: &BenchDen, quick: bool) -> anyhow::Result<Vec<Metric>> {
    let repo = den.repos.join("small");
    std::fs::create_dir_all(&repo)?;
    std::fs::write(repo.join("README.md"), "density\n")?;
    den_git::init_with_commit(&repo, "first").await?;

    // One session alone: the baseline.
    // A session starts with its first prompt.
    let alone = den.create_session(&repo, Some("hello")).await?;
    den.watch(&alone).await?.turn_finished().await?;
    let mut baseline = Vec::new();
    for _ in 0..if quick { 5 } else { 20 } {
        baseline.push(prompt_ms(den, &alone).await?);
    }

    let den_rss_before = rss_mb("self")?;
    let mut sessions = vec![alone];
    let limit = if quick { 10 } else { MAX_SESSIONS };
    let stopped_by = loop {
        if sessions.len() >= limit {
            break format!("{limit} sessions");
        }
        if available_memory_share() < MIN_AVAILABLE {
            break "available memory under 10%".to_owned();
        }
        let started = async {
            let session = den.create_session(&repo, Some("hello")).await?;
            den.watch(&session).await?.turn_finished().await?;
            Ok::<_, anyhow::Error>(session)
        }
        .await;
        match started {
            Ok(session) => sessions.push(session),
            Err(err) => break format!("a start failed: {err:#}"),
        }
        if sessions.len() % 10 == 0 {
            eprintln!(
                "  {} sessions running, {:.0}% of memory available",
                sessions.len(),
                available_memory_share() * 100.0
            );
        }
    };
    let count = sessions.len();
    eprintln!("  stopped at {count} sessions: {stopped_by}");
    let available = available_memory_share();
    let sandbox_rss = sandboxes_rss_mb(den.uid_base);
    let den_rss = rss_mb("self")?;

    let mut loaded = Vec::new();
    for session in &sessions {
        match prompt_ms(den, session).await {
            Ok(took) => loaded.push(took),
            Err(err) => eprintln!("  a prompt at full density failed: {err:#}"),
        }
    }
    let failed_prompts = count - loaded.len();
    for session in &sessions {
        let _ = den
            .api(
                reqwest::Method::DELETE,
                &format!("/api/sessions/{session}"),
                None,
            )
            .await;
    }
    let alone_p99 = quantile(baseline.clone(), 0.99);
    let loaded_p99 = quantile(loaded, 0.99);
    Ok(vec![
        Metric::new("density.running_sessions", count as f64, "count")
            .note(format!("stopped by: {stopped_by}; target ≥ 60")),
        Metric::new(
            "density.prompt_p99_ratio",
            if alone_p99 > 0.0 {
                loaded_p99 / alone_p99
            } else {
                0.0
            },
            "ratio",
        )
        .note(format!(
            "p99 {loaded_p99:.0} ms at full density vs {alone_p99:.0} ms alone ({failed_prompts} failed); target ≤ 2"
        )),
        Metric::new("density.prompt_ms_p50_alone", median(baseline), "ms"),
        Metric::new("density.sandbox_rss_mb_per_session", sandbox_rss / count as f64, "MB")
            .note("RSS of each idle session's sandbox processes"),
        Metric::new("density.den_rss_mb", den_rss, "MB").note(format!(
            "den's own memory at full density ({den_rss_before:.0} MB with one session)"
        )),
        Metric::new("density.available_memory_pct", available * 100.0, "%")
            .note("the host's, at full density (shared machine)"),
    ])
}

/// 10,000 paused sessions across 100 people: the list's latency, and den's start-up recovery.
async fn paused(den: &BenchDen, quick: bool) -> anyhow::Result<Vec<Metric>> {
    let store = &den.store;
    let recover_empty = {
        let t0 = Instant::now();
        den.manager.recover().await?;
        ms(t0)
    };
    let users = if quick { 10 } else { PAUSED_USERS };
    let mut owners = vec![den.owner_id];
    for i in 1..users {
        let user = den_server::accounts::create_user(store, &format!("paused{i}"), None, false)
            .await
            .map_err(|err| anyhow::anyhow!("creating a bench user: {err:?}"))?;
        owners.push(user.id);
    }
    let t0 = Instant::now();
    for owner in &owners {
        for n in 0..PAUSED_PER_USER {
            let id = uuid::Uuid::now_v7();
            store
                .create_session(den_store::NewSession {
                    id,
                    owner_id: *owner,
                    title: &format!("paused session {n}"),
                    repository: "https://example.invalid/repo.git",
                    base_branch: None,
                    work_branch: &format!("den/{}", &id.simple().to_string()[..8]),
                    model: "bench/model",
                })
                .await?;
            store
                .set_session_agent_state(id, Some("ses_bench"), Some(&format!("{id}-snapshot")))
                .await?;
            store
                .set_session_status(id, den_protocol::sessions::SessionStatus::Paused, None)
                .await?;
        }
    }
    eprintln!(
        "  stored {} paused sessions in {:.1} s",
        owners.len() * PAUSED_PER_USER,
        t0.elapsed().as_secs_f64()
    );
    let recover_paused = {
        let t0 = Instant::now();
        den.manager.recover().await?;
        ms(t0)
    };
    let mut list = Vec::new();
    for _ in 0..if quick { 50 } else { 300 } {
        let t0 = Instant::now();
        let (status, body) = den.api(reqwest::Method::GET, "/api/sessions", None).await?;
        list.push(ms(t0));
        anyhow::ensure!(status.is_success(), "list: {status} {body}");
    }
    Ok(vec![
        Metric::new("density.paused_list_ms_p99", quantile(list, 0.99), "ms").note(format!(
            "GET /api/sessions of one person among {} paused sessions; target ≤ 20",
            owners.len() * PAUSED_PER_USER
        )),
        Metric::new("density.recover_ms_empty", recover_empty, "ms")
            .note("den's start-up recovery, no sessions stored"),
        Metric::new("density.recover_ms_paused", recover_paused, "ms")
            .against("density.recover_ms_empty")
            .note("the same with the paused sessions stored (should not grow with them)"),
    ])
}
