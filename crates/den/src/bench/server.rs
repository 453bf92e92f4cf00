//! The `server` suite: time from process start to `/readyz` answering, and RSS at idle.
//! Baseline: the same binary starting and exiting (`den --version`), measured in the same run.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{Metric, median};
use crate::config::Settings;

pub(crate) async fn run(_settings: &Settings, quick: bool) -> anyhow::Result<Vec<Metric>> {
    let runs = if quick { 3 } else { 7 };
    let exe = std::env::current_exe().context("locating the den binary")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()?;

    let mut version_ms = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let status = command(&exe)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .await?;
        anyhow::ensure!(status.success(), "den --version failed");
        version_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }

    let mut ready_ms = Vec::new();
    let mut rss_mb = Vec::new();
    for _ in 0..runs {
        let data_dir = tempfile::tempdir()?;
        let port = free_port()?;
        let started = Instant::now();
        let mut child = command(&exe)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir.path())
            .env(
                "DEN_MASTER_KEY",
                den_store::Keyring::generate()?.to_text().as_str(),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting den serve")?;
        let url = format!("http://127.0.0.1:{port}/readyz");
        loop {
            if let Ok(response) = http.get(&url).send().await
                && response.status().is_success()
            {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "den did not become ready in 30 s"
            );
            anyhow::ensure!(
                child.try_wait()?.is_none(),
                "den serve exited before it was ready"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        ready_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        // Let start-up allocations settle before reading the resident set.
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(pid) = child.id() {
            rss_mb.push(rss_kib(pid)? / 1024.0);
        }
        child.kill().await?;
    }
    Ok(vec![
        Metric::new("server.version_exit_ms_p50", median(version_ms), "ms"),
        Metric::new("server.start_to_ready_ms_p50", median(ready_ms), "ms")
            .against("server.version_exit_ms_p50"),
        Metric::new("server.idle_rss_mb", median(rss_mb), "MB"),
    ])
}

#[expect(
    clippy::disallowed_methods,
    reason = "the benchmark measures den's own start, so it starts den as a child process; \
              den's runtime code starts processes only in den-sandbox"
)]
fn command(exe: &std::path::Path) -> tokio::process::Command {
    tokio::process::Command::new(exe)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn rss_kib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    let kib = line.split_whitespace().nth(1).context("malformed VmRSS")?;
    Ok(kib.parse()?)
}
