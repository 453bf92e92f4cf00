//! The `cluster` suite: three den nodes (real `den serve` processes on loopback) on one
//! PostgreSQL database, as several nodes behind a load balancer would run.
//!
//! - `cluster.event_p99_ms_same_node` / `…_cross_node`: one session owned by node A; a WebSocket
//!   client on A and one on B read the same turns of the bench model (numbered deltas 10 ms
//!   apart, each timestamped when written). Latency = first seen − written. The client on the
//!   owner is the single-node baseline of the same run: it is exactly the path a lone den takes.
//! - `cluster.resume_ms_p50`: pause, then a prompt until its turn starts, on one node (the
//!   snapshot restore a takeover also pays).
//! - `cluster.failover_ms_p50`: the owner is SIGKILLed; a prompt is sent through another node
//!   (again until accepted) and the time runs until its turn starts there.
//! - `cluster.drain_ms_p50`: the owner gets SIGTERM; the time runs until a prompt sent through
//!   another node has its turn started there.
//!
//! Nodes on one machine share the local snapshot directory. The lease TTL is 3 s here (15 s by
//! default): failover is bounded by it, and the note says so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

use super::den::{WITHIN, connect, traversable};
use super::model::{self, BenchModel, markers, now_ns};
use super::{Metric, median, quantile};
use crate::config::Settings;

const PASSWORD: &str = "a long bench password";
const LEASE_TTL_MS: u64 = 3000;
const NODES: usize = 3;

pub(crate) async fn run(settings: &Settings, quick: bool) -> anyhow::Result<Vec<Metric>> {
    let admin_url = settings
        .database_url
        .clone()
        .filter(|url| url.starts_with("postgres"))
        .context(
            "den bench cluster needs --database-url postgres://… (a server where it may create a database)",
        )?;
    let deltas = if quick { 100 } else { 200 };
    let model = BenchModel::start(deltas, Duration::from_millis(10)).await?;
    let name = format!("den_bench_{}", uuid::Uuid::new_v4().simple());
    let database_url = den_store::create_postgres_database(&admin_url, &name)
        .await
        .context("creating the bench database")?;
    let result = async {
        let mut cluster = Cluster::start(settings, &database_url, &model).await?;
        let result = measure(&mut cluster, &model, quick).await;
        cluster.stop().await;
        result
    }
    .await;
    if let Err(err) = den_store::drop_postgres_database(&admin_url, &name).await {
        eprintln!("could not drop the bench database {name}: {err}");
    }
    result
}

