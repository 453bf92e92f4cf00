//! `den bench [SUITE...] [--json FILE]`: measurements printed as a table.
//!
//! Each suite returns metrics; where a suite has a baseline measured in the same run (the
//! machine is shared and noisy), the metric names it so the ratio can be read off.

mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use crate::config::Settings;

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Suites to run (default: all). Known: server.
    suites: Vec<String>,
    /// Also write the metrics as JSON: {"metrics":[{"name","value","unit","baseline"?}]}.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Fewer iterations (for a quick look; noisier).
    #[arg(long)]
    quick: bool,
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
}

impl Metric {
    pub(crate) fn new(name: &str, value: f64, unit: &str) -> Self {
        Self {
            name: name.to_owned(),
            value,
            unit: unit.to_owned(),
            baseline: None,
        }
    }

    pub(crate) fn against(mut self, baseline: &str) -> Self {
        self.baseline = Some(baseline.to_owned());
        self
    }
}

const SUITES: &[&str] = &["server"];

pub(crate) async fn run(settings: Settings, args: BenchArgs) -> anyhow::Result<ExitCode> {
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
            other => anyhow::bail!(
                "unknown bench suite {other:?}; known: {}",
                SUITES.join(", ")
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
        "{:<width$}  {:>12}  {:<6}  baseline (ratio)",
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
        println!(
            "{:<width$}  {:>12.2}  {:<6}  {baseline}",
            metric.name, metric.value, metric.unit
        );
    }
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
