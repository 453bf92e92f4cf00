//! A start step for snapshots den recorded before they went through the artifact store: the
//! sessions table then held a host path, now it holds an artifact key. Each such file moves into
//! the artifact store under a key, and the key replaces the path; a file that is gone is said
//! so on the session (like a snapshot lost since the last run) and forgotten, never a reason
//! for den not to start. After this step nothing reads a recorded snapshot as a path.

use std::path::Path;

use den_protocol::events::SessionEvent;
use den_protocol::sessions::SessionStatus;
use den_store::SessionRecord;
use tokio::sync::broadcast;

use crate::actor::Services;
use crate::error::Result;
use crate::eventlog::EventLog;

/// What the start step did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SnapshotMigration {
    /// Sessions whose snapshot now lives in the artifact store.
    pub moved: usize,
    /// Sessions whose recorded file was gone (or could not be moved); each says so itself.
    pub lost: usize,
}

/// The reason a session shows when its old snapshot could not be kept.
pub(crate) const LOST_SNAPSHOT: &str =
    "the session's last snapshot is missing; the next prompt starts again from the repository";

pub(crate) async fn migrate_host_path_snapshots(services: &Services) -> Result<SnapshotMigration> {
    let store = &services.store;
    let mut report = SnapshotMigration::default();
    for record in store.sessions_with_host_path_snapshots().await? {
        let Some(path) = record.snapshot_id.as_deref() else {
            continue;
        };
        let key = format!("{}-{}", record.id, uuid::Uuid::now_v7());
        let moved = match tokio::fs::metadata(path).await {
            Ok(meta) if meta.is_file() => services
                .artifacts
                .put(&key, Path::new(path))
                .await
                .map_err(|err| err.to_string()),
            Ok(_) => Err("not a file".to_owned()),
            Err(err) => Err(err.to_string()),
        };
        match moved {
            Ok(_) => {
                store
                    .set_session_agent_state(
                        record.id,
                        record.agent_session_id.as_deref(),
                        Some(&key),
                    )
                    .await?;
                report.moved += 1;
            }
            Err(reason) => {
                tracing::warn!(session = %record.id, path, %reason,
                    "a snapshot recorded by an older den cannot be moved into the artifact store");
                forget_lost_snapshot(services, &record).await?;
                report.lost += 1;
            }
        }
    }
    Ok(report)
}

/// The conversation lived in the snapshot, so both are forgotten; the session says why.
async fn forget_lost_snapshot(services: &Services, record: &SessionRecord) -> Result<()> {
    let store = &services.store;
    store.set_session_agent_state(record.id, None, None).await?;
    let status = SessionStatus::Error;
    let error = Some(LOST_SNAPSHOT.to_owned());
    store
        .set_session_status(record.id, status, error.as_deref())
        .await?;
    let (live, _) = broadcast::channel(1);
    EventLog::new(store.clone(), record.id, live)
        .append(SessionEvent::Status {
            status,
            error,
            pause: None,
        })
        .await?;
    Ok(())
}
