//! A git smart-HTTP server standing in for GitHub: the real `git http-backend` as CGI behind a
//! small axum server on `127.0.0.1`. Like GitHub it wants HTTP Basic auth whose password is
//! the token (any username), answers `401` with `WWW-Authenticate: Basic realm="GitHub"`
//! otherwise, and serves fetches and pushes of bare repositories. Every push is recorded.
//! The same host answers the GitHub REST calls den makes (`github_rest`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::task::JoinHandle;

/// The largest request body the stand-in accepts (a push of a test repository is far smaller).
const MAX_BODY: usize = 64 << 20;

/// One ref update of a recorded push, as the client sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefUpdate {
    pub old: String,
    pub new: String,
    pub name: String,
}

/// A push that reached the server (whether git accepted every update or not).
#[derive(Clone, Debug)]
pub struct RecordedPush {
    /// The repository's name, e.g. `acme/widgets`.
    pub repository: String,
    /// The Basic auth username the client sent.
    pub username: String,
    pub updates: Vec<RefUpdate>,
}

pub(crate) struct Shared {
    pub(crate) root: PathBuf,
    pub(crate) token: String,
    /// `http://127.0.0.1:<port>`, once bound (for URLs in REST payloads).
    pub(crate) base_url: Mutex<String>,
    pub(crate) pulls: Mutex<Vec<crate::github_rest::RecordedPull>>,
    /// What `GET /user/repos` lists, in the order given.
    pub(crate) user_repositories: Mutex<Vec<crate::github_rest::UserRepository>>,
    pushes: Mutex<Vec<RecordedPush>>,
    /// The refresh tokens `POST /login/oauth/access_token` still honours (each works once).
    pub(crate) refresh_tokens: Mutex<Vec<String>>,
    /// How many refreshes were asked for (honoured or not).
    pub(crate) refresh_calls: Mutex<usize>,
    /// Every `Authorization` header value received (to check what a client sent).
    authorizations: Mutex<Vec<String>>,
}

/// A running git server. Dropping it stops the server and removes its repositories.
pub struct GitServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
    _root: tempfile::TempDir,
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "the test stand-in runs git on the host; production code starts processes only in den-sandbox"
)]
fn git() -> Command {
    let mut command = Command::new("git");
    command
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", "/nonexistent")
        .kill_on_drop(true);
    command
}

