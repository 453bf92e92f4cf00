//! Runs the sandbox benchmark without the den binary:
//! `cargo run -p den-sandbox --example bench -- [--quick] [SCRATCH_DIR]` (as root).
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a command-line example"
)]

use std::path::PathBuf;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let root = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or_else(|| PathBuf::from("/var/tmp/den-bench"), PathBuf::from);
    let tools = std::env::var_os("DEN_TOOLS_DIR").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/den/tools"),
        PathBuf::from,
    );
    let cfg = den_sandbox::bench::BenchConfig {
        root_dir: root,
        opencode_bin: den_sandbox::opencode_bin_in(&tools, den_opencode::PINNED_VERSION),
        home_template: Some(den_sandbox::home_template_in(
            &tools,
            den_opencode::PINNED_VERSION,
        )),
        quick,
    };
    let metrics = den_sandbox::bench::bench_sandbox(cfg).await.unwrap();
    println!("{:<32} {:>14} {:<6} baseline", "metric", "value", "unit");
    for m in metrics {
        println!(
            "{:<32} {:>14.1} {:<6} {}",
            m.name,
            m.value,
            m.unit,
            m.baseline.unwrap_or_default()
        );
    }
}
