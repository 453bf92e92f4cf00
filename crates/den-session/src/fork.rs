//! Forks: a new session of the same owner that starts from another session's last snapshot
//! (same files, same OpenCode conversation, which lives in the snapshot), on a branch of its
//! own. The source is only read.

use den_protocol::events::SessionEvent;
use den_protocol::sessions::SessionStatus;
use den_store::{NewSession, SessionRecord, StoreError};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::actor::Services;
use crate::error::{Result, SessionError};
use crate::eventlog::EventLog;
use crate::manager::SessionManager;
use crate::workspace;

/// How often a fork reads the source's record again when its snapshot was replaced (and the
/// old one deleted) while being copied.
const COPY_ATTEMPTS: usize = 3;

/// What the new session is called and where it works.
pub struct ForkTarget<'a> {
    pub id: Uuid,
    pub title: &'a str,
    pub work_branch: &'a str,
}

impl SessionManager {
    /// Makes `target` a fork of the owner's session `source_id`: a copy of its last snapshot
    /// and of its host checkout (switched to the fork's own branch), its events up to its last
    /// finished turn, and the same OpenCode conversation. The fork is `paused`: its first
    /// prompt restores the snapshot and continues that conversation.
    ///
    /// Another user's session is [`SessionError::NotFound`]; a source without a snapshot yet
    /// (no turn has finished) is a [`SessionError::Conflict`]: there is nothing to fork.
    pub async fn fork(
        &self,
        owner_id: Uuid,
        source_id: Uuid,
        target: ForkTarget<'_>,
    ) -> Result<SessionRecord> {
        let services = self.services();
        // A snapshot being written (the one after the last turn) is waited for, so the fork
        // starts from the newest finished turn.
        self.session(owner_id, source_id)
            .await?
            .snapshot_settled()
            .await?;
        let source = match services.store.session_of(owner_id, source_id).await {
            Ok(record) => record,
            Err(StoreError::NotFound) => return Err(SessionError::NotFound),
            Err(err) => return Err(err.into()),
        };
        if source.snapshot_id.is_none() {
            return Err(no_snapshot());
        }
        let record = services
            .store
            .create_session(NewSession {
                id: target.id,
                owner_id,
                title: target.title,
                repository: &source.repository,
                base_branch: source.base_branch.as_deref(),
                work_branch: target.work_branch,
                model: &source.model,
            })
            .await?;
        match fill(services, source, &record).await {
            Ok(record) => {
                self.announce(&record);
                Ok(record)
            }
            Err(err) => {
                // Nothing half made stays behind: the record (and its events), files, artifact.
                let _ = services.store.delete_session(owner_id, record.id).await;
                let _ = tokio::fs::remove_dir_all(workspace::snapshots_dir(
                    &services.config,
                    record.id,
                ))
                .await;
                if let Some(session_dir) =
                    workspace::checkout_dir(&services.config, record.id).parent()
                {
                    let _ = tokio::fs::remove_dir_all(session_dir).await;
                }
                Err(err)
            }
        }
    }
}

fn no_snapshot() -> SessionError {
    SessionError::Conflict(
        "the session has no snapshot yet: fork it once a turn has finished".to_owned(),
    )
}

/// Gives the new record its source's snapshot, checkout, conversation and history.
async fn fill(
    services: &Services,
    mut source: SessionRecord,
    fork: &SessionRecord,
) -> Result<SessionRecord> {
    let config = &services.config;
    let dir = workspace::snapshots_dir(config, fork.id);
    tokio::fs::create_dir_all(&dir).await?;
    let key = format!("{}-{}", fork.id, Uuid::now_v7());
    let partial = dir.join(format!("{key}.partial"));
    // The record holds the snapshot's key and the conversation it holds, written together;
    // the source may replace its snapshot (deleting the old one) at any moment, so a copy that
    // finds its file gone reads the record again.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let recorded = source.snapshot_id.clone().ok_or_else(no_snapshot)?;
        let copied = match snapshot_file(services, &recorded).await {
            Ok(file) => tokio::fs::copy(file.path(), &partial)
                .await
                .map_err(SessionError::from),
            Err(err) => Err(err),
        };
        match copied {
            Ok(_) => break,
            Err(err) if attempt < COPY_ATTEMPTS => {
                tracing::debug!(error = %err, "the source's snapshot moved; reading it again");
                source = services.store.session(source.id).await?;
            }
            Err(err) => return Err(err),
        }
    }
    if let Err(err) = services.artifacts.put(&key, &partial).await {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(err.into());
    }
    // The diff saved after the source's last turn, for the fork's changes view before it runs.
    let saved_diff = crate::changes::saved_path(&workspace::snapshots_dir(config, source.id));
    let _ = tokio::fs::copy(&saved_diff, crate::changes::saved_path(&dir)).await;
    // The same base commit as the source's: its checkout (den's, never written by a sandbox)
    // copied, then switched to the fork's branch. A source whose checkout is not on this
    // machine leaves the fork to clone its base at its first start.
    let source_checkout = workspace::checkout_dir(config, source.id);
    if source_checkout.join(".git").exists() {
        workspace::copy_checkout(config, &source_checkout, fork).await?;
    }
    services
        .store
        .set_session_agent_state(fork.id, source.agent_session_id.as_deref(), Some(&key))
        .await?;
    // The history up to the source's last finished turn: the conversation the snapshot holds.
    let up_to = services.store.last_finished_turn_seq(source.id).await?;
    services
        .store
        .copy_events(source.id, fork.id, up_to)
        .await?;
    let record = services
        .store
        .set_session_status(fork.id, SessionStatus::Paused, None)
        .await?;
    // No actor runs for the fork yet; its live side starts with its first command and replays
    // from the store, so this event needs no live listener.
    let (live, _) = broadcast::channel(1);
    let mut log = EventLog::new(services.store.clone(), fork.id, live);
    // The copied history names the source (its renames, OpenCode's title): the fork's own
    // title comes last, so every client shows it.
    log.append(SessionEvent::Renamed {
        title: record.title.clone(),
    })
    .await?;
    log.append(SessionEvent::Status {
        status: SessionStatus::Paused,
        error: None,
        pause: None,
    })
    .await?;
    Ok(record)
}

/// A local file holding the recorded snapshot (an artifact key: host paths recorded by older
/// dens were moved into the artifact store at start).
async fn snapshot_file(
    services: &Services,
    recorded: &str,
) -> Result<den_sandbox::FetchedArtifact> {
    Ok(services.artifacts.fetch(recorded).await?)
}
