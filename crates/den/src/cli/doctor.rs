//! `den doctor`: what this host has, what it lacks, and how to fix it.

use std::process::ExitCode;

use den_sandbox::DoctorCheck;

use crate::config::Settings;

#[derive(Debug, clap::Args)]
pub(crate) struct DoctorArgs {
    /// Print only the OpenCode version den pins, and check nothing (scripts read the pin here).
    #[arg(long)]
    print_opencode_version: bool,
}

pub(crate) async fn run(settings: Settings, args: DoctorArgs) -> anyhow::Result<ExitCode> {
    if args.print_opencode_version {
        println!("{}", den_opencode::PINNED_VERSION);
        return Ok(ExitCode::SUCCESS);
    }
    let mut checks = Vec::new();
    checks.push(match super::open_migrated_store(&settings).await {
        Ok(store) => DoctorCheck {
            name: "database".into(),
            ok: store.ping().await.is_ok(),
            detail: format!("{} reachable, migrations applied", store.backend_name()),
            fix: String::new(),
        },
        Err(err) => DoctorCheck {
            name: "database".into(),
            ok: false,
            detail: format!("{err:#}"),
            fix: "check --database-url (docs/config.md) and that the database server is up".into(),
        },
    });
    // Sandboxes: bubblewrap, slirp4netns, nftables, cgroups, git, the pinned OpenCode, …
    checks.extend(den_sandbox::doctor_checks(
        &settings.tools_dir,
        den_opencode::PINNED_VERSION,
    ));
    let mut failed = 0;
    for check in &checks {
        let mark = if check.ok { "ok  " } else { "FAIL" };
        println!("{mark} {:<16} {}", check.name, check.detail);
        if !check.ok {
            failed += 1;
            println!("     fix: {}", check.fix);
        }
    }
    if failed > 0 {
        println!("{failed} check(s) failed");
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
