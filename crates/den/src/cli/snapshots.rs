//! Where snapshots go: the data dir, or S3-compatible object storage (`snapshots.url`), and the
//! orphan sweeper that runs beside object storage.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use den_s3::{S3ArtifactStore, S3Settings};
use den_sandbox::{ArtifactStore, LocalArtifactStore};
use den_store::Store;

use crate::config::Settings;

/// The artifact store the settings choose, and the object storage one when that is it (for
/// the sweeper).
pub(crate) struct ChosenStore {
    pub(crate) artifacts: Arc<dyn ArtifactStore>,
    pub(crate) objects: Option<Arc<S3ArtifactStore>>,
}

pub(crate) fn artifact_store(
    settings: &Settings,
    snapshots_dir: &std::path::Path,
) -> anyhow::Result<ChosenStore> {
    let Some(url) = &settings.snapshots.url else {
        return Ok(ChosenStore {
            artifacts: Arc::new(LocalArtifactStore::new(snapshots_dir)),
            objects: None,
        });
    };
    let mut s3 = S3Settings::new(url, settings.data_dir.join("snapshot-downloads"));
    // As AWS SDKs do: AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY…
    s3.options = std::env::vars()
        .filter(|(key, _)| key.starts_with("AWS_"))
        .collect();
    s3.part_size = settings.snapshots.part_size_mb.saturating_mul(1024 * 1024);
    let store = Arc::new(S3ArtifactStore::new(s3).context("snapshots.url")?);
    // Downloads left by a den that stopped mid-restore.
    let _ = std::fs::remove_dir_all(settings.data_dir.join("snapshot-downloads"));
    tracing::info!(
        location = store.location(),
        "snapshots are kept in object storage"
    );
    Ok(ChosenStore {
        artifacts: store.clone(),
        objects: Some(store),
    })
}

/// Sweeps orphaned objects now and then every `snapshots.sweep_interval_minutes`, until the
/// returned task is aborted.
pub(crate) fn spawn_sweeper(
    settings: &Settings,
    objects: Arc<S3ArtifactStore>,
    store: Store,
) -> tokio::task::JoinHandle<()> {
    let grace = Duration::from_secs(settings.snapshots.orphan_grace_minutes * 60);
    let interval = Duration::from_secs(settings.snapshots.sweep_interval_minutes.max(1) * 60);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        loop {
            ticks.tick().await;
            let referenced = || async {
                store
                    .recorded_snapshot_ids()
                    .await
                    .map(|ids| ids.into_iter().collect::<HashSet<_>>())
            };
            match objects.sweep_orphans(grace, referenced).await {
                Ok(report) => tracing::info!(
                    deleted = report.deleted.len(),
                    referenced = report.referenced,
                    too_young = report.too_young,
                    failed = report.failed,
                    "swept orphaned snapshots"
                ),
                Err(err) => tracing::warn!(error = %err, "cannot sweep orphaned snapshots"),
            }
        }
    })
}
