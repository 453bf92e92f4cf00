//! A real den (the binary, with real sandboxes and the real OpenCode) talking to the scripted
//! model, and clients for its API and WebSocket.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use den_protocol::events::{SequencedEvent, ServerMessage, SessionEvent};
use den_test_support::{OPENAI_MODEL, OPENAI_PROVIDER, ScriptedModel};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

/// Starting a sandbox with OpenCode takes 3-5 s alone; a loaded 2-core CI box needs more.
pub(crate) const WITHIN: Duration = Duration::from_secs(180);
pub(crate) const PASSWORD: &str = "a long test password";

/// Which database a test's den runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Database {
    /// A file in the data directory (den's default).
    Sqlite,
    /// A fresh database on the server `DEN_TEST_DATABASE_URL` names; a test on PostgreSQL fails
    /// when it is not set (it never passes without having run).
    Postgres,
}

pub(crate) struct Den {
    child: Option<Child>,
    /// `--database-url` (None: SQLite in the data directory).
    pub(crate) database_url: Option<String>,
    /// Everything den wrote to its standard error (its log), also echoed to the test's.
    pub(crate) log: std::sync::Arc<std::sync::Mutex<String>>,
    /// The first uid of this den's sandboxes (it has 10,000).
    pub(crate) uid_base: u32,
    pub(crate) base: String,
    pub(crate) model: ScriptedModel,
    pub(crate) token: String,
    pub(crate) repo: PathBuf,
    http: reqwest::Client,
    pub(crate) data_dir: tempfile::TempDir,
    _repos: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    /// Extra environment for `den serve` (object storage's `AWS_*`).
    env: Vec<(String, String)>,
}

fn den_command(data_dir: &Path, config: &Path, database_url: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_den"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .env("DEN_LOG", "info,den_session=debug")
        .env_remove("DEN_DATABASE_URL")
        .kill_on_drop(true);
    if let Some(url) = database_url {
        command.arg("--database-url").arg(url);
    }
    command
}

/// A fresh, empty PostgreSQL database for one den; panics with what to do when no server is
/// configured.
async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    let admin_url = std::env::var("DEN_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .expect(
            "this test runs den on PostgreSQL: export DEN_TEST_DATABASE_URL=$(scripts/start-postgres)",
        );
    let name = format!("den_e2e_{}", uuid_hex());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

fn uuid_hex() -> String {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A port nothing listens on now, for a den to take.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The first of a den's 10,000 sandbox uids, random so dens of parallel tests never share one.
fn random_uid_base() -> u32 {
    3_000_000 + (u32::from_str_radix(&uuid_hex()[..4], 16).unwrap() % 1000) * 10_000
}

fn traversable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o711)).unwrap();
}

/// A git repository with one commit.
/// Commits `contents` as `name` in the repository at `path`.
pub(crate) async fn commit_file(path: &Path, name: &str, contents: &str) {
    std::fs::write(path.join(name), contents).unwrap();
    for args in [
        vec!["add", name],
        vec![
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "--quiet",
            "-m",
            name,
        ],
    ] {
        let status = Command::new("git")
            .arg("-C")
            .arg(path)
            .args(args)
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }
}

async fn make_repo(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    let status = Command::new("git")
        .arg("-C")
        .arg(path)
        .args(["init", "--quiet", "--initial-branch=main"])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    commit_file(path, "README.md", "# test repo\n").await;
}

async fn add_user(data_dir: &Path, config: &Path, database_url: Option<&str>, name: &str) {
    use tokio::io::AsyncWriteExt;
    let mut add = den_command(data_dir, config, database_url);
    add.args(["user", "add", name, "--password-stdin"])
        .stdin(Stdio::piped());
    let mut child = add.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .await
        .unwrap();
    assert!(child.wait().await.unwrap().success());
}

impl Den {
    pub(crate) async fn start() -> Self {
        Self::start_with("").await
    }

    /// A den with `extra` appended to its configuration file (TOML); `{model_url}` in it names
    /// the scripted model's base URL. Lines of `extra` that start with `sandbox.` go into the
    /// file's `[sandbox]` table (TOML allows a table once).
    pub(crate) async fn start_with(extra: &str) -> Self {
        Self::start_allowing(&[], extra).await
    }

