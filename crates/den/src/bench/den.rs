//! A real den inside the bench process: store, sandbox runtime, session manager and HTTP
//! server on a scratch data dir, with the bench model as its only provider and one user.
//! In-process, so the bench can read den's own memory (`/proc/self`) and reach a session's
//! agent directly; whatever else the bench runs here (the model, a few clients) is small.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use den_server::AppState;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::model::{self, BenchModel};
use crate::config::{ProviderKindSetting, ProviderSettings, Settings};

const PASSWORD: &str = "a long bench password";
/// How far above the configured uids the bench den's sandboxes run (10,000 of them, as any
/// den's), so a bench never meets the den it was configured for.
const BENCH_UID_OFFSET: u32 = 800_000;
/// Starting a session (clone, sandbox, OpenCode) takes seconds; a loaded box more.
pub(crate) const WITHIN: Duration = Duration::from_secs(300);

pub(crate) struct BenchDen {
    pub(crate) base: String,
    pub(crate) port: u16,
    pub(crate) token: String,
    pub(crate) owner_id: uuid::Uuid,
    pub(crate) repos: PathBuf,
    /// The host uid of its first sandbox.
    pub(crate) uid_base: u32,
    pub(crate) manager: den_session::SessionManager,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    live: Option<crate::cli::sessions::Live>,
    pub(crate) store: den_store::Store,
    _data_dir: tempfile::TempDir,
    _repos: tempfile::TempDir,
}

/// Makes `path` traversable by the sandboxes' uids.
pub(crate) fn traversable(path: &Path) -> anyhow::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o711))
        .with_context(|| format!("chmod {}", path.display()))
}

/// Lets this process (and its children) hold many sockets.
pub(crate) fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// Resident memory of a process (`self` or a pid), in MB.
pub(crate) fn rss_mb(pid: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .context("malformed VmRSS")?
        .parse()?;
    Ok(kib / 1024.0)
}

/// The resident memory of every process running as a sandbox uid of the bench den, in MB
/// (its sandboxes: the agents, their tools; bubblewrap's and slirp's small processes too).
pub(crate) fn sandboxes_rss_mb(uid_base: u32) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let uids = uid_base..uid_base.saturating_add(10_000);
    let mut kib = 0.0;
    for entry in entries.flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        };
        if field("Uid:").is_some_and(|uid| uids.contains(&(uid as u32))) {
            kib += field("VmRSS:").unwrap_or(0.0);
        }
    }
    kib / 1024.0
}

/// The host's available memory as a share of its total (0..=1).
pub(crate) fn available_memory_share() -> f64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let total = field("MemTotal:");
    if total > 0.0 {
        field("MemAvailable:") / total
    } else {
        0.0
    }
}

/// CPU time (user + system) a process (`self` or a pid) has used so far, in ms.
pub(crate) fn cpu_ms(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after it are fixed.
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).context("no utime")?.parse::<f64>()?
        + fields.get(12).context("no stime")?.parse::<f64>()?;
    // Linux reports in clock ticks of 1/100 s (USER_HZ) on every common platform.
    Ok(ticks * 10.0)
}

