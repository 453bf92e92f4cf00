//! `den doctor`: what this host has, what it lacks, and how to fix it.

use std::process::ExitCode;

use crate::config::Settings;

struct Check {
    name: String,
    ok: bool,
    detail: String,
    fix: String,
}

pub(crate) async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let mut checks = Vec::new();
    let store = super::open_migrated_store(&settings).await;
    checks.push(match &store {
        Ok(store) => Check {
            name: "database".into(),
            ok: store.ping().await.is_ok(),
            detail: store.backend_name().into(),
            fix: String::new(),
        },
        Err(err) => Check {
            name: "database".into(),
            ok: false,
            detail: format!("{err:#}"),
            fix: "check --database-url and that the server is up".into(),
        },
    });
    checks.push(Check {
        name: "git".into(),
        ok: on_path("git"),
        detail: "needed to clone repositories".into(),
        fix: "apt-get install git".into(),
    });
    let opencode = settings
        .tools_dir
        .join("opencode-1.18.33/node_modules/opencode-linux-x64/bin/opencode");
    checks.push(Check {
        name: "opencode".into(),
        ok: opencode.is_file(),
        detail: format!("the pinned OpenCode 1.18.33 at {}", opencode.display()),
        fix: "scripts/install-opencode".into(),
    });
    let mut failed = 0;
    for check in &checks {
        let mark = if check.ok { "ok  " } else { "FAIL" };
        println!("{mark} {:<12} {}", check.name, check.detail);
        if !check.ok {
            failed += 1;
            println!("     fix: {}", check.fix);
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