async fn measure(
    cluster: &mut Cluster,
    model: &BenchModel,
    quick: bool,
) -> anyhow::Result<Vec<Metric>> {
    let token = cluster.sign_in(0).await?;
    let repo = cluster.repos.path().join("project");
    std::fs::create_dir_all(&repo)?;
    std::fs::write(repo.join("README.md"), "# bench\n")?;
    den_git::init_with_commit(&repo, "bench").await?;

    // Events: a session owned by node 0, a client there and one on node 1.
    let session = cluster
        .create_session(0, &token, &repo, Some("warm up"))
        .await?;
    let same = Client::open(&cluster.ws_url(0, &session), &token).await?;
    let cross = Client::open(&cluster.ws_url(1, &session), &token).await?;
    same.turns_finished(1).await?;
    cross.turns_finished(1).await?;
    let turns = if quick { 2 } else { 5 };
    for n in 0..turns {
        cluster.prompt(0, &token, &session, "go").await?;
        same.turns_finished(2 + n).await?;
        cross.turns_finished(2 + n).await?;
    }
    let sent = model.sent();
    let same_ms = same.latencies(&sent);
    let cross_ms = cross.latencies(&sent);
    anyhow::ensure!(
        !same_ms.is_empty() && !cross_ms.is_empty(),
        "no delta was seen"
    );
    let same_p99 = quantile(same_ms.clone(), 0.99);
    let mut metrics = vec![
        Metric::new(
            "cluster.event_p50_ms_same_node",
            quantile(same_ms, 0.5),
            "ms",
        ),
        Metric::new("cluster.event_p99_ms_same_node", same_p99, "ms")
            .note("a client on the owner: the single-node path, same run"),
        Metric::new(
            "cluster.event_p50_ms_cross_node",
            quantile(cross_ms.clone(), 0.5),
            "ms",
        ),
        Metric::new(
            "cluster.event_p99_ms_cross_node",
            quantile(cross_ms, 0.99),
            "ms",
        )
        .against("cluster.event_p99_ms_same_node")
        .note(format!("target ≤ same node + 5 ms ({:.1})", same_p99 + 5.0)),
    ];

    // Resume on one node: pause, then a prompt until its turn starts.
    let repeats = if quick { 1 } else { 3 };
    let mut resumes = Vec::new();
    for _ in 0..repeats {
        let (status, body) = cluster
            .api(
                0,
                &token,
                reqwest::Method::POST,
                &format!("/api/sessions/{session}/pause"),
                None,
            )
            .await?;
        anyhow::ensure!(status.is_success(), "pause: {status} {body}");
        let before = same.turns_started();
        let start = Instant::now();
        cluster.prompt(0, &token, &session, "resume").await?;
        same.turns_started_beyond(before).await?;
        resumes.push(start.elapsed().as_secs_f64() * 1000.0);
        same.turns_finished(same.finished() + 1).await?;
    }
    let resume = median(resumes);
    metrics.push(
        Metric::new("cluster.resume_ms_p50", resume, "ms")
            .note("pause → prompt → turn started, one node"),
    );
    drop(same);
    drop(cross);

    // Failover and drain: the owner goes; a prompt through the next node runs there.
    let mut failovers = Vec::new();
    let mut drains = Vec::new();
    let mut owner = 0;
    for round in 0..(2 * repeats) {
        let next = (owner + 1) % NODES;
        let watcher = Client::open(&cluster.ws_url(next, &session), &token).await?;
        watcher.caught_up().await?;
        let kill = round % 2 == 0;
        let start = Instant::now();
        if kill {
            cluster.nodes[owner].signal("KILL").await?;
        } else {
            cluster.nodes[owner].signal("TERM").await?;
        }
        let before = watcher.turns_started();
        cluster
            .prompt_until_accepted(next, &token, &session, "after the owner left")
            .await?;
        watcher.turns_started_beyond(before).await?;
        let elapsed = start.elapsed().as_secs_f64() * 1000.0;
        if kill {
            failovers.push(elapsed)
        } else {
            drains.push(elapsed)
        }
        watcher.turns_finished(watcher.finished() + 1).await?;
        cluster.nodes[owner].wait_exit().await;
        cluster.nodes[owner].launch().await?;
        owner = next;
    }
    let ttl = LEASE_TTL_MS as f64;
    metrics.push(
        Metric::new("cluster.failover_ms_p50", median(failovers), "ms").note(format!(
            "owner SIGKILLed → prompt running elsewhere; lease TTL {LEASE_TTL_MS} ms; target ≤ TTL + 1.5 × resume ({:.0})",
            ttl + 1.5 * resume
        )),
    );
    metrics.push(
        Metric::new("cluster.drain_ms_p50", median(drains), "ms")
            .note("owner SIGTERMed → prompt running elsewhere; target ≤ 5000"),
    );
    Ok(metrics)
}

/// One den node: a `den serve` process with its own data dir, port and sandbox instance.
struct Node {
    data_dir: tempfile::TempDir,
    config: PathBuf,
    database_url: String,
    port: u16,
    child: Option<tokio::process::Child>,
}

#[expect(
    clippy::disallowed_methods,
    reason = "den bench cluster starts den nodes as processes (to kill and stop them like a \
              deployment would); den's runtime code starts processes only in den-sandbox"
)]
fn den_command(node: &Node) -> anyhow::Result<tokio::process::Command> {
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    command
        .arg("--data-dir")
        .arg(node.data_dir.path())
        .arg("--config")
        .arg(&node.config)
        .arg("--database-url")
        .arg(&node.database_url)
        .kill_on_drop(true);
    // The bench's own settings came from these; each node has its own in its file.
    for (name, _) in std::env::vars() {
        if name.starts_with("DEN_") && name != "DEN_OPENCODE_BIN" {
            command.env_remove(name);
        }
    }
    command.env("DEN_LOG", "warn");
    Ok(command)
}

impl Node {
    async fn launch(&mut self) -> anyhow::Result<()> {
        let mut serve = den_command(self)?;
        serve
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = serve.spawn().context("starting a den node")?;
        let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        tokio::time::timeout(WITHIN, async {
            while let Some(line) = lines.next_line().await? {
                if line.starts_with("den is listening") {
                    return Ok(());
                }
            }
            anyhow::bail!("a den node exited before listening")
        })
        .await
        .context("a den node did not start in time")??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
        Ok(())
    }

