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
    pub(crate) store: Store,
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
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("den.db").display());
        let store = Store::connect(&url, Keyring::generate().unwrap())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = ServerConfig::new(base.clone());
        configure(&mut config);
        let state = AppState::new(
            store.clone(),
            config,
            den_server::install_metrics_recorder(),
        );
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
            store,
            http,
            shutdown: Some(shutdown),
            _dir: dir,
        }
    }

    /// Creates `name` with [`PASSWORD`], signs in for a cookie and creates an API token.
    pub(crate) async fn user(&self, name: &str) -> TestUser {
        den_server::accounts::create_user(&self.store, name, Some(PASSWORD.to_owned()), false)
            .await
            .unwrap();
        let response = self.login(name, PASSWORD).await;
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
