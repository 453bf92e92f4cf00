//! The state every handler shares, and the server's configuration.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use den_session::{EgressPolicy, SessionManager};
use den_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::github::GithubConfig;
use crate::auth::throttle::{LoginThrottle, ThrottleLimits};

/// What the server needs to know; assembled by the binary from den's layered config.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The URL people open, e.g. `http://127.0.0.1:8787`. Used for sign-in links, the OAuth
    /// redirect, the `Secure` cookie flag (https) and the same-origin check.
    pub public_url: String,
    /// Local directories whose repositories may be used as a session's repository.
    pub local_repo_roots: Vec<PathBuf>,
    /// The rules a repository URL's host must pass (the sandbox network policy and the admin's
    /// allow-list); what the URL alone decides is refused at creation.
    pub repository_egress: EgressPolicy,
    /// GitHub sign-in, when configured.
    pub github: Option<GithubConfig>,
    /// How long a browser stays signed in.
    pub web_session_ttl: Duration,
    /// How long a one-time sign-in link works.
    pub login_link_ttl: Duration,
    pub throttle: ThrottleLimits,
    /// The largest request body accepted.
    pub body_limit_bytes: usize,
    /// A WebSocket send that takes longer than this means the client cannot keep up: it is
    /// closed with [`crate::CLOSE_RESUMABLE`] instead of holding events back.
    pub slow_client: Duration,
    /// Every provider and model den knows (its own and the admin's).
    pub catalog: den_session::Catalog,
    /// Whether people may add model endpoints on loopback, private or link-local addresses.
    pub allow_private_endpoints: bool,
    /// den's default monthly model spending cap per person, in US dollars (`budget`).
    pub monthly_budget_usd: Option<f64>,
    /// Whether a new session's repository (and base branch) is checked with `ls-remote` before
    /// the session is created, so a repository that cannot be cloned is refused up front
    /// (default true). Only test servers that run no sessions turn it off.
    pub check_repository_reachable: bool,
    /// The secret den nodes present to each other (forwarded commands); `None`: the node
    /// routes refuse everyone.
    pub node_secret: Option<crate::cluster::NodeSecret>,
}

impl ServerConfig {
    /// Defaults for everything but the public URL.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            local_repo_roots: Vec::new(),
            repository_egress: EgressPolicy::default(),
            github: None,
            web_session_ttl: Duration::from_secs(30 * 24 * 3600),
            login_link_ttl: Duration::from_secs(15 * 60),
            throttle: ThrottleLimits::default(),
            body_limit_bytes: 256 * 1024,
            slow_client: Duration::from_secs(10),
            catalog: den_session::Catalog::builtin(),
            allow_private_endpoints: false,
            monthly_budget_usd: None,
            check_repository_reachable: true,
            node_secret: None,
        }
    }
}

/// Shared, cheaply cloneable handler state. Immutable after start: nothing here is locked
/// across an await.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: ServerConfig,
    throttle: LoginThrottle,
    metrics: PrometheusHandle,
    http: reqwest::Client,
    sessions: Option<SessionManager>,
    /// The ids of share links as they are revoked: each open viewer of one ends at once.
    share_revocations: tokio::sync::broadcast::Sender<uuid::Uuid>,
}

impl AppState {
    /// A server with records only: the live routes answer 503. `metrics` comes from
    /// [`crate::install_metrics_recorder`].
    pub fn new(store: Store, config: ServerConfig, metrics: PrometheusHandle) -> Self {
        Self::build(store, config, metrics, None)
    }

    /// A server whose sessions run (sandboxes and the agent).
    pub fn with_sessions(
        store: Store,
        config: ServerConfig,
        metrics: PrometheusHandle,
        sessions: SessionManager,
    ) -> Self {
        Self::build(store, config, metrics, Some(sessions))
    }

    fn build(
        store: Store,
        config: ServerConfig,
        metrics: PrometheusHandle,
        sessions: Option<SessionManager>,
    ) -> Self {
        // No silent fallback to a default client: it would follow redirects, which den's
        // outbound calls must never do. A client that cannot be built (no TLS backend) stops
        // den at start, loudly.
        #[allow(
            clippy::expect_used,
            reason = "only fails when the TLS backend cannot start; den cannot run without it"
        )]
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("den's HTTP client (no redirects) cannot be built");
        let throttle = LoginThrottle::new(config.throttle);
        let inner = Inner {
            store,
            config,
            throttle,
            metrics,
            http,
            sessions,
            share_revocations: tokio::sync::broadcast::channel(256).0,
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn sessions(&self) -> Result<&SessionManager, crate::ApiError> {
        self.inner.sessions.as_ref().ok_or_else(|| {
            crate::ApiError::Unavailable(
                "this den runs without sandboxes: sessions cannot run here".to_owned(),
            )
        })
    }

    pub(crate) fn session_manager(&self) -> Option<&SessionManager> {
        self.inner.sessions.as_ref()
    }

    pub(crate) fn share_revocations(&self) -> &tokio::sync::broadcast::Sender<uuid::Uuid> {
        &self.inner.share_revocations
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    pub(crate) fn throttle(&self) -> &LoginThrottle {
        &self.inner.throttle
    }

    pub(crate) fn metrics(&self) -> &PrometheusHandle {
        &self.inner.metrics
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Whether the request carries the node-to-node secret.
    pub(crate) fn is_node(&self, headers: &axum::http::HeaderMap) -> bool {
        let (Some(secret), Some(presented)) = (
            self.inner.config.node_secret.as_ref(),
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok()),
        ) else {
            return false;
        };
        secret.matches(presented)
    }

    pub(crate) fn serves_https(&self) -> bool {
        self.inner.config.public_url.starts_with("https://")
    }

    /// True when `origin` is den's public origin, or the origin of the `Host` the request came
    /// to (so den works when opened by another name than the configured one, e.g. localhost).
    pub(crate) fn is_own_origin(&self, origin: &str, host: Option<&str>) -> bool {
        let public = &self.inner.config.public_url;
        if origin == public.as_str() {
            return true;
        }
        let scheme = if self.serves_https() { "https" } else { "http" };
        host.is_some_and(|host| origin == format!("{scheme}://{host}"))
    }
}
