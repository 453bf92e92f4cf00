//! The registry of session actors, restart recovery, and the live session lists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use den_protocol::events::{SessionEvent, SessionListUpdate, TurnOutcome};
use den_protocol::sessions::SessionStatus;
use den_sandbox::SandboxRuntime;
use den_store::{SessionRecord, Store, StoreError};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::actor::{self, Services};
use crate::config::SessionConfig;
use crate::error::{Result, SessionError};
use crate::eventlog::EventLog;
use crate::handle::SessionHandle;

/// A change to one user's session list.
#[derive(Debug, Clone)]
pub struct ListChange {
    pub owner_id: Uuid,
    pub update: SessionListUpdate,
}

/// Finds or starts session actors. Cheap to clone.
#[derive(Clone)]
pub struct SessionManager {
    inner: Arc<Inner>,
}

struct Inner {
    services: Services,
    // A std mutex: held only to look up or insert a handle, never across an await.
    actors: Mutex<HashMap<Uuid, SessionHandle>>,
}

impl SessionManager {
    pub fn new(store: Store, runtime: Arc<dyn SandboxRuntime>, config: SessionConfig) -> Self {
        let (list, _) = broadcast::channel(1024);
        let services = Services {
            store,
            runtime,
            config: Arc::new(config),
            list,
        };
        Self {
            inner: Arc::new(Inner {
                services,
                actors: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.services.store
    }

    pub fn config(&self) -> &SessionConfig {
        &self.inner.services.config
    }

    /// After a restart: sessions that were starting or running lost their sandbox with the
    /// previous den (sandboxes die with their parent), so a turn in flight is closed as
    /// interrupted and the session is left paused at its last snapshot (idle without one).
    /// Returns how many sessions were recovered.
    pub async fn recover(&self) -> Result<usize> {
        let store = &self.inner.services.store;
        let stale = store
            .sessions_with_status(&[SessionStatus::Starting, SessionStatus::Running])
            .await?;
        for record in &stale {
            let (live, _) = broadcast::channel(1);
            let mut log = EventLog::open(store.clone(), record.id, live).await?;
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
            let status = if record.snapshot_id.is_some() {
                SessionStatus::Paused
            } else {
                SessionStatus::Idle
            };
            store.set_session_status(record.id, status, None).await?;
            log.append(SessionEvent::Status {
                status,
                error: None,
            })
            .await?;
        }
        Ok(stale.len())
    }

    /// The actor of the owner's session, started if it is not running. Another user's session
    /// is [`SessionError::NotFound`], like a missing one.
    pub async fn session(&self, owner_id: Uuid, id: Uuid) -> Result<SessionHandle> {
        let record = match self.inner.services.store.session_of(owner_id, id).await {
            Ok(record) => record,
            Err(StoreError::NotFound) => return Err(SessionError::NotFound),
            Err(err) => return Err(err.into()),
        };
        Ok(self.actor_for(record))
    }

    fn actor_for(&self, record: SessionRecord) -> SessionHandle {
        let mut actors = self
            .inner
            .actors
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(handle) = actors.get(&record.id).filter(|handle| !handle.is_closed()) {
            return handle.clone();
        }
        let handle = actor::spawn(self.inner.services.clone(), record);
        actors.insert(handle.id(), handle.clone());
        handle
    }

    /// Deletes the owner's session: its sandbox, snapshots, checkout and records.
    pub async fn delete(&self, owner_id: Uuid, id: Uuid) -> Result<()> {
        let handle = self.session(owner_id, id).await?;
        handle.delete().await?;
        self.inner
            .actors
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(&id);
        Ok(())
    }

    /// Tells the owner's open session lists that `record` was created or changed.
    pub fn announce(&self, record: &SessionRecord) {
        if let Ok(session) = record.to_protocol() {
            let change = ListChange {
                owner_id: record.owner_id,
                update: SessionListUpdate::Upsert { session },
            };
            let _ = self.inner.services.list.send(change);
        }
    }

    /// Every change to every user's session list; filter by `owner_id`.
    pub fn list_changes(&self) -> broadcast::Receiver<ListChange> {
        self.inner.services.list.subscribe()
    }

    /// Stops every actor: running turns are closed as interrupted, sandboxes stopped.
    pub async fn shutdown(&self) {
        let handles: Vec<SessionHandle> = self
            .inner
            .actors
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .drain()
            .map(|(_, h)| h)
            .collect();
        futures::future::join_all(handles.iter().map(SessionHandle::shutdown)).await;
    }
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
