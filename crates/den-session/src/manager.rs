//! The registry of session actors, restart recovery, and the live session lists.

use std::sync::Arc;

use den_protocol::events::{SessionEvent, SessionListUpdate, TurnOutcome};
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
        let services = Services {
            store,
            runtime,
            artifacts,
            config,
            list,
            pool,
        };
        Self {
            registry: Arc::new(Registry::new(services)),
            stopping: CancellationToken::new(),
        }
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
        for record in &stale {
            let (live, _) = broadcast::channel(1);
            let mut log = EventLog::new(store.clone(), record.id, live);
            if let Some(turn_id) = unfinished_turn(store, record.id).await? {
                let finished = SessionEvent::TurnFinished {
                    turn_id,
                    outcome: TurnOutcome::Interrupted,
                    tokens: Default::default(),
                    cost: 0.0,
                    error: Some("den restarted while the turn ran".to_owned()),
                };
                log.append(finished).await?;
            }
            let (status, error) = match &record.snapshot_id {
                Some(snapshot) if !snapshot_exists(services, snapshot).await => {
                    store.set_session_agent_state(record.id, None, None).await?;
                    let message = "the session's last snapshot is missing; the next prompt \
                                   starts again from the repository"
                        .to_owned();
                    (SessionStatus::Error, Some(message))
                }
                Some(_) => (SessionStatus::Paused, None),
                None => (SessionStatus::Idle, None),
            };
            store
                .set_session_status(record.id, status, error.as_deref())
                .await?;
            log.append(SessionEvent::Status { status, error }).await?;
        }
        Ok(stale.len())
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

/// Whether a recorded snapshot can still be restored.
async fn snapshot_exists(services: &Services, recorded: &str) -> bool {
    if crate::workspace::is_legacy_snapshot_path(recorded) {
        return tokio::fs::metadata(recorded).await.is_ok();
    }
    services.artifacts.fetch(recorded).await.is_ok()
}

/// The id of the last turn that started and did not finish, if any.
async fn unfinished_turn(store: &Store, session_id: Uuid) -> Result<Option<String>> {
    let mut open: Option<String> = None;
    let mut after = 0;
    loop {
        let page = store.events_after(session_id, after, 1000).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.seq;
        for stored in page {
            match stored.kind.as_str() {
                "turn_started" => {
                    open = stored
                        .payload
                        .0
                        .get("turnId")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned)
                }
                "turn_finished" => open = None,
                _ => {}
            }
        }
    }
    Ok(open)
}