    async fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self
            .child
            .as_ref()
            .and_then(tokio::process::Child::id)
            .context("not running")?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid)?),
            match signal {
                "KILL" => nix::sys::signal::Signal::SIGKILL,
                _ => nix::sys::signal::Signal::SIGTERM,
            },
        )?;
        Ok(())
    }

    async fn wait_exit(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = tokio::time::timeout(WITHIN, child.wait()).await;
        }
    }
}

struct Cluster {
    nodes: Vec<Node>,
    repos: tempfile::TempDir,
    /// The snapshot directory every node shares.
    _snapshots: tempfile::TempDir,
    http: reqwest::Client,
}

impl Cluster {
    /// Node `n` runs sandbox instance `<instance>c<n>` with uids from `uid_base + n × 10000`
    /// (the settings' own), so the bench meets no other den on the machine.
    async fn start(
        settings: &Settings,
        database_url: &str,
        model: &BenchModel,
    ) -> anyhow::Result<Self> {
        super::den::raise_fd_limit();
        let database_url = database_url.to_owned();
        let repos = tempfile::tempdir()?;
        traversable(repos.path())?;
        let mut nodes: Vec<Node> = Vec::new();
        let snapshots = tempfile::tempdir()?;
        traversable(snapshots.path())?;
        for n in 0..NODES {
            let data_dir = tempfile::tempdir()?;
            traversable(data_dir.path())?;
            if let Some(first) = nodes.first() {
                std::fs::copy(
                    first.data_dir.path().join("master.key"),
                    data_dir.path().join("master.key"),
                )?;
            }
            // Nodes on one machine share the local snapshot directory.
            std::os::unix::fs::symlink(snapshots.path(), data_dir.path().join("snapshots"))?;
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let config = data_dir.path().join("den.toml");
            std::fs::write(
                &config,
                format!(
                    "listen = \"127.0.0.1:{port}\"\n\
                     [repositories]\nlocal_roots = [\"{repos}\"]\n\
                     [sandbox]\nnetwork = \"none\"\ninstance = \"{instance}c{n}\"\nuid_base = {uid}\n\
                     [cluster]\nlease_ttl_ms = {LEASE_TTL_MS}\n\
                     [[providers]]\nname = \"{provider}\"\nkind = \"openai-compatible\"\nbase_url = \"{url}\"\nmodels = [\"{model}\"]\n",
                    repos = repos.path().display(),
                    instance = settings.sandbox.instance,
                    uid = settings.sandbox.uid_base as usize + n * 10_000,
                    provider = model::PROVIDER,
                    url = model.base_url(),
                    model = model::MODEL,
                ),
            )?;
            let mut node = Node {
                data_dir,
                config,
                database_url: database_url.clone(),
                port,
                child: None,
            };
            if n == 0 {
                add_user(&node).await?;
            }
            node.launch().await?;
            nodes.push(node);
        }
        Ok(Self {
            nodes,
            repos,
            _snapshots: snapshots,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()?,
        })
    }

