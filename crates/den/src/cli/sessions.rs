//! Starting the live part of den: the sandbox runtime, the model and git gateways, the session
//! manager.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use den_sandbox::{Limits, LocalConfig, LocalRuntime};
use den_session::{AdminProvider, Catalog, ProviderKind, SessionConfig, SessionManager};
use den_store::Store;
use tokio::sync::oneshot;

use crate::config::{ProviderKindSetting, Settings};

/// The running live part; [`Live::stop`] shuts it down in order.
pub(crate) struct Live {
    pub(crate) manager: SessionManager,
    /// Ends the notifier's listening and sending tasks.
    stop_notifier: tokio_util::sync::CancellationToken,
    runtime: Arc<LocalRuntime>,
    gateway_stop: oneshot::Sender<()>,
    gateway: tokio::task::JoinHandle<std::io::Result<()>>,
    git_gateway_stop: oneshot::Sender<()>,
    git_gateway: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The object storage sweeper, when snapshots are kept there.
    sweeper: Option<tokio::task::JoinHandle<()>>,
}

pub(crate) async fn start(
    settings: &Settings,
    store: &Store,
    internal_url: String,
    node_secret: den_server::cluster::NodeSecret,
) -> anyhow::Result<Live> {
    let sandbox = &settings.sandbox;
    let root_dir = sandbox
        .root_dir
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("sandboxes"));
    let mut local = LocalConfig::new(&root_dir);
    local.max_concurrent_creates = sandbox.max_concurrent_starts.max(1);
    local.instance.clone_from(&sandbox.instance);
    local.uid_base = sandbox.uid_base;
    let home_template =
        den_sandbox::home_template_in(&settings.tools_dir, den_opencode::PINNED_VERSION);
    local.home_template = home_template.exists().then_some(home_template);
    let (runtime, reaped) = LocalRuntime::start(local)
        .await
        .context("starting the sandbox runtime (see `den doctor`)")?;
    tracing::info!(?reaped, "sandbox runtime ready");

    let run_dir = settings.data_dir.join("run");
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let gateway_socket = run_dir.join("gateway.sock");
    let _ = std::fs::remove_file(&gateway_socket);
    let listener = tokio::net::UnixListener::bind(&gateway_socket)
        .context("binding the model gateway socket")?;
    let catalog = catalog(settings)?;
    let (gateway_stop, stopped) = oneshot::channel::<()>();
    let gateway = tokio::spawn(den_server::serve_gateway(
        listener,
        store.clone(),
        catalog.clone(),
        den_server::GatewayPolicy {
            allow_private_endpoints: settings.models.allow_private_endpoints,
            monthly_budget_usd: settings.models.monthly_budget_usd,
        },
        async move {
            let _ = stopped.await;
        },
    ));

    let git_gateway_socket = run_dir.join("git-gateway.sock");
    let _ = std::fs::remove_file(&git_gateway_socket);
    let git_listener = tokio::net::UnixListener::bind(&git_gateway_socket)
        .context("binding the git gateway socket")?;
    let (git_gateway_stop, git_stopped) = oneshot::channel::<()>();
    // The person's GitHub token for GitHub's host when they stored no credential for it, in
    // den's clone and the git gateway alike (refreshed when it expires).
    let github_credentials = super::serve::github_config(settings)
        .map(|github| den_server::GithubCredentials::new(store.clone(), github));
    let git_gateway = tokio::spawn(den_server::serve_git_gateway(
        git_listener,
        store.clone(),
        settings.repository_egress(),
        github_credentials.clone(),
        async move {
            let _ = git_stopped.await;
        },
    ));

    let opencode_bin = std::env::var_os("DEN_OPENCODE_BIN")
        .map(Into::into)
        .unwrap_or_else(|| {
            den_sandbox::opencode_bin_in(&settings.tools_dir, den_opencode::PINNED_VERSION)
        });
    anyhow::ensure!(
        opencode_bin.exists(),
        "OpenCode is not installed at {}: run scripts/install-opencode",
        opencode_bin.display()
    );
    let mut config = SessionConfig::new(&settings.data_dir, gateway_socket, opencode_bin);
    config.catalog = catalog;
    config.git_gateway_socket = Some(git_gateway_socket);
    config.runner.clone_from(&sandbox.instance);
    config.credentials =
        github_credentials.map(|github| den_session::Credentials(std::sync::Arc::new(github)));
    config.idle_timeout = Duration::from_secs(sandbox.idle_timeout_minutes * 60);
    config.turn_inactivity_timeout =
        Duration::from_secs(sandbox.turn_inactivity_minutes.max(1) * 60);
    config.ask_timeout = Duration::from_secs(sandbox.ask_timeout_seconds);
    config.lifetime = Duration::from_secs(sandbox.lifetime_minutes * 60);
    config.network = sandbox.network.policy();
    config.warm_pool = sandbox.warm_pool;
    config.lean_agent = sandbox.lean_agent;
    config
        .repository_hosts
        .clone_from(&settings.repositories.allowed_hosts);
    config.limits = Limits {
        millicpus: (sandbox.cpus * 1000.0).round() as u32,
        memory_bytes: sandbox.memory_mb * 1024 * 1024,
        pids: sandbox.pids,
    };
    let runtime_dyn: Arc<dyn den_sandbox::SandboxRuntime> = runtime.clone();
    let chosen = super::snapshots::artifact_store(settings, &config.snapshots_dir)?;
    let objects = chosen.objects;
    let manager =
        SessionManager::with_artifacts(store.clone(), runtime_dyn, chosen.artifacts, config);
    let migrated = manager
        .migrate_host_path_snapshots()
        .await
        .context("moving snapshots recorded as host paths into the artifact store")?;
    if migrated.moved > 0 || migrated.lost > 0 {
        tracing::info!(
            moved = migrated.moved,
            lost = migrated.lost,
            "snapshots an older den recorded as host paths are now in the artifact store"
        );
    }
    // Other nodes on the same database: this node's heartbeat and leases, forwarded commands
    // and the relay of their events (on SQLite, one node: the heartbeat only).
    let stop_notifier = tokio_util::sync::CancellationToken::new();
    let notifier = den_session::cluster::PgNotifier::start(
        store.clone(),
        &sandbox.instance,
        stop_notifier.clone(),
    )
    .await
    .context("listening for the other den nodes")?
    .map(|notifier| notifier as Arc<dyn den_session::cluster::Notifier>);
    let forwarder = den_server::cluster::HttpForwarder::new(node_secret)
        .context("building the node-to-node HTTP client")?;
    manager
        .join_cluster(den_session::cluster::ClusterConfig {
            lease_ttl: Duration::from_millis(settings.cluster.lease_ttl_ms),
            internal_url,
            forwarder: Some(Arc::new(forwarder)),
            notifier,
        })
        .await
        .context("joining the den nodes on this database")?;
    let recovered = manager
        .recover()
        .await
        .context("recovering sessions after a restart")?;
    if recovered > 0 {
        tracing::info!(
            recovered,
            "sessions that were running are paused at their last snapshot"
        );
    }
    let sweeper =
        objects.map(|objects| super::snapshots::spawn_sweeper(settings, objects, store.clone()));
    Ok(Live {
        manager,
        sweeper,
        stop_notifier,
        runtime,
        gateway_stop,
        gateway,
        git_gateway_stop,
        git_gateway,
    })
}

