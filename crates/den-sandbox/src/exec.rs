//! A command den runs inside a running sandbox for its own steps (the diff, a commit), beside
//! the agent: same files, same user, same network, same limits.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::spec::{HOME_DIR, WORKSPACE_DIR};

#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// The program (an absolute path inside the sandbox) and its arguments.
    pub argv: Vec<String>,
    /// The whole environment of the command (nothing is inherited from den).
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    /// Written to the command's standard input, which is then closed.
    pub stdin: Vec<u8>,
    pub timeout: Duration,
    /// Standard output beyond this many bytes is read and dropped (`stdout_truncated`).
    pub max_output: usize,
}

impl ExecRequest {
    /// `argv` in the workspace with the sandbox's usual environment, a minute and 8 MiB.
    pub fn new(argv: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let env = [
            ("HOME", HOME_DIR),
            ("USER", "agent"),
            ("LOGNAME", "agent"),
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("LANG", "C.UTF-8"),
            ("TMPDIR", "/tmp"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Self {
            argv: argv.into_iter().map(Into::into).collect(),
            env,
            cwd: PathBuf::from(WORKSPACE_DIR),
            stdin: Vec::new(),
            timeout: Duration::from_secs(60),
            max_output: 8 << 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// The exit code; `None` when a signal ended the command.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stdout_truncated: bool,
    /// The first 64 KiB of standard error.
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}
