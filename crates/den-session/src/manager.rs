//! The registry of session actors, restart recovery, and the live session lists.

use std::sync::Arc;

use den_protocol::events::{SessionEvent, SessionListUpdate, TurnOutcome};
use den_protocol::pause::PauseReason;
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
        let services = Services {
            store,
            runtime,
            artifacts,
            config: Arc::new(config),
            list,
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
            let (unfinished, pending_asks) = unfinished_work(store, record.id).await?;
            // Nobody can answer what the lost turn asked: each is closed as expired.
            for ask_id in pending_asks {
                let closed = SessionEvent::AskClosed(den_protocol::asks::AskClosed {
                    ask_id,
                    outcome: den_protocol::asks::AskOutcome::Expired,
                    by: None,
                    message: None,
                    answers: None,
                });
                log.append(closed).await?;
            }
            if let Some(turn_id) = unfinished {
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
                    let message = crate::snapshot_migration::LOST_SNAPSHOT.to_owned();
                    (SessionStatus::Error, Some(message))
                }
                Some(_) => (SessionStatus::Paused, None),
                None => (SessionStatus::Idle, None),
            };
            let pause = (status == SessionStatus::Paused).then_some(PauseReason::DenStopped);
            store
                .set_session_status(record.id, status, error.as_deref())
                .await?;
            log.append(SessionEvent::Status {
                status,
                error,
                pause,
            })
            .await?;
        }
        Ok(stale.len())
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

    /// Tells every live connection to end now (also when [`Self::shutdown`] did not finish
    /// in time).
    pub fn end_connections(&self) {
        self.stopping.cancel();
    }
}

/// Whether a recorded snapshot can still be restored.
async fn snapshot_exists(services: &Services, recorded: &str) -> bool {
    services
        .artifacts
        .exists(recorded)
        .await
        .unwrap_or_else(|err| {
            // Unknown is not missing: the record is kept and the restore will say what failed.
            tracing::warn!(error = %err, "cannot check the session's last snapshot");
            true
        })
}

/// The id of the last turn that started and did not finish, if any, and the asks still
/// waiting for an answer.
async fn unfinished_work(store: &Store, session_id: Uuid) -> Result<(Option<String>, Vec<String>)> {
    let mut open: Option<String> = None;
    let mut asks: Vec<String> = Vec::new();
    let ask_id = |payload: &serde_json::Value| {
        payload
            .get("askId")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
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
                "permission_asked" | "question_asked" => asks.extend(ask_id(&stored.payload.0)),
                "ask_closed" => {
                    let closed = ask_id(&stored.payload.0);
                    asks.retain(|id| Some(id) != closed.as_ref());
                }
                _ => {}
            }
        }
    }
    Ok((open, asks))
}