impl Live {
    /// Stops every session (their turns are closed as interrupted), then the gateway and the
    /// runtime.
    pub(crate) async fn stop(self) {
        if let Some(sweeper) = &self.sweeper {
            sweeper.abort();
        }
        self.manager.shutdown().await;
        self.manager.leave_cluster().await;
        self.stop_notifier.cancel();
        let _ = self.gateway_stop.send(());
        let _ = self.gateway.await;
        let _ = self.git_gateway_stop.send(());
        let _ = self.git_gateway.await;
        if let Err(err) = self.runtime.shutdown().await {
            tracing::warn!(error = %err, "the sandbox runtime did not shut down cleanly");
        }
    }
}

/// den's model catalog: its own providers with the admin's `[[providers]]` merged in.
pub(crate) fn catalog(settings: &Settings) -> anyhow::Result<Catalog> {
    let admin = settings
        .providers
        .iter()
        .map(|provider| {
            let api_key =
                match &provider.api_key_env {
                    Some(name) => Some(std::env::var(name).with_context(|| {
                        format!("provider {}: {name} is not set", provider.name)
                    })?),
                    None => None,
                };
            Ok(AdminProvider {
                name: provider.name.clone(),
                kind: provider.kind.map(|kind| match kind {
                    ProviderKindSetting::OpenaiCompatible => ProviderKind::OpenAiCompatible,
                    ProviderKindSetting::Anthropic => ProviderKind::Anthropic,
                    ProviderKindSetting::Openai => ProviderKind::OpenAi,
                }),
                base_url: provider.base_url.clone(),
                models: provider.models.clone(),
                api_key,
                shared: provider.shared,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Catalog::new(admin).map_err(|message| anyhow::anyhow!("[[providers]]: {message}"))
}