async fn run(mut command: Command) -> std::io::Result<String> {
    let output = command.stdin(Stdio::null()).output().await?;
    if !output.status.success() {
        return Err(std::io::Error::other(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl GitServer {
    /// Starts the server on an ephemeral loopback port; clients authenticate with `token`.
    pub async fn start(token: &str) -> std::io::Result<Self> {
        let root = tempfile::Builder::new()
            .prefix("den-git-server")
            .tempdir()?;
        let shared = Arc::new(Shared {
            root: root.path().to_path_buf(),
            token: token.to_owned(),
            base_url: Mutex::new(String::new()),
            pulls: Mutex::new(Vec::new()),
            user_repositories: Mutex::new(Vec::new()),
            pushes: Mutex::new(Vec::new()),
            refresh_tokens: Mutex::new(Vec::new()),
            refresh_calls: Mutex::new(0),
            authorizations: Mutex::new(Vec::new()),
        });
        use crate::github_rest;
        let app = Router::new()
            .route(
                "/api/v3/repos/{owner}/{name}",
                axum::routing::get(github_rest::repository),
            )
            .route(
                "/api/v3/repos/{owner}/{name}/pulls",
                axum::routing::get(github_rest::list_pulls).post(github_rest::create_pull),
            )
            .route(
                "/api/v3/repos/{owner}/{name}/branches",
                axum::routing::get(github_rest::branches),
            )
            .route(
                "/login/oauth/access_token",
                axum::routing::post(github_rest::refresh_token),
            )
            .route(
                "/api/v3/user/repos",
                axum::routing::get(github_rest::user_repositories),
            )
            .fallback(serve)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        *lock(&shared.base_url) = format!("http://{addr}");
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "git server stopped");
            }
        });
        Ok(Self {
            addr,
            shared,
            server,
            _root: root,
        })
    }

    /// A refresh token `POST /login/oauth/access_token` will honour once (a GitHub App's).
    pub fn issue_refresh_token(&self, refresh_token: &str) {
        lock(&self.shared.refresh_tokens).push(refresh_token.to_owned());
    }

    /// How many token refreshes were asked for, honoured or not.
    pub fn refresh_calls(&self) -> usize {
        *lock(&self.shared.refresh_calls)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The clone URL of repository `name` (e.g. `acme/widgets`): `<base>/acme/widgets.git`.
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}.git", self.base_url())
    }

    /// The bare repository of `name` on disk.
    pub fn path(&self, name: &str) -> PathBuf {
        self.shared.root.join(format!("{name}.git"))
    }

    /// Creates repository `name` with one commit on `main` holding `files`.
    pub async fn create_repo(&self, name: &str, files: &[(&str, &str)]) -> std::io::Result<()> {
        let work = tempfile::tempdir()?;
        let dir = work.path();
        init_repository(dir, files).await?;
        let bare = self.path(name);
        if let Some(parent) = bare.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut clone = git();
        clone
            .args(["clone", "--quiet", "--bare"])
            .arg(dir)
            .arg(&bare);
        run(clone).await?;
        Ok(())
    }

    /// The commit `reference` (e.g. `refs/heads/main`) points at in repository `name`, if any.
    pub async fn commit_of(&self, name: &str, reference: &str) -> Option<String> {
        let mut rev_parse = git();
        rev_parse.arg("--git-dir").arg(self.path(name)).args([
            "rev-parse",
            "--verify",
            "--quiet",
            reference,
        ]);
        run(rev_parse).await.ok().filter(|c| !c.is_empty())
    }

    /// Runs git with `args` in repository `name` (to read what a push left), returning stdout.
    pub async fn git_in(&self, name: &str, args: &[&str]) -> std::io::Result<String> {
        let mut command = git();
        command.arg("--git-dir").arg(self.path(name)).args(args);
        run(command).await
    }

    /// The GitHub REST API base of this host (as GitHub Enterprise: `<base>/api/v3`).
    pub fn api_url(&self) -> String {
        format!("{}/api/v3", self.base_url())
    }

    /// Adds a repository to what `GET /user/repos` lists (in the order added: add them most
    /// recently pushed first, as GitHub sorts them).
    pub fn add_user_repository(&self, repository: crate::github_rest::UserRepository) {
        lock(&self.shared.user_repositories).push(repository);
    }

    /// Every pull request created so far.
    pub fn pulls(&self) -> Vec<crate::github_rest::RecordedPull> {
        lock(&self.shared.pulls).clone()
    }

    /// Every push received so far, in order.
    pub fn pushes(&self) -> Vec<RecordedPush> {
        lock(&self.shared.pushes).clone()
    }

    /// Every `Authorization` header received so far.
    pub fn authorizations(&self) -> Vec<String> {
        lock(&self.shared.authorizations).clone()
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"GitHub\"")],
        "Authentication failed\n",
    )
        .into_response()
}

/// The username, when `headers` carry Basic auth whose password is `token`.
fn authorized(headers: &HeaderMap, token: &str) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    (password == token).then(|| user.to_owned())
}

