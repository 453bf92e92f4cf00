//! The `sandbox` suite: the sandbox runtime's own measurements (issue 3), from den-sandbox.

use std::os::unix::fs::PermissionsExt;

use anyhow::Context;
use den_sandbox::bench::{BenchConfig, bench_sandbox};

use super::Metric;
use crate::config::Settings;

pub(crate) async fn run(settings: &Settings, quick: bool) -> anyhow::Result<Vec<Metric>> {
    let root = tempfile::tempdir().context("creating a scratch directory")?;
    // Sandboxes run as other uids and must reach their directories below this one.
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o711))?;
    let config = BenchConfig {
        root_dir: root.path().to_owned(),
        opencode_bin: opencode_bin(settings),
        home_template: home_template(settings),
        quick,
    };
    let metrics = bench_sandbox(config)
        .await
        .context("measuring the sandbox runtime")?;
    Ok(metrics
        .into_iter()
        .map(|m| {
            let mut metric = Metric::new(m.name, m.value, m.unit);
            if m.name.ends_with("to_ready_ms_p50") || m.name == "sandbox.opencode_ready_ms_p50" {
                metric = metric.against("opencode.host_boot_ms_p50");
            }
            match m.baseline {
                Some(note) => metric.note(note),
                None => metric,
            }
        })
        .collect())
}

/// The OpenCode binary den would run (`DEN_OPENCODE_BIN` wins, as for `den serve`).
pub(crate) fn opencode_bin(settings: &Settings) -> std::path::PathBuf {
    std::env::var_os("DEN_OPENCODE_BIN")
        .map(Into::into)
        .unwrap_or_else(|| {
            den_sandbox::opencode_bin_in(&settings.tools_dir, den_opencode::PINNED_VERSION)
        })
}

pub(crate) fn home_template(settings: &Settings) -> Option<std::path::PathBuf> {
    let template = den_sandbox::home_template_in(&settings.tools_dir, den_opencode::PINNED_VERSION);
    template.exists().then_some(template)
}