    /// A den with a warm pool of `size` sandboxes (the other tests' dens have none, so they
    /// pay for no pool they do not use).
    pub(crate) async fn start_with_pool(size: usize) -> Self {
        Self::start_full_env(Database::Sqlite, &[], "", Vec::new(), size).await
    }

    /// Like [`Den::start_with`], with `allowed_hosts` in `repositories.allowed_hosts` (a git
    /// stand-in on loopback is a host the egress rules forbid unless an admin allows it).
    pub(crate) async fn start_allowing(allowed_hosts: &[&str], extra: &str) -> Self {
        Self::start_full(Database::Sqlite, allowed_hosts, extra).await
    }

    /// A den on `database`.
    pub(crate) async fn start_on(database: Database) -> Self {
        Self::start_full(database, &[], "").await
    }

    /// The first node of several on one fresh PostgreSQL database, with `extra` configuration.
    pub(crate) async fn start_first_node(extra: &str) -> Self {
        Self::start_full(Database::Postgres, &[], extra).await
    }

    /// Another den node beside `first`: the same database, master key, repository root,
    /// scripted model and API token, with its own port, sandbox instance (its node name) and
    /// uid range. Its snapshot directory is `first`'s: nodes on one machine share the local
    /// snapshot store (several machines would share object storage instead).
    pub(crate) async fn join(first: &Self, extra: &str) -> Self {
        let model = ScriptedModel::start().await.unwrap();
        let data_dir = tempfile::tempdir().unwrap();
        traversable(data_dir.path());
        std::fs::copy(
            first.data_dir.path().join("master.key"),
            data_dir.path().join("master.key"),
        )
        .unwrap();
        let shared_snapshots = first.data_dir.path().join("snapshots");
        std::fs::create_dir_all(&shared_snapshots).unwrap();
        std::os::unix::fs::symlink(&shared_snapshots, data_dir.path().join("snapshots")).unwrap();
        let port = free_port();
        let config = data_dir.path().join("den.toml");
        let uid_base = random_uid_base();
        let repos = first.repo.parent().unwrap();
        let toml = format!(
            "listen = \"127.0.0.1:{port}\"\n\
             [repositories]\nlocal_roots = [\"{repos}\"]\n\
             [sandbox]\nnetwork = \"none\"\nmax_concurrent_starts = 4\nwarm_pool = 0\ninstance = \"{instance}\"\nuid_base = {uid_base}\n\
             [[providers]]\nname = \"{OPENAI_PROVIDER}\"\nkind = \"openai-compatible\"\nbase_url = \"{model_url}\"\nmodels = [\"{OPENAI_MODEL}\"]\n",
            repos = repos.display(),
            instance = &uuid_hex()[..8],
            model_url = first.model.base_url(),
        ) + extra;
        std::fs::write(&config, toml).unwrap();
        let mut den = Self {
            child: None,
            database_url: first.database_url.clone(),
            log: std::sync::Arc::default(),
            uid_base,
            base: format!("http://127.0.0.1:{port}"),
            model,
            token: first.token.clone(),
            repo: first.repo.clone(),
            http: first.http.clone(),
            data_dir,
            _repos: tempfile::tempdir().unwrap(),
            config,
            port,
            // The same object storage (and anything else in the environment) as the first.
            env: first.env.clone(),
        };
        den.launch().await;
        den
    }

    /// This den's node name (its sandbox instance).
    pub(crate) fn node_name(&self) -> String {
        let config = std::fs::read_to_string(&self.config).unwrap();
        config
            .lines()
            .find_map(|line| line.strip_prefix("instance = \""))
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap()
            .to_owned()
    }