async fn serve(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Some(value) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        lock(&shared.authorizations).push(value.to_owned());
    }
    let Some(username) = authorized(&parts.headers, &shared.token) else {
        return unauthorized();
    };
    let Ok(body) = axum::body::to_bytes(Body::new(body), MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "too large\n").into_response();
    };
    let path = parts.uri.path().to_owned();
    if path.ends_with("/git-receive-pack") && parts.method == axum::http::Method::POST {
        let repository = path
            .trim_start_matches('/')
            .trim_end_matches("/git-receive-pack")
            .trim_end_matches(".git")
            .to_owned();
        let updates = ref_updates(&body);
        lock(&shared.pushes).push(RecordedPush {
            repository,
            username: username.clone(),
            updates,
        });
    }
    match cgi(&shared.root, &parts, &username, body).await {
        Ok(response) => response,
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("git http-backend failed: {error}\n"),
        )
            .into_response(),
    }
}

/// The ref updates at the start of a receive-pack request: pkt-lines `<old> <new> <ref>`
/// (the first carrying capabilities after a NUL) up to a flush packet.
pub fn ref_updates(body: &[u8]) -> Vec<RefUpdate> {
    let mut updates = Vec::new();
    let mut rest = body;
    while rest.len() >= 4 {
        let Some(length) = std::str::from_utf8(&rest[..4])
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
        else {
            break;
        };
        if length < 4 || length > rest.len() {
            break;
        }
        let line = &rest[4..length];
        rest = &rest[length..];
        let line = line.split(|b| *b == 0).next().unwrap_or_default();
        let text = String::from_utf8_lossy(line);
        let mut fields = text.trim_end().splitn(3, ' ');
        if let (Some(old), Some(new), Some(name)) = (fields.next(), fields.next(), fields.next()) {
            updates.push(RefUpdate {
                old: old.to_owned(),
                new: new.to_owned(),
                name: name.to_owned(),
            });
        }
    }
    updates
}

/// Runs `git http-backend` for the request and turns its CGI output into a response.
async fn cgi(
    root: &Path,
    parts: &axum::http::request::Parts,
    username: &str,
    body: Bytes,
) -> std::io::Result<Response> {
    let header = |name: &HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut command = git();
    command
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or_default())
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("CONTENT_TYPE", header(&header::CONTENT_TYPE))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header(&header::CONTENT_ENCODING))
        .env("GIT_PROTOCOL", header(&HeaderName::from_static("git-protocol")))
        // Setting REMOTE_USER is what lets http-backend accept pushes.
        .env("REMOTE_USER", username)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn()?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no stdin"))?;
    let feed = async move {
        let result = stdin.write_all(&body).await;
        drop(stdin);
        result
    };
    let (fed, output) = tokio::join!(feed, child.wait_with_output());
    let output = output?;
    // A backend that stops reading early (an error) has said why on stdout.
    let _ = fed;
    let stdout = output.stdout;
    let split = find(&stdout, b"\r\n\r\n")
        .map(|at| (at, 4))
        .or_else(|| find(&stdout, b"\n\n").map(|at| (at, 2)));
    let Some((at, skip)) = split else {
        return Err(std::io::Error::other(format!(
            "no CGI headers; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    };
    let mut response = Response::new(Body::from(stdout[at + skip..].to_vec()));
    for line in String::from_utf8_lossy(&stdout[..at]).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().and_then(|c| c.parse().ok());
            if let Some(status) = code.and_then(|c| StatusCode::from_u16(c).ok()) {
                *response.status_mut() = status;
            }
        } else if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.trim()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    Ok(response)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Makes `dir` (created if missing) a git repository with one commit on `main` holding `files`:
/// a local repository for a den whose admin allows local roots, so a test needs no remote.
pub async fn init_repository(dir: &Path, files: &[(&str, &str)]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (path, contents) in files {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(file, contents)?;
    }
    let identity = [
        "-c",
        "user.name=owner",
        "-c",
        "user.email=owner@example.com",
    ];
    for args in [
        vec!["init", "--quiet", "--initial-branch=main"],
        vec!["add", "-A"],
        [&identity[..], &["commit", "--quiet", "-m", "initial"]].concat(),
    ] {
        let mut command = git();
        command.arg("-C").arg(dir).args(args);
        run(command).await?;
    }
    Ok(())
}
