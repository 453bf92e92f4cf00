//! Shared set-up for the integration tests: each test gets its own runtime instance (own root
//! dir, cgroup names, nftables table and uid range), so tests can run in parallel processes, and
//! each ends by shutting the runtime down and asserting nothing of it is left on the host.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use den_sandbox::{
    ExitReason, LocalConfig, LocalRuntime, SandboxHandle, SandboxRuntime, SandboxSpec,
    SandboxStatus,
};

pub struct Harness {
    pub rt: Arc<LocalRuntime>,
    pub workspace: PathBuf,
    pub dir: tempfile::TempDir,
}

fn random_u32() -> u32 {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

impl Harness {
    pub async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    pub async fn with_config(edit: impl FnOnce(&mut LocalConfig)) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("den-sbx-test")
            .tempdir()
            .unwrap();
        let workspace = dir.path().join("checkout");
        std::fs::create_dir_all(workspace.join("src")).unwrap();
        std::fs::write(workspace.join("README.md"), "seed\n").unwrap();
        std::fs::write(workspace.join("src/lib.rs"), "pub fn a() {}\n").unwrap();
        let mut cfg = LocalConfig::new(dir.path().join("state"));
        cfg.instance = format!("t{:08x}", random_u32());
        // A random, test-private uid range so parallel test processes never share a uid.
        cfg.uid_base = 3_000_000 + (random_u32() % 100_000) * 32;
        cfg.uid_count = 32;
        cfg.max_concurrent_creates = 4;
        edit(&mut cfg);
        let (rt, _) = LocalRuntime::start(cfg)
            .await
            .expect("start the sandbox runtime");
        Self { rt, workspace, dir }
    }

    /// A spec running `sh -c script` in the test workspace.
    pub fn spec(&self, script: &str) -> SandboxSpec {
        let mut s = SandboxSpec::new(
            &self.workspace,
            vec!["/bin/sh".into(), "-c".into(), script.into()],
        );
        s.lifetime = Duration::from_secs(300);
        s
    }

    pub async fn wait_exit(&self, h: &SandboxHandle, within: Duration) -> ExitReason {
        let mut rx = h.status.clone();
        let st = tokio::time::timeout(within, rx.wait_for(SandboxStatus::is_exited))
            .await
            .expect("sandbox did not exit in time")
            .unwrap()
            .clone();
        match st {
            SandboxStatus::Exited { reason } => reason,
            other => panic!("unexpected status {other:?}"),
        }
    }

    pub async fn logs(&self, h: &SandboxHandle) -> String {
        String::from_utf8_lossy(&self.rt.logs(&h.id, 1 << 20).await.unwrap()).into_owned()
    }

    /// Runs a script to completion; returns its exit reason and output, and destroys the sandbox.
    pub async fn run(&self, spec: SandboxSpec) -> (ExitReason, String) {
        let h = self.rt.create(spec, None).await.expect("create sandbox");
        let reason = self.wait_exit(&h, Duration::from_secs(120)).await;
        let out = self.logs(&h).await;
        self.rt.destroy(&h.id).await.unwrap();
        (reason, out)
    }

    /// Shuts the runtime down and fails if anything of it is left on the host.
    pub async fn finish(self) {
        self.rt.shutdown().await.unwrap();
        let left = self.rt.leftovers().await;
        assert!(left.is_empty(), "leaked host state: {left:#?}");
    }
}

impl Drop for Harness {
    /// A failing test panics before `finish`; clean its host state up anyway (on a thread of its
    /// own, since the test's runtime is unwinding) so one failure does not leak into the host.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let rt = self.rt.clone();
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|r| r.block_on(rt.shutdown()))
            })
            .join();
        }
    }
}

/// den's tools directory: $DEN_TOOLS_DIR or ~/.cache/den/tools (as scripts/install-opencode).
pub fn tools_dir() -> PathBuf {
    std::env::var_os("DEN_TOOLS_DIR").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/den/tools"),
        PathBuf::from,
    )
}

/// The pinned OpenCode binary; fails (never skips) when it is missing.
pub fn opencode_bin() -> PathBuf {
    let bin = std::env::var_os("DEN_OPENCODE_BIN").map_or_else(
        || den_sandbox::opencode_bin_in(&tools_dir(), den_opencode::PINNED_VERSION),
        PathBuf::from,
    );
    assert!(
        bin.is_file(),
        "OpenCode is not installed at {} (set DEN_OPENCODE_BIN or run scripts/install-opencode)",
        bin.display()
    );
    bin
}

/// The OpenCode HOME template; fails (never skips) when it is missing.
pub fn home_template() -> PathBuf {
    let t = den_sandbox::home_template_in(&tools_dir(), den_opencode::PINNED_VERSION);
    assert!(
        t.join(".config/opencode/node_modules").is_dir(),
        "the OpenCode HOME template is missing at {} (run scripts/install-opencode-home)",
        t.display()
    );
    t
}

impl Harness {
    /// Makes the test workspace a git repository with one commit, as den's checkouts are.
    #[expect(clippy::disallowed_methods, reason = "test set-up runs git")]
    pub fn git_init(&self) {
        let ws = self.workspace.to_str().unwrap();
        for args in [
            vec!["init", "-q", ws],
            vec!["-C", ws, "add", "-A"],
            vec![
                "-C",
                ws,
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-qm",
                "seed",
            ],
        ] {
            let st = std::process::Command::new("git")
                .args(&args)
                .status()
                .unwrap();
            assert!(st.success(), "git {args:?}");
        }
    }
}
