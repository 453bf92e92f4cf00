//! `den serve`: the server, until SIGINT or SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use den_server::{AppState, GithubConfig, ServerConfig, ThrottleLimits};
use tokio::net::TcpListener;

use crate::config::Settings;

pub(crate) async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let store = super::open_migrated_store(&settings).await?;
    let public_url = settings.public_url();
    let mut config = server_config(&settings, public_url.clone());
    config.catalog = super::sessions::catalog(&settings)?;
    if let Some(link) =
        den_server::accounts::bootstrap_admin(&store, &public_url, config.login_link_ttl).await?
    {
        println!(
            "First run: an admin account was created. Open this link to sign in (works once, for 15 minutes):"
        );
        println!("  {link}");
    }
    // Signal handlers are installed before den says it is listening, so a SIGTERM sent as soon
    // as it is up still shuts it down gracefully.
    let signal = shutdown_signal()?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let address = listener.local_addr()?;
    let metrics = den_server::install_metrics_recorder();
    let node_secret = den_server::cluster::NodeSecret::from_store(&store);
    config.node_secret = Some(node_secret.clone());
    let live = if settings.sandbox.enabled {
        let internal_url = settings
            .cluster
            .internal_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}"));
        Some(super::sessions::start(&settings, &store, internal_url, node_secret).await?)
    } else {
        None
    };
    let state = match &live {
        Some(live) => AppState::with_sessions(store.clone(), config, metrics, live.manager.clone()),
        None => {
            tracing::warn!("sandboxes are disabled: sessions are records only");
            AppState::new(store.clone(), config, metrics)
        }
    };
    tracing::info!(%address, database = store.backend_name(), "den is listening");
    println!("den is listening on http://{address} (open {public_url})");
    let manager = live.as_ref().map(|live| live.manager.clone());
    let (draining_tx, draining) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        signal.await;
        // Sessions first: their live connections (WebSocket, SSE) are told to end, turns are
        // closed as interrupted and sandboxes stop. Otherwise the HTTP drain below would wait
        // for event streams that never finish.
        if let Some(manager) = manager {
            if tokio::time::timeout(SESSIONS_STOP_LIMIT, manager.shutdown())
                .await
                .is_err()
            {
                tracing::warn!("sessions did not stop in time; going on");
            }
            manager.end_connections();
        }
        let _ = draining_tx.send(());
    };
    let server = den_server::serve(listener, state, shutdown);
    tokio::pin!(server);
    let drain_limit = async {
        if draining.await.is_ok() {
            tokio::time::sleep(DRAIN_LIMIT).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = &mut server => served.context("serving")?,
        () = drain_limit => tracing::warn!("open requests did not finish in time; stopping anyway"),
    }
    if let Some(live) = live {
        live.stop().await;
    }
    store.close().await;
    tracing::info!("den stopped");
    Ok(ExitCode::SUCCESS)
}

/// How long sessions may take to stop (turns closed, sandboxes stopped) once den is told to.
const SESSIONS_STOP_LIMIT: Duration = Duration::from_secs(20);
/// How long requests still open after that may take to finish.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

pub(crate) fn server_config(settings: &Settings, public_url: String) -> ServerConfig {
    let mut config = ServerConfig::new(public_url);
    config
        .local_repo_roots
        .clone_from(&settings.repositories.local_roots);
    config.repository_egress = settings.repository_egress();
    config.web_session_ttl = Duration::from_secs(settings.auth.session_ttl_hours * 3600);
    config.login_link_ttl = Duration::from_secs(settings.auth.login_link_minutes * 60);
    config.slow_client = Duration::from_millis(settings.live.slow_client_ms.max(1));
    config.allow_private_endpoints = settings.models.allow_private_endpoints;
    config.monthly_budget_usd = settings.models.monthly_budget_usd;
    config.throttle = ThrottleLimits {
        per_username: settings.auth.max_failed_logins_per_user,
        per_address: settings.auth.max_failed_logins_per_address,
        ..ThrottleLimits::default()
    };
    config.github = github_config(settings);
    config
}

/// den's GitHub settings as the server takes them (sign-in, the API, token refresh).
pub(crate) fn github_config(settings: &Settings) -> Option<GithubConfig> {
    settings.github.clone().map(|github| GithubConfig {
        client_id: github.client_id,
        client_secret: github.client_secret,
        authorize_url: github.authorize_url,
        token_url: github.token_url,
        api_url: github.api_url,
        scopes: github.scopes,
        allowed_logins: github.allowed_logins,
    })
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM; in-flight requests then finish.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("interrupted; shutting down"),
            _ = terminate.recv() => tracing::info!("terminated; shutting down"),
        }
    })
}
