//! The registry of session actors, restart recovery, and the live session lists.

use std::sync::Arc;

use den_protocol::events::SessionListUpdate;
use den_protocol::sessions::SessionStatus;
use den_sandbox::{ArtifactStore, LocalArtifactStore, SandboxRuntime};
use den_store::{SessionRecord, Store, StoreError};
use tokio::sync::{broadcast, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::actor::Services;
use crate::config::SessionConfig;
use crate::error::{Result, SessionError};
use crate::eventlog::EventLog;
use crate::handle::{Command, SessionHandle};
use crate::registry::Registry;
use crate::snapshot_migration::SnapshotMigration;

/// A change to one user's session list.
#[derive(Debug, Clone)]
pub struct ListChange {
    pub owner_id: Uuid,
    pub update: SessionListUpdate,
}

/// Finds or starts session actors. Cheap to clone.
#[derive(Clone)]
pub struct SessionManager {
    registry: Arc<Registry>,
    /// Cancelled when den starts to stop: every live connection ends.
    stopping: CancellationToken,
    /// Cancelled as soon as [`Self::shutdown`] begins (before actors stop): not ready.
    draining: CancellationToken,
}

impl SessionManager {
    /// Snapshots are kept in a local artifact store under `config.snapshots_dir`.
    pub fn new(store: Store, runtime: Arc<dyn SandboxRuntime>, config: SessionConfig) -> Self {
        let artifacts = Arc::new(LocalArtifactStore::new(config.snapshots_dir.clone()));
        Self::with_artifacts(store, runtime, artifacts, config)
    }

    /// Like [`Self::new`], keeping snapshots in `artifacts`.
    pub fn with_artifacts(
        store: Store,
        runtime: Arc<dyn SandboxRuntime>,
        artifacts: Arc<dyn ArtifactStore>,
        config: SessionConfig,
    ) -> Self {
        let (list, _) = broadcast::channel(1024);
        let config = Arc::new(config);
        let pool = (config.warm_pool > 0)
            .then(|| crate::pool::WarmPool::start(runtime.clone(), config.clone()));
        let fence = den_store::Fence {
            node: config.runner.clone(),
            epoch: 0,
        };
        let services = Services {
            store,
            runtime,
            artifacts,
            config,
            list,
            fence,
            cluster: Arc::default(),
            pool,
        };
        Self {
            registry: Arc::new(Registry::new(services)),
            stopping: CancellationToken::new(),
            draining: CancellationToken::new(),
        }
    }

    pub(crate) fn services(&self) -> &Services {
        self.registry.services()
    }

    /// Joins the nodes sharing the database: registers this node (its name is the
    /// configuration's `runner`) at `cluster.internal_url`, starts its heartbeat (lease
    /// renewal) and, when a notifier is given, the relay of other nodes' events and session
    /// list changes to this node's clients. Once only; the tasks end with [`Self::shutdown`].
    pub async fn join_cluster(&self, cluster: crate::cluster::ClusterConfig) -> Result<()> {
        let services = self.registry.services();
        let store = &services.store;
        store
            .register_node(&services.config.runner, &cluster.internal_url)
            .await?;
        let hints = cluster.notifier.as_ref().map(|notifier| notifier.hints());
        if services.cluster.set(cluster).is_err() {
            return Err(SessionError::Internal(
                "the node joined the cluster twice".to_owned(),
            ));
        }
        let weak = Arc::downgrade(&self.registry);
        tokio::spawn(crate::cluster::heartbeat_loop(
            weak.clone(),
            self.stopping.clone(),
        ));
        if let Some(hints) = hints {
            tokio::spawn(crate::cluster::fanout::relay_loop(
                weak,
                hints,
                self.stopping.clone(),
            ));
        }
        Ok(())
    }

    /// Removes this node's registration (after [`Self::shutdown`], which handed its leases
    /// back).
    pub async fn leave_cluster(&self) {
        let services = self.registry.services();
        if let Err(err) = services.store.remove_node(&services.config.runner).await {
            tracing::warn!(error = %err, "cannot remove this node's registration");
        }
    }

    /// This node's name among the nodes sharing the database.
    pub fn node(&self) -> &str {
        self.registry.node()
    }

    pub fn store(&self) -> &Store {
        &self.registry.services().store
    }

    pub fn config(&self) -> &SessionConfig {
        &self.registry.services().config
    }

    /// After a restart: sessions this den was starting or running (or that no den claimed)
    /// lost their sandbox with the previous process (sandboxes die with their parent), so a
    /// turn in flight is closed as interrupted and the session is left paused at its last
    /// snapshot (idle without one). A recorded snapshot that is gone is said so, and forgotten:
    /// the next prompt starts from the repository again. Sessions another den runs are left
    /// alone. Returns how many sessions were recovered.
    pub async fn recover(&self) -> Result<usize> {
        let services = self.registry.services();
        let store = &services.store;
        let stale = store.sessions_to_recover(&services.config.runner).await?;
        let mut recovered = 0;
        for record in &stale {
            // Another node may have taken it over already; then it is that node's.
            let fence = match store
                .acquire_lease(
                    record.id,
                    &services.config.runner,
                    self.registry.lease_ttl(),
                )
                .await?
            {
                den_store::LeaseOutcome::Acquired(fence) => fence,
                den_store::LeaseOutcome::Held { .. } => continue,
            };
            let record = store.session(record.id).await?;
            let mut owned = services.clone();
            owned.fence = fence.clone();
            let (live, _) = broadcast::channel(1);
            let mut log = EventLog::new(store.clone(), record.id, live).owned(
                fence.clone(),
                None,
                services.notifier().cloned(),
            );
            if matches!(
                record.status().ok(),
                Some(SessionStatus::Starting | SessionStatus::Running)
            ) {
                crate::actor::ownership::close_abandoned(
                    &owned,
                    &mut log,
                    &record,
                    "den restarted while the turn ran",
                )
                .await?;
                recovered += 1;
            }
            store.release_lease(record.id, &fence).await?;
        }
        Ok(recovered)
    }

    /// Moves snapshots an older den recorded as host paths into the artifact store (a start
    /// step, before [`Self::recover`]); a file that is gone is said so on its session.
    pub async fn migrate_host_path_snapshots(&self) -> Result<SnapshotMigration> {
        crate::snapshot_migration::migrate_host_path_snapshots(self.registry.services()).await
    }

    /// A handle to the owner's session. Another user's session is [`SessionError::NotFound`],
    /// like a missing one. No actor starts until the handle is asked something.
    pub async fn session(&self, owner_id: Uuid, id: Uuid) -> Result<SessionHandle> {
        match self.store().session_of(owner_id, id).await {
            Ok(_) => Ok(SessionHandle::new(id, owner_id, self.registry.clone())),
            Err(StoreError::NotFound) => Err(SessionError::NotFound),
            Err(err) => Err(err.into()),
        }
    }

    /// Deletes the owner's session: its sandbox, snapshots, checkout and records.
    pub async fn delete(&self, owner_id: Uuid, id: Uuid) -> Result<()> {
        self.session(owner_id, id).await?.delete().await
    }

    /// Tells the owner's open session lists that `record` was created or changed.
    pub fn announce(&self, record: &SessionRecord) {
        if let Some(notifier) = self.registry.services().notifier() {
            notifier.list_changed(record.owner_id, record.id);
        }
        if let Ok(session) = record.to_protocol() {
            let change = ListChange {
                owner_id: record.owner_id,
                update: SessionListUpdate::Upsert { session },
            };
            let _ = self.registry.services().list.send(change);
        }
    }

    /// Every change to every user's session list; filter by `owner_id`.
    pub fn list_changes(&self) -> broadcast::Receiver<ListChange> {
        self.registry.services().list.subscribe()
    }

    /// How many session actors run now (sessions with a sandbox, a start or work under way).
    pub fn running_actors(&self) -> usize {
        self.registry.running_actors()
    }

    /// Completes when den starts to stop: a live connection then ends (its client reconnects
    /// to the next den).
    pub fn stopping(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.stopping.clone().cancelled_owned()
    }

    /// Stops every actor: running turns are closed as interrupted (clients still see that),
    /// sandboxes stopped; then every live connection is told to end. No actor starts
    /// afterwards.
    pub async fn shutdown(&self) {
        self.draining.cancel();
        let services = self.registry.services();
        if let Some(pool) = &services.pool {
            pool.shutdown(services.runtime.as_ref()).await;
        }
        let (mailboxes, live) = self.registry.close();
        futures::future::join_all(mailboxes.into_iter().map(|mailbox| async move {
            let (reply, done) = oneshot::channel();
            if mailbox.send(Command::Shutdown { reply }).await.is_ok() {
                let _ = done.await;
            }
        }))
        .await;
        self.end_connections();
        drop(live);
    }

    /// Whether den has started to stop (a load balancer should send nothing new here).
    pub fn is_stopping(&self) -> bool {
        self.draining.is_cancelled() || self.stopping.is_cancelled()
    }

    /// How many booted sandboxes of the warm pool wait for a new session now.
    pub fn warm_sandboxes(&self) -> usize {
        self.registry
            .services()
            .pool
            .as_ref()
            .map_or(0, |pool| pool.waiting())
    }

    /// Tells every live connection to end now (also when [`Self::shutdown`] did not finish
    /// in time).
    pub fn end_connections(&self) {
        self.stopping.cancel();
    }
}
