//! `den bench [SUITE...] [--json FILE]`: measurements printed as a table.
//!
//! Each suite returns metrics; where a suite has a baseline measured in the same run (the
//! machine is shared and noisy), the metric names it so the ratio can be read off.

mod cluster;
mod den;
mod density;
mod events;
mod model;
mod sandbox;
mod server;
mod session;
mod snapshots;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use crate::config::Settings;

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Suites to run (default: all but cluster). Known: server, sandbox, events, session,
    /// density, snapshots, cluster. `sandbox`, `events`, `session`, `density` and `cluster`
    /// start real sandboxes (as root, like `den serve`); `snapshots` stores a 100 MB snapshot in
    /// a local S3 server; `cluster` starts three den nodes on the PostgreSQL server of
    /// `--database-url`.
    suites: Vec<String>,
    /// Also write the metrics as JSON: {"metrics":[{"name","value","unit","baseline"?}]}.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Fewer iterations (for a quick look; noisier).
    #[arg(long)]
    quick: bool,
    /// Internal: run as the `events` suite's WebSocket clients (a separate process, so den's
    /// own memory can be read apart from theirs).
    #[arg(long, hide = true, value_name = "URL")]
    ws_worker: Option<String>,
    #[arg(long, hide = true, default_value_t = 1)]
    ws_clients: usize,
}

/// One measured number.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Metric {
    pub(crate) name: String,
    pub(crate) value: f64,
    pub(crate) unit: String,
    /// The metric this one should be compared with, measured in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) baseline: Option<String>,
    /// The target, or what else the number should be read with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
}

impl Metric {
    pub(crate) fn new(name: &str, value: f64, unit: &str) -> Self {
        Self {
            name: name.to_owned(),
            value,
            unit: unit.to_owned(),
            baseline: None,
            note: None,
        }
    }

    pub(crate) fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    pub(crate) fn against(mut self, baseline: &str) -> Self {
        self.baseline = Some(baseline.to_owned());
        self
    }
}

const SUITES: &[&str] = &[
    "server",
    "sandbox",
    "events",
    "session",
    "density",
    "snapshots",
];
/// Suites run only when named (they need more than this machine: `cluster` a PostgreSQL
/// server, given as `--database-url`).
const NAMED_ONLY: &[&str] = &["cluster"];

pub(crate) async fn run(settings: Settings, args: BenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(url) = &args.ws_worker {
        return worker::run(url, args.ws_clients).await;
    }
    let suites: Vec<String> = if args.suites.is_empty() {
        SUITES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        args.suites
    };
    let mut metrics = Vec::new();
    for suite in &suites {
        eprintln!("running bench suite {suite}…");
        match suite.as_str() {
            "server" => metrics.extend(server::run(&settings, args.quick).await?),
            "sandbox" => metrics.extend(sandbox::run(&settings, args.quick).await?),
            "events" => metrics.extend(events::run(&settings, args.quick).await?),
            "session" => metrics.extend(session::run(&settings, args.quick).await?),
            "snapshots" => metrics.extend(snapshots::run(&settings, args.quick).await?),
            "cluster" => metrics.extend(cluster::run(&settings, args.quick).await?),
            "density" => metrics.extend(density::run(&settings, args.quick).await?),
            other => anyhow::bail!(
                "unknown bench suite {other:?}; known: {}",
                [SUITES, NAMED_ONLY].concat().join(", ")
            ),
        }
    }
    print_table(&metrics);
    if let Some(path) = args.json {
        let json = serde_json::json!({ "metrics": metrics });
        std::fs::write(&path, serde_json::to_vec_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(metrics: &[Metric]) {
    let width = metrics
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    println!(
        "{:<width$}  {:>12}  {:<6}  baseline (ratio); note",
        "metric", "value", "unit"
    );
    for metric in metrics {
        let baseline = metric.baseline.as_ref().map_or_else(String::new, |name| {
            match metrics.iter().find(|m| &m.name == name) {
                Some(base) if base.value > 0.0 => {
                    format!("{name} ({:.2}x)", metric.value / base.value)
                }
                _ => name.clone(),
            }
        });
        let note = match (&metric.note, baseline.is_empty()) {
            (Some(note), true) => note.clone(),
            (Some(note), false) => format!("; {note}"),
            (None, _) => String::new(),
        };
        println!(
            "{:<width$}  {:>12.2}  {:<6}  {baseline}{note}",
            metric.name, metric.value, metric.unit
        );
    }
}

/// The `q` quantile (0..=1, nearest rank) of `values` (0 when empty).
pub(crate) fn quantile(mut values: Vec<f64>, q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// The median of `values` (0 when empty).
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}
