//! The lease's side of the actor: taking a session over from a node that stopped, keeping the
//! queue in the database, and stopping without another write once the lease is lost.

use den_protocol::events::{SessionEvent, TurnOutcome};
use den_protocol::pause::PauseReason;
use den_protocol::sessions::SessionStatus;
use den_store::{SessionRecord, Store, StoreError};
use uuid::Uuid;

use super::{Services, SessionActor};
use crate::error::{Result, SessionError};
use crate::eventlog::EventLog;

impl SessionActor {
    /// Runs first in a new actor: loads the stored queue, and when the record says a sandbox
    /// was starting or running, closes what the node that ran it left open (its sandbox died
    /// with it or stays fenced out there): the turn in flight ends as interrupted and the
    /// session waits at its last snapshot. A kept queue then starts the session here.
    pub(super) async fn take_over(&mut self) {
        match self.services.store.queue(self.record.id).await {
            Ok(queue) => {
                self.queue = queue.iter().cloned().collect();
                self.queue_shown = !queue.is_empty();
                self.persisted_queue = queue;
            }
            Err(err) => tracing::warn!(error = %err, "cannot read the session's queue"),
        }
        if matches!(
            self.record.status().ok(),
            Some(SessionStatus::Starting | SessionStatus::Running)
        ) {
            tracing::info!("taking the session over from the node that ran it");
            match close_abandoned(
                &self.services,
                &mut self.log,
                &self.record,
                "the den node running the turn stopped",
            )
            .await
            {
                Ok(record) => {
                    self.record = record;
                    self.announce();
                }
                Err(err) => tracing::error!(error = %err, "cannot take the session over"),
            }
        }
        if !self.queue.is_empty() && !self.fenced() {
            self.begin_start();
        }
    }

    /// Whether this actor lost the session's lease (a write was refused, or the heartbeat
    /// found the lease gone).
    pub(super) fn fenced(&self) -> bool {
        self.log.is_fenced()
    }

    /// The lease is gone: another node may own the session now. Stops the sandbox and every
    /// task, answers whoever waits, and writes nothing more.
    pub(super) async fn abandon(&mut self) {
        tracing::warn!("this node lost the session's lease: stopping its actor");
        let gone = || {
            SessionError::NodeUnavailable(
                "the session moved to another den node; try again".to_owned(),
            )
        };
        if let Some(pausing) = self.pausing.take() {
            for waiter in pausing.waiters {
                let _ = waiter.send(Err(gone()));
            }
        }
        if let Some(turn) = self.turn.take() {
            if let Some(sending) = turn.sending {
                sending.abort();
            }
            if let Some(stopping) = turn.stopping {
                stopping.task.abort();
                for waiter in stopping.waiters {
                    let _ = waiter.send(Err(gone()));
                }
            }
        }
        self.stop_sandbox().await;
        self.queue.clear();
        self.settling = None;
        self.pushing = false;
    }

    /// Stores the queue when it changed since it was last stored.
    pub(super) async fn persist_queue(&mut self) {
        if self.queue.iter().eq(self.persisted_queue.iter()) {
            return;
        }
        let items: Vec<_> = self.queue.iter().cloned().collect();
        match self
            .services
            .store
            .replace_queue(self.record.id, &self.services.fence, &items)
            .await
        {
            Ok(()) => self.persisted_queue = items,
            Err(StoreError::Fenced) => self.log.mark_fenced(),
            Err(err) => tracing::warn!(error = %err, "cannot store the session's queue"),
        }
    }
}

/// Closes what a node that stopped left open in `record` (a starting or running session
/// whose sandbox is gone): a turn in flight ends as interrupted (`why`), and the session waits
/// paused at its last snapshot (idle without one; a recorded snapshot that is gone is said so,
/// and forgotten). Every write is fenced by `services.fence`. Returns the new record.
pub(crate) async fn close_abandoned(
    services: &Services,
    log: &mut EventLog,
    record: &SessionRecord,
    why: &str,
) -> Result<SessionRecord> {
    let store = &services.store;
    let fence = &services.fence;
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
            error: Some(why.to_owned()),
        };
        log.append(finished).await?;
    }
    let (status, error) = match &record.snapshot_id {
        Some(snapshot) if !snapshot_exists(services, snapshot).await => {
            store
                .set_session_agent_state_fenced(record.id, fence, None, None)
                .await?;
            let message = crate::snapshot_migration::LOST_SNAPSHOT.to_owned();
            (SessionStatus::Error, Some(message))
        }
        Some(_) => (SessionStatus::Paused, None),
        None => (SessionStatus::Idle, None),
    };
    let pause = (status == SessionStatus::Paused).then_some(PauseReason::DenStopped);
    let updated = store
        .set_session_status_fenced(record.id, fence, status, error.as_deref())
        .await?;
    log.append(SessionEvent::Status {
        status,
        error,
        pause,
    })
    .await?;
    Ok(updated)
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