impl BenchDen {
    /// A den with `warm_pool` booted sandboxes waiting for sessions.
    pub(crate) async fn start(
        settings: &Settings,
        model: &BenchModel,
        warm_pool: usize,
    ) -> anyhow::Result<Self> {
        raise_fd_limit();
        let data_dir = tempfile::tempdir()?;
        traversable(data_dir.path())?;
        let repos = tempfile::tempdir()?;
        let mut settings = settings.clone();
        settings.data_dir = data_dir.path().to_owned();
        settings.database_url = None;
        settings.repositories.local_roots = vec![repos.path().to_owned()];
        settings.github = None;
        settings.sandbox.enabled = true;
        settings.sandbox.root_dir = None;
        // Its own host state and uids, so it never meets a den running beside it (the
        // configured instance's name and uids, moved: `denbench` by default).
        settings.sandbox.instance = format!("{}bench", settings.sandbox.instance);
        settings.sandbox.uid_base = settings.sandbox.uid_base.saturating_add(BENCH_UID_OFFSET);
        settings.sandbox.warm_pool = warm_pool;
        // Nothing the bench runs may be paused for being idle while it measures.
        settings.sandbox.idle_timeout_minutes = 24 * 60;
        settings.providers = vec![ProviderSettings {
            name: model::PROVIDER.to_owned(),
            kind: Some(ProviderKindSetting::OpenaiCompatible),
            base_url: Some(model.base_url()),
            models: vec![model::MODEL.to_owned()],
            api_key_env: None,
            shared: true,
        }];
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        settings.listen = listener.local_addr()?;
        settings.public_url = Some(format!("http://127.0.0.1:{port}"));

        let store = crate::cli::open_migrated_store(&settings).await?;
        let user = den_server::accounts::create_user(&store, "bench", Some(PASSWORD.into()), false)
            .await
            .map_err(|err| anyhow::anyhow!("creating the bench user: {err:?}"))?;
        let node_secret = den_server::cluster::NodeSecret::from_store(&store);
        let live = crate::cli::sessions::start(
            &settings,
            &store,
            format!("http://127.0.0.1:{port}"),
            node_secret,
        )
        .await?;
        let mut config =
            crate::cli::serve::server_config(&settings, format!("http://127.0.0.1:{port}"));
        // As `den serve` does: the API checks models against the same catalog as the sessions.
        config.catalog = crate::cli::sessions::catalog(&settings)?;
        let metrics = den_server::install_metrics_recorder();
        let state = AppState::with_sessions(store.clone(), config, metrics, live.manager.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(err) = den_server::serve(listener, state, shutdown).await {
                tracing::warn!(error = %err, "the bench den stopped serving");
            }
        });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?;
        let mut den = Self {
            base: format!("http://127.0.0.1:{port}"),
            port,
            token: String::new(),
            owner_id: user.id,
            repos: repos.path().to_owned(),
            uid_base: settings.sandbox.uid_base,
            manager: live.manager.clone(),
            http,
            stop: Some(stop),
            server: Some(server),
            live: Some(live),
            store,
            _data_dir: data_dir,
            _repos: repos,
        };
        den.token = sign_in(&den.http, &den.base).await?;
        Ok(den)
    }

    /// One API call; the status and the body (JSON, or the text as a string).
    pub(crate) async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        api_call(&self.http, &self.base, &self.token, method, path, body).await
    }

    /// Creates a session on `repo` (optionally with a first prompt); its id.
    pub(crate) async fn create_session(
        &self,
        repo: &Path,
        prompt: Option<&str>,
    ) -> anyhow::Result<String> {
        let body = json!({
            "repository": repo.display().to_string(),
            "model": format!("{}/{}", model::PROVIDER, model::MODEL),
            "prompt": prompt,
        });
        let (status, session) = self
            .api(reqwest::Method::POST, "/api/sessions", Some(body))
            .await?;
        anyhow::ensure!(
            status == reqwest::StatusCode::CREATED,
            "create: {status} {session}"
        );
        Ok(session["id"].as_str().context("no session id")?.to_owned())
    }

    pub(crate) async fn prompt(&self, session: &str, text: &str) -> anyhow::Result<()> {
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                &format!("/api/sessions/{session}/prompt"),
                Some(json!({"text": text})),
            )
            .await?;
        anyhow::ensure!(
            status == reqwest::StatusCode::ACCEPTED,
            "prompt: {status} {body}"
        );
        Ok(())
    }

    pub(crate) fn ws_url(&self, session: &str, after: i64) -> String {
        format!(
            "ws://127.0.0.1:{}/api/sessions/{session}/ws?after={after}",
            self.port
        )
    }

    /// A WebSocket client of `session` that the bench uses to follow it.
    pub(crate) async fn watch(&self, session: &str) -> anyhow::Result<Watcher> {
        let stream = connect(&self.ws_url(session, 0), &self.token).await?;
        Ok(Watcher { stream, seq: 0 })
    }

    /// Stops den: sessions, then the server, the gateway and the runtime.
    pub(crate) async fn stop(mut self) {
        if let Some(live) = self.live.take() {
            live.stop().await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        }
        self.store.close().await;
    }
}

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn connect(url: &str, token: &str) -> anyhow::Result<Socket> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    // A small read buffer: tungstenite zeroes all of it on every read (128 KiB by default),
    // which made the clients, not den, the bench's bottleneck. Nagle off, as a browser does.
    let config =
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8192);
    let (stream, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    Ok(stream)
}

/// Follows one session's events and remembers the last sequence number.
pub(crate) struct Watcher {
    stream: Socket,
    pub(crate) seq: i64,
}

impl Watcher {
    /// Reads events until one matches `done`; returns when it arrived.
    pub(crate) async fn until(&mut self, done: impl Fn(&Value) -> bool) -> anyhow::Result<Instant> {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .context("no event in time")?
                .context("the WebSocket closed")??;
            let Message::Text(text) = message else {
                continue;
            };
            let message: Value = serde_json::from_str(&text)?;
            if message["type"] != "event" {
                continue;
            }
            if let Some(seq) = message["seq"].as_i64() {
                self.seq = self.seq.max(seq);
            }
            let event = &message["event"];
            if event["type"] == "status" && event["status"] == "error" {
                anyhow::bail!("the session failed: {}", event["error"]);
            }
            if done(event) {
                return Ok(Instant::now());
            }
        }
    }

    /// Until the stored history has been replayed (what follows is live).
    pub(crate) async fn caught_up(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .context("no message in time")?
                .context("the WebSocket closed")??;
            let Message::Text(text) = message else {
                continue;
            };
            let message: Value = serde_json::from_str(&text)?;
            if message["type"] == "live" {
                return Ok(());
            }
            if let Some(seq) = message["seq"].as_i64() {
                self.seq = self.seq.max(seq);
            }
        }
    }

    /// Until the session is ready for a prompt.
    pub(crate) async fn ready(&mut self) -> anyhow::Result<Instant> {
        self.until(|e| e["type"] == "progress" && e["step"] == "ready" && e["state"] == "done")
            .await
    }

    pub(crate) async fn turn_finished(&mut self) -> anyhow::Result<Instant> {
        self.until(|e| e["type"] == "turn_finished").await
    }

    pub(crate) async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// Signs the bench user in at `base` and returns a new API token of theirs.
pub(crate) async fn sign_in(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let login = http
        .post(format!("{base}/api/auth/login"))
        .header("x-den-csrf", "1")
        .json(&json!({"username": "bench", "password": PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(login.status().is_success(), "login: {}", login.status());
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|v| {
            let cookie = v.to_str().ok()?;
            cookie
                .starts_with("den_session=")
                .then(|| cookie.split(';').next().unwrap_or(cookie).to_owned())
        })
        .context("no session cookie")?;
    let body: Value = http
        .post(format!("{base}/api/tokens"))
        .header("cookie", cookie)
        .header("x-den-csrf", "1")
        .json(&json!({"name": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    Ok(body["token"].as_str().context("no token")?.to_owned())
}

/// One API call at `base` with `token`: the status and the body (JSON, or the text as a
/// string).
pub(crate) async fn api_call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    let mut request = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}
