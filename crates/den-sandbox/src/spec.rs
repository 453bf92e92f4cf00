//! What a caller asks for (`SandboxSpec`) and what it gets to observe (`SandboxStatus`). These types
//! are backend-neutral: nothing here names bubblewrap, cgroups or a host path layout.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Result, SandboxError};

/// Where the workspace appears inside every sandbox.
pub const WORKSPACE_DIR: &str = "/workspace";
/// HOME inside every sandbox.
pub const HOME_DIR: &str = "/home/agent";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SandboxId(String);

impl SandboxId {
    /// Short (16 hex digits) because it ends up in cgroup names and unix socket paths, whose
    /// length is limited; still random enough never to collide on one host.
    pub fn new() -> Self {
        let hex = uuid::Uuid::new_v4().simple().to_string();
        Self(format!("sbx-{}", &hex[..16]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Accepts only ids this crate could have made, so an id can be used in a path safely.
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix("sbx-")?;
        (hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Self(s.to_owned()))
    }
}

impl Default for SandboxId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for SandboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkPolicy {
    /// Internet yes; the host itself, private ranges and link-local (cloud metadata) no.
    #[default]
    Internet,
    /// Loopback only.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// CPU quota in thousandths of a CPU (1000 = one CPU).
    pub millicpus: u32,
    /// Memory including swap.
    pub memory_bytes: u64,
    /// Processes and threads.
    pub pids: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            millicpus: 1000,
            memory_bytes: 2 << 30,
            pids: 512,
        }
    }
}

/// A file placed in HOME before the command starts (e.g. the generated OpenCode config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeFile {
    /// Relative to HOME, e.g. `.config/opencode/opencode.json`.
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
}

/// A host file or directory made visible read-only inside (e.g. the OpenCode binary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolMount {
    pub host_path: PathBuf,
    /// Absolute path inside the sandbox, e.g. `/opt/opencode/bin/opencode`.
    pub sandbox_path: PathBuf,
}

/// A host unix socket that the sandbox reaches as `127.0.0.1:sandbox_port` (den's model gateway:
/// the sandbox cannot reach host addresses, by design).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub sandbox_port: u16,
    pub host_socket: PathBuf,
}

#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// A host directory holding a prepared checkout. It is never written: the sandbox sees it
    /// through an overlay, so a snapshot holds only what the sandbox changed.
    pub workspace: PathBuf,
    /// The command, run in `/workspace` with exactly this environment plus HOME, USER, PATH,
    /// LANG and TMPDIR. Nothing of den's own environment is passed.
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub home_files: Vec<HomeFile>,
    pub tools: Vec<ToolMount>,
    pub limits: Limits,
    /// Hard limit of wall time from start; then everything in the sandbox is killed.
    pub lifetime: Duration,
    pub network: NetworkPolicy,
    /// TCP ports on the sandbox's 127.0.0.1 that den must reach (see `SandboxRuntime::connect`).
    pub expose: Vec<u16>,
    pub forwards: Vec<Forward>,
    /// Start with an empty `/workspace` (the command runs in `/tmp`) and take `workspace`
    /// later, from `SandboxRuntime::attach_workspace`: the sandbox (and the agent's boot) need
    /// not wait for the checkout, and a warm pool can boot sandboxes before anyone asks.
    /// `workspace` is then ignored.
    pub workspace_later: bool,
}

impl SandboxSpec {
    /// A spec with the default limits (1 CPU, 2 GiB memory+swap, 512 pids), a one hour
    /// lifetime and internet access.
    pub fn new(workspace: impl Into<PathBuf>, command: Vec<String>) -> Self {
        Self {
            workspace: workspace.into(),
            command,
            env: BTreeMap::new(),
            home_files: Vec::new(),
            tools: Vec::new(),
            limits: Limits::default(),
            lifetime: Duration::from_secs(3600),
            network: NetworkPolicy::Internet,
            expose: Vec::new(),
            forwards: Vec::new(),
            workspace_later: false,
        }
    }