    async fn stop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.signal("TERM").await;
            node.wait_exit().await;
        }
    }

    fn base(&self, node: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[node].port)
    }

    fn ws_url(&self, node: usize, session: &str) -> String {
        format!(
            "ws://127.0.0.1:{}/api/sessions/{session}/ws?after=0",
            self.nodes[node].port
        )
    }

    async fn sign_in(&self, node: usize) -> anyhow::Result<String> {
        super::den::sign_in(&self.http, &self.base(node)).await
    }

    async fn api(
        &self,
        node: usize,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        super::den::api_call(&self.http, &self.base(node), token, method, path, body).await
    }

    async fn create_session(
        &self,
        node: usize,
        token: &str,
        repo: &Path,
        prompt: Option<&str>,
    ) -> anyhow::Result<String> {
        let body = json!({
            "repository": repo.display().to_string(),
            "model": format!("{}/{}", model::PROVIDER, model::MODEL),
            "prompt": prompt,
        });
        let (status, session) = self
            .api(
                node,
                token,
                reqwest::Method::POST,
                "/api/sessions",
                Some(body),
            )
            .await?;
        anyhow::ensure!(
            status == reqwest::StatusCode::CREATED,
            "create: {status} {session}"
        );
        Ok(session["id"].as_str().context("no session id")?.to_owned())
    }

    async fn prompt(
        &self,
        node: usize,
        token: &str,
        session: &str,
        text: &str,
    ) -> anyhow::Result<()> {
        let path = format!("/api/sessions/{session}/prompt");
        let (status, body) = self
            .api(
                node,
                token,
                reqwest::Method::POST,
                &path,
                Some(json!({"text": text})),
            )
            .await?;
        anyhow::ensure!(
            status == reqwest::StatusCode::ACCEPTED,
            "prompt: {status} {body}"
        );
        Ok(())
    }

    /// Sends the prompt again while the session's node answers 503 (its old owner's lease has
    /// not expired yet), as a client behind a load balancer would.
    async fn prompt_until_accepted(
        &self,
        node: usize,
        token: &str,
        session: &str,
        text: &str,
    ) -> anyhow::Result<()> {
        let path = format!("/api/sessions/{session}/prompt");
        let deadline = Instant::now() + WITHIN;
        loop {
            let (status, body) = self
                .api(
                    node,
                    token,
                    reqwest::Method::POST,
                    &path,
                    Some(json!({"text": text})),
                )
                .await?;
            if status == reqwest::StatusCode::ACCEPTED {
                return Ok(());
            }
            anyhow::ensure!(
                status == reqwest::StatusCode::SERVICE_UNAVAILABLE && Instant::now() < deadline,
                "prompt: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn add_user(node: &Node) -> anyhow::Result<()> {
    let mut add = den_command(node)?;
    add.args(["user", "add", "bench", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = add.spawn()?;
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .await?;
    anyhow::ensure!(child.wait().await?.success(), "den user add failed");
    Ok(())
}

/// A WebSocket client of one session that notes when it first saw each marker, and counts
/// turns.
struct Client {
    seen: Arc<Mutex<HashMap<u64, u64>>>,
    progress: tokio::sync::watch::Receiver<Progress>,
    reader: tokio::task::JoinHandle<()>,
}

#[derive(Clone, Copy, Default)]
struct Progress {
    caught_up: bool,
    started: usize,
    finished: usize,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Client {
    async fn open(url: &str, token: &str) -> anyhow::Result<Self> {
        let mut stream = connect(url, token).await?;
        let seen: Arc<Mutex<HashMap<u64, u64>>> = Arc::default();
        let (progress_tx, progress) = tokio::sync::watch::channel(Progress::default());
        let reader = tokio::spawn({
            let seen = seen.clone();
            async move {
                while let Some(Ok(message)) = stream.next().await {
                    let at = now_ns();
                    let Message::Text(text) = message else {
                        continue;
                    };
                    let Ok(message) = serde_json::from_str::<Value>(&text) else {
                        continue;
                    };
                    if message["type"] == "live" {
                        progress_tx.send_modify(|p| p.caught_up = true);
                        continue;
                    }
                    let event = &message["event"];
                    match event["type"].as_str() {
                        Some("text_delta") => {
                            let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                            for marker in markers(event["delta"].as_str().unwrap_or("")) {
                                seen.entry(marker).or_insert(at);
                            }
                        }
                        Some("turn_started") => progress_tx.send_modify(|p| p.started += 1),
                        Some("turn_finished") => progress_tx.send_modify(|p| p.finished += 1),
                        _ => {}
                    }
                }
            }
        });
        Ok(Self {
            seen,
            progress,
            reader,
        })
    }

    fn latencies(&self, sent: &HashMap<u64, u64>) -> Vec<f64> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.iter()
            .filter_map(|(marker, at)| Some((*at as f64 - *sent.get(marker)? as f64) / 1e6))
            .collect()
    }

    fn turns_started(&self) -> usize {
        self.progress.borrow().started
    }

    fn finished(&self) -> usize {
        self.progress.borrow().finished
    }

    async fn wait(&self, done: impl Fn(&Progress) -> bool) -> anyhow::Result<()> {
        let mut progress = self.progress.clone();
        tokio::time::timeout(WITHIN, progress.wait_for(|p| done(p)))
            .await
            .context("the session did not get there in time")?
            .context("the client's connection ended")?;
        Ok(())
    }

    async fn caught_up(&self) -> anyhow::Result<()> {
        self.wait(|p| p.caught_up).await
    }

    async fn turns_finished(&self, count: usize) -> anyhow::Result<()> {
        self.wait(|p| p.finished >= count).await
    }

    async fn turns_started_beyond(&self, count: usize) -> anyhow::Result<()> {
        self.wait(|p| p.started > count).await
    }
}
