//! A real den server on 127.0.0.1:0 with a fresh SQLite database, and a client for it.

use std::time::Duration;

use den_server::{AppState, ServerConfig};
use den_store::{Keyring, Store};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;

pub(crate) const PASSWORD: &str = "correct horse battery";

pub(crate) struct TestServer {
    pub(crate) base: String,
    live: Option<(
        den_session::SessionManager,
        std::sync::Arc<den_sandbox::LocalRuntime>,
    )>,
    pub(crate) store: Store,
    /// A live server's local git repository (`…/repos/r`, one commit), in its allowed roots.
    pub(crate) repository: Option<String>,
    http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

/// A signed-in user with both kinds of credentials.
#[derive(Clone)]
pub(crate) struct TestUser {
    pub(crate) cookie: String,
    pub(crate) token: String,
}

/// How a request authenticates.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    Anonymous,
    /// The browser's way: session cookie plus the CSRF header.
    Cookie(&'a TestUser),
    Bearer(&'a TestUser),
}

impl TestServer {
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::launch(configure, false).await
    }

    /// A server whose sessions run, on a real sandbox runtime of its own. Call [`Self::stop`].
    /// Hermetic: its sandboxes have no network (`none`), and the same rule refuses any remote
    /// repository host with a clear error, so sessions use [`Self::repository`], a local one.
    pub(crate) async fn start_live() -> Self {
        Self::start_live_with(|_| {}).await
    }

    /// [`Self::start_live`], configured by `configure`.
    pub(crate) async fn start_live_with(configure: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::launch(configure, true).await
    }

    async fn launch(configure: impl FnOnce(&mut ServerConfig), live: bool) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // Sandboxes run as other uids and must traverse to their directories.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let url = format!("sqlite:{}", dir.path().join("den.db").display());
        let store = Store::connect(&url, Keyring::generate().unwrap())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = ServerConfig::new(base.clone());
        let mut repository = None;
        if live {
            let repos = dir.path().join("repos");
            den_test_support::init_repository(&repos.join("r"), &[("README.md", "# r\n")])
                .await
                .unwrap();
            config.local_repo_roots = vec![repos.clone()];
            config.repository_egress.network = den_sandbox::NetworkPolicy::None;
            repository = Some(repos.join("r").display().to_string());
        } else {
            // These servers run no sessions, so their sessions name repositories (often on
            // example.com) that nobody clones; asking them would reach the internet.
            config.check_repository_reachable = false;
        }
        configure(&mut config);
        let metrics = den_server::install_metrics_recorder();
        let (state, live) = if live {
            let mut local = den_sandbox::LocalConfig::new(dir.path().join("sandboxes"));
            let id = uuid::Uuid::new_v4().simple().to_string();
            local.instance = format!("t{}", &id[..8]);
            local.uid_base =
                4_000_000 + (u32::from_str_radix(&id[8..12], 16).unwrap() % 1000) * 10_000;
            let (runtime, _) = den_sandbox::LocalRuntime::start(local).await.unwrap();
            let mut sessions = den_session::SessionConfig::new(
                dir.path(),
                dir.path().join("gateway.sock"),
                den_test_support::opencode_bin(),
            );
            sessions.network = den_sandbox::NetworkPolicy::None;
            let dyn_runtime: std::sync::Arc<dyn den_sandbox::SandboxRuntime> = runtime.clone();
            let manager = den_session::SessionManager::new(store.clone(), dyn_runtime, sessions);
            let state = AppState::with_sessions(store.clone(), config, metrics, manager.clone());
            (state, Some((manager, runtime)))
        } else {
            (AppState::new(store.clone(), config, metrics), None)
        };
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(den_server::serve(listener, state, async move {
            let _ = stop.await;
        }));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            base,
            live,
            store,
            repository,
            http,
            shutdown: Some(shutdown),
            _dir: dir,
        }
    }

    /// A live server's session manager.
    pub(crate) fn manager(&self) -> &den_session::SessionManager {
        &self.live.as_ref().expect("a live server").0
    }

    /// Creates `name` with [`PASSWORD`], signs in for a cookie and creates an API token.
    pub(crate) async fn user(&self, name: &str) -> TestUser {
        self.user_with_password(name, PASSWORD).await
    }

    /// Creates `name` with `password`, signs in for a cookie and creates an API token.
    pub(crate) async fn user_with_password(&self, name: &str, password: &str) -> TestUser {
        self.signed_in(name, password, false).await
    }

    /// Creates the admin `name` with [`PASSWORD`], signed in like [`Self::user`].
    pub(crate) async fn admin(&self, name: &str) -> TestUser {
        self.signed_in(name, PASSWORD, true).await
    }

    async fn signed_in(&self, name: &str, password: &str, is_admin: bool) -> TestUser {
        den_server::accounts::create_user(&self.store, name, Some(password.to_owned()), is_admin)
            .await
            .unwrap();
        let response = self.login(name, password).await;
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = session_cookie(&response).expect("login sets the session cookie");
        let mut user = TestUser {
            cookie,
            token: String::new(),
        };
        let (status, body) = self
            .call(
                Method::POST,
                "/api/tokens",
                Auth::Cookie(&user),
                Some(serde_json::json!({"name": "tests"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        user.token = body["token"].as_str().unwrap().to_owned();
        user
    }

    pub(crate) async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/api/auth/login", self.base))
            .header(den_server::CSRF_HEADER, "1")
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// A request builder with `auth` applied.
    pub(crate) fn request(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
    ) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match auth {
            Auth::Anonymous => builder,
            Auth::Cookie(user) => builder
                .header(
                    "cookie",
                    format!("{}={}", den_server::SESSION_COOKIE, user.cookie),
                )
                .header(den_server::CSRF_HEADER, "1"),
            Auth::Bearer(user) => builder.bearer_auth(&user.token),
        }
    }

    /// Sends a request and returns the status and the body as JSON (`Null` when empty,
    /// a JSON string when the body is not JSON).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut builder = self.request(method, path, auth);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        read(builder.send().await.unwrap()).await
    }

    /// The status a route answers, for any kind of route: plain, Server-Sent Events (only the
    /// head is read) or WebSocket (the handshake's status).
    pub(crate) async fn exercise(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> StatusCode {
        // WebSocket routes answer a plain GET with 400 before checking anything else.
        if path.ends_with("/ws") || path.ends_with("/terminal") {
            return self.websocket_status(path, auth).await;
        }
        let mut builder = self.request(method, path, auth);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        // Dropping the response without reading it ends a stream.
        builder.send().await.unwrap().status()
    }

    async fn websocket_status(&self, path: &str, auth: Auth<'_>) -> StatusCode {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}{path}", self.base.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().unwrap();
        match auth {
            Auth::Anonymous => {}
            Auth::Cookie(user) => {
                let cookie = format!("{}={}", den_server::SESSION_COOKIE, user.cookie);
                request
                    .headers_mut()
                    .insert("cookie", cookie.parse().unwrap());
            }
            Auth::Bearer(user) => {
                request.headers_mut().insert(
                    "authorization",
                    format!("Bearer {}", user.token).parse().unwrap(),
                );
            }
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((mut socket, response)) => {
                let _ = socket.close(None).await;
                StatusCode::from_u16(response.status().as_u16()).unwrap()
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                StatusCode::from_u16(response.status().as_u16()).unwrap()
            }
            Err(err) => panic!("websocket {path}: {err}"),
        }
    }

    /// Stops the live sessions and removes every sandbox (a live server must be stopped).
    pub(crate) async fn stop(mut self) {
        if let Some((manager, runtime)) = self.live.take() {
            manager.shutdown().await;
            runtime.shutdown().await.unwrap();
            assert!(
                runtime.leftovers().await.is_empty(),
                "sandboxes left behind"
            );
        }
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub(crate) async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// The value of the `den_session` cookie a response sets.
pub(crate) fn session_cookie(response: &reqwest::Response) -> Option<String> {
    set_cookies(response)
        .into_iter()
        .find_map(|cookie| {
            cookie
                .strip_prefix(&format!("{}=", den_server::SESSION_COOKIE))
                .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
        })
        .filter(|value| !value.is_empty())
}

pub(crate) fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok().map(str::to_owned))
        .collect()
}

/// Asserts a JSON error body with `code`.
pub(crate) fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}
