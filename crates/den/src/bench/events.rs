//! The `events` suite: how long an event of the agent takes to reach den's WebSocket clients.
//!
//! The bench model streams numbered deltas 10 ms apart and notes when it wrote each one. For 1,
//! 100 and 1000 WebSocket clients of one session (in a separate process, `worker`), latency is
//! the time a client first saw a marker minus the time the model wrote it, over every (client,
//! marker) pair. The baseline is a client of OpenCode's own event stream inside the sandbox,
//! reading the same deltas of the same turns as the one WebSocket client; it keeps reading
//! during the other runs, to show how much the load of many clients slows OpenCode itself.
//! A full run pools three turns for c1 and c1000: one turn's tail swings with the box.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::den::{BenchDen, WITHIN, Watcher, cpu_ms, rss_mb};
use super::model::{BenchModel, markers, now_ns};
use super::{Metric, quantile};
use crate::config::Settings;

type Seen = Arc<Mutex<HashMap<u64, u64>>>;

pub(crate) async fn run(settings: &Settings, quick: bool) -> anyhow::Result<Vec<Metric>> {
    let deltas = if quick { 100 } else { 200 };
    let model = BenchModel::start(deltas, Duration::from_millis(10)).await?;
    let den = BenchDen::start(settings, &model, 0).await?;
    let result = measure(&den, &model, quick).await;
    den.stop().await;
    result
}

async fn measure(den: &BenchDen, model: &BenchModel, quick: bool) -> anyhow::Result<Vec<Metric>> {
    let repo = den.repos.join("project");
    std::fs::create_dir_all(&repo)?;
    std::fs::write(repo.join("README.md"), "# bench\n")?;
    den_git::init_with_commit(&repo, "bench").await?;

    // A first turn warms everything up; it is not measured.
    let session = den.create_session(&repo, Some("warm up")).await?;
    let mut watcher = den.watch(&session).await?;
    watcher.ready().await?;
    watcher.turn_finished().await?;

    let handle = den.manager.session(den.owner_id, session.parse()?).await?;
    let agent = handle
        .agent_client()
        .await?
        .context("the session has no running agent")?;
    let direct: Seen = Arc::default();
    let mut stream = agent.subscribe().await?;
    let reader = tokio::spawn({
        let direct = direct.clone();
        async move {
            while let Some(Ok(envelope)) = stream.next().await {
                let at = now_ns();
                if let den_opencode::Event::MessagePartDelta { delta, .. } = envelope.into_event() {
                    let mut seen = direct.lock().unwrap_or_else(|p| p.into_inner());
                    for marker in markers(&delta) {
                        seen.entry(marker).or_insert(at);
                    }
                }
            }
        }
    });

    // The direct client reads every turn, so each run has its baseline from the same turns.
    let direct_latencies = |markers: &[u64]| -> Vec<f64> {
        let sent = model.sent();
        let seen = direct.lock().unwrap_or_else(|p| p.into_inner());
        markers
            .iter()
            .filter_map(|m| Some(latency_ms(*sent.get(m)?, *seen.get(m)?)))
            .collect()
    };
    let repeats = if quick { 1 } else { 3 };
    let c1 = pooled(den, model, &session, &mut watcher, 1, repeats).await?;
    let c100 = clients(den, model, &session, &mut watcher, 100).await?;
    let c1000 = pooled(den, model, &session, &mut watcher, 1000, repeats).await?;
    reader.abort();

    let direct = direct_latencies(&c1.markers);
    anyhow::ensure!(!direct.is_empty(), "the direct client saw no delta");
    let direct_c1000 = direct_latencies(&c1000.markers);
    let direct_p99 = quantile(direct.clone(), 0.99);
    let c1_p99 = quantile(c1.latencies_ms.clone(), 0.99);
    let mut metrics = vec![
        Metric::new("events.direct_p50_ms", quantile(direct, 0.5), "ms")
            .note("OpenCode's own /event stream, same turns as c1"),
        Metric::new("events.direct_p99_ms", direct_p99, "ms").note("baseline"),
        Metric::new("events.ws_p50_ms_c1", quantile(c1.latencies_ms, 0.5), "ms"),
        Metric::new("events.ws_p99_ms_c1", c1_p99, "ms").against("events.direct_p99_ms"),
    ];
    metrics.extend(c100.metrics(100));
    metrics.extend(c1000.metrics(1000));
    metrics.push(
        Metric::new(
            "events.direct_p99_ms_during_c1000",
            quantile(direct_c1000, 0.99),
            "ms",
        )
        .note("OpenCode's own stream in the c1000 turns: the load slows OpenCode too"),
    );
    metrics.push(
        Metric::new(
            "events.ratio_vs_direct_p99",
            if direct_p99 > 0.0 {
                c1_p99 / direct_p99
            } else {
                0.0
            },
            "x",
        )
        .note("c1 / direct; target ≤ 1.2"),
    );
    let c1000_p99 = quantile(c1000.latencies_ms.clone(), 0.99);
    metrics.push(
        Metric::new(
            "events.ws_p99_over_direct_ms_c1000",
            c1000_p99 - direct_p99,
            "ms",
        )
        .note("target ≤ 5"),
    );
    metrics.push(
        Metric::new("den.rss_mb_c1000", c1000.rss_mb.unwrap_or(0.0), "MB")
            .note("den's process with 1000 clients connected (clients run apart)"),
    );
    Ok(metrics)
}