    /// Sends den `signal` (`STOP`, `CONT`, `KILL`, …).
    pub(crate) async fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .await
            .unwrap();
        assert!(sent.success());
    }

    /// Kills den with SIGKILL and waits for it to be gone.
    pub(crate) async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// Like [`Den::start_with`], with `env` in `den serve`'s environment.
    pub(crate) async fn start_with_env(extra: &str, env: Vec<(String, String)>) -> Self {
        Self::start_full_env(Database::Sqlite, &[], extra, env, 0).await
    }

    async fn start_full(database: Database, allowed_hosts: &[&str], extra: &str) -> Self {
        Self::start_full_env(database, allowed_hosts, extra, Vec::new(), 0).await
    }

    /// Hermetic: sandbox network `none`, which host-side git obeys too, so a repository off this
    /// machine (not allow-listed) is refused naming its host, never fetched; the scripted model.
    async fn start_full_env(
        database: Database,
        allowed_hosts: &[&str],
        extra: &str,
        env: Vec<(String, String)>,
        warm_pool: usize,
    ) -> Self {
        let database_url = match database {
            Database::Sqlite => None,
            Database::Postgres => Some(fresh_postgres_database().await),
        };
        let model = ScriptedModel::start().await.unwrap();
        let data_dir = tempfile::tempdir().unwrap();
        traversable(data_dir.path());
        let repos = tempfile::tempdir().unwrap();
        let repo = repos.path().join("project");
        make_repo(&repo).await;
        let port = free_port();
        let config = data_dir.path().join("den.toml");
        let uid_base = random_uid_base();
        let (sandbox_lines, extra_lines): (Vec<&str>, Vec<&str>) =
            extra.lines().partition(|line| line.starts_with("sandbox."));
        let sandbox_extra: String = sandbox_lines
            .iter()
            .map(|line| format!("{}\n", &line["sandbox.".len()..]))
            .collect();
        let extra = extra_lines.join("\n");
        let toml = format!(
            "listen = \"127.0.0.1:{port}\"\n\
             [repositories]\nlocal_roots = [\"{repos}\"]\nallowed_hosts = {allowed}\n\
             [sandbox]\nnetwork = \"none\"\nmax_concurrent_starts = 4\nwarm_pool = {warm_pool}\ninstance = \"{instance}\"\nuid_base = {uid_base}\n{sandbox_extra}\
             [[providers]]\nname = \"{OPENAI_PROVIDER}\"\nkind = \"openai-compatible\"\nbase_url = \"{model_url}\"\nmodels = [\"{OPENAI_MODEL}\"]\n",
            repos = repos.path().display(),
            allowed = serde_json::to_string(allowed_hosts).unwrap(),
            // Each test's den has its own host state, so dens in parallel never reap each other.
            instance = &uuid_hex()[..8],
            model_url = model.base_url(),
        ) + &extra.replace("{model_url}", &model.base_url());
        std::fs::write(&config, toml).unwrap();

        add_user(data_dir.path(), &config, database_url.as_deref(), "alice").await;

        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut den = Self {
            child: None,
            database_url,
            log: std::sync::Arc::default(),
            uid_base,
            base: format!("http://127.0.0.1:{port}"),
            model,
            token: String::new(),
            repo,
            http,
            data_dir,
            _repos: repos,
            config,
            port,
            env,
        };
        den.launch().await;
        den.token = den.sign_in("alice").await;
        den
    }

    /// Starts `den serve` and waits until it says it listens.
    async fn launch(&mut self) {
        let mut serve = den_command(
            self.data_dir.path(),
            &self.config,
            self.database_url.as_deref(),
        );
        serve
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = serve.spawn().unwrap();
        // den's log goes to the test's output, to memory (for the log checks) and to `den.log`
        // in its data directory, where the secret scans read it.
        let mut log_lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = self.log.clone();
        let log_path = self.log_path();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut log_file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .await
                .unwrap();
            while let Ok(Some(line)) = log_lines.next_line().await {
                #[expect(
                    clippy::print_stderr,
                    reason = "den's log goes on to the test's output, as it did when inherited"
                )]
                {
                    eprintln!("{line}");
                }
                let _ = log_file.write_all(format!("{line}\n").as_bytes()).await;
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let listening = tokio::time::timeout(WITHIN, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.starts_with("den is listening") {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap();
        assert!(listening, "den exited before listening");
        // Keep reading stdout so den never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
        let _ = self.port;
    }

    /// Creates another user (through the CLI, beside the running server).
    pub(crate) async fn add_user(&self, name: &str) {
        add_user(
            self.data_dir.path(),
            &self.config,
            self.database_url.as_deref(),
            name,
        )
        .await;
    }

    /// Creates a user without a password (through the CLI); returns the one-time sign-in link
    /// den prints for them.
    pub(crate) async fn add_user_with_link(&self, name: &str) -> String {
        let mut add = den_command(
            self.data_dir.path(),
            &self.config,
            self.database_url.as_deref(),
        );
        let output = add.args(["user", "add", name]).output().await.unwrap();
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        stdout
            .split_whitespace()
            .find(|word| word.contains("/api/auth/link/"))
            .unwrap_or_else(|| panic!("no link in {stdout}"))
            .to_owned()
    }

    /// Kills den with SIGKILL (no chance to clean up) and starts it again on the same data.
    pub(crate) async fn kill_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
        self.launch().await;
    }

    /// Where den's log (its standard error) is kept.
    pub(crate) fn log_path(&self) -> PathBuf {
        self.data_dir.path().join("den.log")
    }

    /// Sends den SIGTERM and waits (at most `limit`) for it to exit; its exit status.
    pub(crate) async fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("den runs");
        let pid = child.id().expect("den has a pid");
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(sent.success());
        tokio::time::timeout(limit, child.wait())
            .await
            .expect("den exits in time after SIGTERM")
            .unwrap()
    }

    /// An authenticated GET whose response body streams (SSE).
    pub(crate) async fn stream(&self, path: &str) -> reqwest::Response {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        response
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().and_then(Child::id).unwrap()
    }

    /// Signs `name` in and returns a fresh API token.
    pub(crate) async fn sign_in(&self, name: &str) -> String {
        let login = self
            .http
            .post(format!("{}/api/auth/login", self.base))
            .header("x-den-csrf", "1")
            .json(&json!({"username": name, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert!(login.status().is_success(), "login: {}", login.status());
        let cookie = login
            .headers()
            .get_all("set-cookie")
            .iter()
            .find_map(|v| {
                v.to_str()
                    .ok()
                    .filter(|c| c.starts_with("den_session="))
                    .map(|c| c.split(';').next().unwrap().to_owned())
            })
            .unwrap();
        let token = self
            .http
            .post(format!("{}/api/tokens", self.base))
            .header("cookie", cookie)
            .header("x-den-csrf", "1")
            .json(&json!({"name": "e2e"}))
            .send()
            .await
            .unwrap();
        let body: Value = token.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        self.api_as(&self.token, method, path, body).await
    }

    pub(crate) async fn api_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Creates a session on the test repository, optionally with a first prompt.
    pub(crate) async fn create_session(&self, prompt: Option<&str>) -> String {
        let model = format!("{OPENAI_PROVIDER}/{OPENAI_MODEL}");
        self.create_session_on(&self.token, &model, prompt).await
    }

    /// Creates a session of the token's user on `model`.
    pub(crate) async fn create_session_on(
        &self,
        token: &str,
        model: &str,
        prompt: Option<&str>,
    ) -> String {
        let body = json!({"repository": self.repo.display().to_string(), "model": model, "prompt": prompt});
        let (status, session) = self
            .api_as(token, reqwest::Method::POST, "/api/sessions", Some(body))
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{session}");
        session["id"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn prompt(&self, session: &str, text: &str) -> Value {
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                &format!("/api/sessions/{session}/prompt"),
                Some(json!({"text": text})),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
        body
    }

    /// A WebSocket client with a tiny receive buffer that reads nothing until asked to.
    pub(crate) async fn connect_stalled(&self, session: &str, after: i64) -> Socket {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!(
            "ws://127.0.0.1:{}/api/sessions/{session}/ws?after={after}",
            self.port
        );
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        let tcp = tokio::net::TcpSocket::new_v4().unwrap();
        // Set before connecting, so the window den sees stays small.
        tcp.set_recv_buffer_size(4096).unwrap();
        let tcp = tcp
            .connect(([127, 0, 0, 1], self.port).into())
            .await
            .unwrap();
        let (stream, _) =
            tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(tcp))
                .await
                .unwrap();
        Socket {
            stream,
            events: Vec::new(),
        }
    }

    /// The value of a counter in den's `/metrics` (0 when it was never counted).
    pub(crate) async fn counter(&self, name: &str) -> f64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|line| line.split([' ', '{']).next() == Some(name))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub(crate) async fn connect(&self, session: &str, after: i64) -> Socket {
        self.connect_as(&self.token, session, after).await.unwrap()
    }

    pub(crate) async fn connect_as(
        &self,
        token: &str,
        session: &str,
        after: i64,
    ) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!(
            "ws://127.0.0.1:{}/api/sessions/{session}/ws?after={after}",
            self.port
        );
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (stream, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Socket {
            stream,
            events: Vec::new(),
        })
    }
}

/// A WebSocket client that keeps every event it received.
pub(crate) struct Socket {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    pub(crate) events: Vec<SequencedEvent>,
}

impl Socket {
    pub(crate) async fn send(&mut self, message: Value) {
        self.stream
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    pub(crate) async fn send_raw(&mut self, text: &str) {
        self.stream
            .send(Message::Text(text.to_owned().into()))
            .await
            .unwrap();
    }

    /// The next server message.
    pub(crate) async fn next(&mut self) -> ServerMessage {
        // One deadline for the whole wait: den's keepalive pings must not extend it.
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("no message in time");
            match message.expect("socket closed").unwrap() {
                Message::Text(text) => {
                    let message: ServerMessage = serde_json::from_str(&text).unwrap();
                    if let ServerMessage::Event(event) = &message {
                        self.events.push((**event).clone());
                    }
                    return message;
                }
                Message::Close(frame) => panic!("socket closed: {frame:?}"),
                _ => {}
            }
        }
    }

    /// Reads until a refusal arrives (events before it are kept); returns it.
    pub(crate) async fn next_refusal(&mut self) -> ServerMessage {
        loop {
            let message = self.next().await;
            if matches!(message, ServerMessage::Refused { .. }) {
                return message;
            }
        }
    }

    /// Reads until an event matches `done`; returns it.
    pub(crate) async fn until(&mut self, done: impl Fn(&SessionEvent) -> bool) -> SessionEvent {
        loop {
            if let ServerMessage::Event(event) = self.next().await
                && done(&event.event)
            {
                return event.event;
            }
        }
    }

    /// Reads until the next finished turn; returns its outcome.
    pub(crate) async fn until_turn_finished(&mut self) -> SessionEvent {
        self.until(|e| matches!(e, SessionEvent::TurnFinished { .. }))
            .await
    }

    /// Reads to the end of the connection; the close frame's code, if den sent one.
    pub(crate) async fn read_to_end(&mut self) -> Option<u16> {
        // One deadline for the whole wait: den's keepalive pings must not extend it.
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("the connection did not end in time");
            match message {
                Some(Ok(Message::Text(text))) => {
                    if let ServerMessage::Event(event) = serde_json::from_str(&text).unwrap() {
                        self.events.push(*event);
                    }
                }
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                // Ended without a close frame (den gave up on sending it).
                Some(Err(_)) | None => return None,
            }
        }
    }

    pub(crate) async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// The sequence numbers of `events`.
pub(crate) fn seqs(events: &[SequencedEvent]) -> Vec<i64> {
    events.iter().map(|e| e.seq).collect()
}

/// The assistant's text as a client would show it: per part, the latest whole text if one was
/// sent, else the deltas joined; parts in order of first appearance.
pub(crate) fn assistant_text(events: &[SequencedEvent]) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut texts: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for event in events {
        match &event.event {
            SessionEvent::TextDelta { part_id, delta, .. } => {
                if !texts.contains_key(part_id) {
                    order.push(part_id.clone());
                }
                texts.entry(part_id.clone()).or_default().push_str(delta);
            }
            SessionEvent::PartText {
                part_id,
                text,
                kind: den_protocol::events::TextKind::Text,
                ..
            } => {
                if !texts.contains_key(part_id) {
                    order.push(part_id.clone());
                }
                texts.insert(part_id.clone(), text.clone());
            }
            _ => {}
        }
    }
    order
        .iter()
        .map(|id| texts[id].as_str())
        .collect::<Vec<_>>()
        .join("")
}
