use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where the OpenCode server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A plain HTTP base URL such as `http://127.0.0.1:4096` (tests, development).
    Tcp(String),
    /// A unix socket bridged to OpenCode inside a sandbox. HTTP still runs over it; the host
    /// part of request URLs is ignored.
    Unix(PathBuf),
}

/// How to reach one OpenCode server and how patient to be with it.
#[derive(Clone)]
pub struct OpencodeConfig {
    pub target: Target,
    /// Basic-auth user; OpenCode's default is `opencode`.
    pub username: String,
    /// `OPENCODE_SERVER_PASSWORD` of the server, if it was started with one.
    pub password: Option<String>,
    /// Limit for each ordinary request. The event stream has no total limit, only `event_idle`.
    pub request_timeout: Duration,
    /// Limit for each readiness probe: OpenCode accepts connections before it finishes
    /// starting and never answers requests that arrive too early, so probes must be short.
    pub probe_timeout: Duration,
    /// OpenCode sends `server.heartbeat` every few seconds; silence longer than this means the
    /// connection is dead even if the socket still looks open.
    pub event_idle: Duration,
    /// Delays between event stream reconnection attempts (the last one repeats).
    pub reconnect_backoff: Vec<Duration>,
    /// Give up reconnecting after this many consecutive failures.
    pub max_reconnects: u32,
    /// The project directory every request is about (sent as `x-opencode-directory`). `None`:
    /// the server's own working directory. A server booted before its workspace existed (den's
    /// warm pool) must be told, or it would answer about the directory it started in.
    pub directory: Option<String>,
}

impl OpencodeConfig {
    pub fn new(target: Target) -> Self {
        Self {
            target,
            username: "opencode".to_owned(),
            password: None,
            request_timeout: Duration::from_secs(30),
            probe_timeout: Duration::from_millis(750),
            event_idle: Duration::from_secs(45),
            reconnect_backoff: [50, 200, 500, 1000]
                .into_iter()
                .map(Duration::from_millis)
                .collect(),
            max_reconnects: 20,
            directory: None,
        }
    }

    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    pub fn with_directory(mut self, directory: impl Into<String>) -> Self {
        self.directory = Some(directory.into());
        self
    }
}

// Hand-written so the server password never reaches logs.
impl fmt::Debug for OpencodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpencodeConfig")
            .field("target", &self.target)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("request_timeout", &self.request_timeout)
            .field("probe_timeout", &self.probe_timeout)
            .field("event_idle", &self.event_idle)
            .field("max_reconnects", &self.max_reconnects)
            .field("directory", &self.directory)
            .finish_non_exhaustive()
    }
}