/// `repeats` turns of `n` clients, their pairs pooled: one turn's p99 swings with the box.
async fn pooled(
    den: &BenchDen,
    model: &BenchModel,
    session: &str,
    watcher: &mut Watcher,
    n: usize,
    repeats: usize,
) -> anyhow::Result<Run> {
    let mut all = clients(den, model, session, watcher, n).await?;
    for _ in 1..repeats {
        let run = clients(den, model, session, watcher, n).await?;
        all.latencies_ms.extend(run.latencies_ms);
        all.markers.extend(run.markers);
        all.missing += run.missing;
        all.closed += run.closed;
        all.den_cpu_ms += run.den_cpu_ms;
        all.clients_cpu_ms += run.clients_cpu_ms;
        all.messages += run.messages;
    }
    Ok(all)
}

fn latency_ms(sent: u64, received: u64) -> f64 {
    received.saturating_sub(sent) as f64 / 1e6
}

struct Run {
    latencies_ms: Vec<f64>,
    markers: Vec<u64>,
    /// Pairs a client should have seen but did not, and clients the server closed.
    missing: usize,
    closed: usize,
    rss_mb: Option<f64>,
    /// CPU used during the turn by den's process (with the model) and by the clients' process.
    den_cpu_ms: f64,
    clients_cpu_ms: f64,
    /// (client, event) pairs delivered: what the CPU times divide into.
    messages: usize,
}

impl Run {
    fn metrics(&self, n: usize) -> Vec<Metric> {
        let mut out = vec![
            Metric::new(
                &format!("events.ws_p50_ms_c{n}"),
                quantile(self.latencies_ms.clone(), 0.5),
                "ms",
            ),
            Metric::new(
                &format!("events.ws_p99_ms_c{n}"),
                quantile(self.latencies_ms.clone(), 0.99),
                "ms",
            )
            .against("events.direct_p99_ms"),
        ];
        if n >= 1000 {
            let per_message = |ms: f64| ms * 1000.0 / self.messages.max(1) as f64;
            out.push(
                Metric::new(
                    &format!("den.cpu_us_per_message_c{n}"),
                    per_message(self.den_cpu_ms),
                    "us",
                )
                .note("den's CPU per event delivered to one client (model included)"),
            );
            out.push(
                Metric::new(
                    &format!("clients.cpu_us_per_message_c{n}"),
                    per_message(self.clients_cpu_ms),
                    "us",
                )
                .note("the clients' process, per event received"),
            );
        }
        if self.missing > 0 || self.closed > 0 {
            out.push(
                Metric::new(&format!("events.missed_c{n}"), self.missing as f64, "pairs")
                    .note(format!("{} clients closed by den", self.closed)),
            );
        }
        out
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "the WebSocket clients run in a second den process so den's memory can be read \
              apart from theirs; den's runtime code starts processes only in den-sandbox"
)]
fn worker_command() -> anyhow::Result<tokio::process::Command> {
    Ok(tokio::process::Command::new(
        std::env::current_exe().context("locating the den binary")?,
    ))
}

/// One turn followed by `n` WebSocket clients.
async fn clients(
    den: &BenchDen,
    model: &BenchModel,
    session: &str,
    watcher: &mut Watcher,
    n: usize,
) -> anyhow::Result<Run> {
    let mut child = worker_command()?
        .args(["bench", "--ws-worker"])
        .arg(den.ws_url(session, watcher.seq))
        .args(["--ws-clients", &n.to_string()])
        .env(super::worker::TOKEN_ENV, &den.token)
        .env("DEN_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the WebSocket clients")?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let first = tokio::time::timeout(WITHIN, lines.next_line())
        .await
        .context("the clients did not connect in time")??;
    anyhow::ensure!(
        first.as_deref() == Some("ready"),
        "the clients failed to connect"
    );
    let rss = if n >= 1000 {
        // Let the connections' buffers settle before reading den's resident set.
        tokio::time::sleep(Duration::from_secs(1)).await;
        Some(rss_mb("self")?)
    } else {
        None
    };
    let before = model.sent().len();
    let cpu_before = cpu_ms("self")?;
    den.prompt(session, "stream").await?;
    watcher.turn_finished().await?;
    let den_cpu = cpu_ms("self")? - cpu_before;
    let line = tokio::time::timeout(WITHIN, lines.next_line())
        .await
        .context("the clients did not finish in time")??
        .context("the clients exited without a result")?;
    let status = child.wait().await?;
    anyhow::ensure!(status.success(), "the WebSocket clients failed: {status}");
    let out: serde_json::Value = serde_json::from_str(&line)?;
    let sent = model.sent();
    let mut turn_markers: Vec<u64> = sent.keys().copied().collect();
    turn_markers.sort_unstable();
    let turn_markers = turn_markers.split_off(before.min(turn_markers.len()));
    let pairs = out["received"].as_array().context("no result")?;
    let latencies_ms: Vec<f64> = pairs
        .iter()
        .filter_map(|pair| {
            let marker = pair[0].as_u64()?;
            Some(latency_ms(*sent.get(&marker)?, pair[1].as_u64()?))
        })
        .collect();
    Ok(Run {
        missing: (n * turn_markers.len()).saturating_sub(latencies_ms.len()),
        messages: latencies_ms.len(),
        markers: turn_markers,
        latencies_ms,
        closed: out["closed"].as_u64().unwrap_or(0) as usize,
        rss_mb: rss,
        den_cpu_ms: den_cpu,
        clients_cpu_ms: out["cpu_ms"].as_f64().unwrap_or(0.0),
    })
}