    /// Checks everything that does not depend on the backend's host. `host_cpus` and
    /// `host_memory` bound the limits: asking for more than exists is an error, not a silent cap.
    pub fn validate(&self, host_cpus: u32, host_memory: u64) -> Result<()> {
        let bad = |m: String| Err(SandboxError::InvalidSpec(m));
        if !self.workspace_later && !self.workspace.is_dir() {
            return Err(SandboxError::MissingWorkspace {
                path: self.workspace.clone(),
            });
        }
        if self.command.is_empty() || self.command[0].is_empty() {
            return bad("the command is empty".into());
        }
        if self.command.iter().any(|a| a.contains('\0')) {
            return bad("the command contains a NUL byte".into());
        }
        let l = &self.limits;
        if l.millicpus < 10 || l.millicpus > host_cpus.saturating_mul(1000) {
            return bad(format!(
                "cpu limit {} millicpus is impossible: use 10..={} (this host has {host_cpus} CPUs)",
                l.millicpus,
                host_cpus.saturating_mul(1000)
            ));
        }
        if l.memory_bytes < 32 << 20 || l.memory_bytes > host_memory {
            return bad(format!(
                "memory limit {} bytes is impossible: use 32 MiB..={host_memory} bytes (this host's memory)",
                l.memory_bytes
            ));
        }
        if !(8..=1 << 22).contains(&l.pids) {
            return bad(format!(
                "process limit {} is impossible: use 8..=4194304",
                l.pids
            ));
        }
        if self.lifetime.is_zero() {
            return bad("the lifetime is zero".into());
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                return bad(format!(
                    "environment variable {k:?} is not a valid name/value"
                ));
            }
        }
        for f in &self.home_files {
            if !is_plain_relative(&f.path) {
                return bad(format!(
                    "home file {} must be a relative path without '..'",
                    f.path.display()
                ));
            }
        }
        for t in &self.tools {
            let inside = &t.sandbox_path;
            let reserved = [
                "/proc",
                "/dev",
                "/usr",
                "/etc",
                "/tmp",
                WORKSPACE_DIR,
                HOME_DIR,
            ];
            if !inside.is_absolute()
                || inside.components().any(|c| c == Component::ParentDir)
                || reserved.iter().any(|r| inside.starts_with(r))
            {
                return bad(format!(
                    "tool path {} must be absolute and outside {reserved:?}",
                    inside.display()
                ));
            }
            if !t.host_path.exists() {
                return bad(format!(
                    "tool {} does not exist on the host",
                    t.host_path.display()
                ));
            }
        }
        let mut ports: Vec<u16> = self.expose.clone();
        ports.extend(self.forwards.iter().map(|f| f.sandbox_port));
        if ports.contains(&0) {
            return bad("port 0 cannot be exposed or forwarded".into());
        }
        ports.sort_unstable();
        if ports.windows(2).any(|w| w[0] == w[1]) {
            return bad("a port is exposed or forwarded twice".into());
        }
        Ok(())
    }
}

fn is_plain_relative(p: &Path) -> bool {
    p.components().next().is_some() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Why a sandbox is no longer running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExitReason {
    /// The command exited by itself.
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    /// The kernel's OOM killer killed the command at the memory limit.
    OutOfMemory,
    LifetimeExceeded,
    /// `stop` or `destroy` was called.
    Stopped,
    Failed {
        message: String,
    },
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited { code } => write!(f, "the command exited with status {code}"),
            Self::Signaled { signal } => write!(f, "the command was killed by signal {signal}"),
            Self::OutOfMemory => f.write_str("the command ran out of memory"),
            Self::LifetimeExceeded => f.write_str("the sandbox reached its lifetime limit"),
            Self::Stopped => f.write_str("the sandbox was stopped"),
            Self::Failed { message } => write!(f, "the sandbox failed: {message}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SandboxStatus {
    Running,
    Frozen,
    Exited { reason: ExitReason },
}

impl SandboxStatus {
    pub fn is_exited(&self) -> bool {
        matches!(self, Self::Exited { .. })
    }
}

/// Reported while `create`/`restore` waits for its turn and starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateProgress {
    /// `position` creates (1 = next) are ahead of this one, counting it.
    Queued {
        position: usize,
    },
    Starting,
    Started,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_paths() {
        let id = SandboxId::new();
        assert_eq!(SandboxId::parse(id.as_str()), Some(id));
        assert_eq!(SandboxId::parse("sbx-../../etc"), None);
        assert_eq!(SandboxId::parse("sbx-0123456789abcdeg"), None);
    }

    #[test]
    fn impossible_limits_are_rejected_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = SandboxSpec::new(dir.path(), vec!["true".into()]);
        spec.validate(2, 8 << 30).unwrap();
        spec.limits.millicpus = 64_000;
        let err = spec.validate(2, 8 << 30).unwrap_err().to_string();
        assert!(
            err.contains("cpu limit 64000 millicpus is impossible"),
            "{err}"
        );
        spec.limits = Limits {
            memory_bytes: 1 << 50,
            ..Limits::default()
        };
        let err = spec.validate(2, 8 << 30).unwrap_err().to_string();
        assert!(err.contains("memory limit"), "{err}");
        spec.limits = Limits {
            pids: 0,
            ..Limits::default()
        };
        assert!(spec.validate(2, 8 << 30).is_err());
    }

    #[test]
    fn missing_workspace_and_bad_paths_are_rejected() {
        let spec = SandboxSpec::new("/nonexistent/den-test", vec!["true".into()]);
        assert!(matches!(
            spec.validate(2, 8 << 30),
            Err(SandboxError::MissingWorkspace { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let mut spec = SandboxSpec::new(dir.path(), vec!["true".into()]);
        spec.home_files.push(HomeFile {
            path: "../escape".into(),
            contents: vec![],
            mode: 0o600,
        });
        assert!(matches!(
            spec.validate(2, 8 << 30),
            Err(SandboxError::InvalidSpec(_))
        ));
        let mut spec = SandboxSpec::new(dir.path(), vec!["true".into()]);
        spec.expose = vec![4096, 4096];
        assert!(spec.validate(2, 8 << 30).is_err());
    }
}
