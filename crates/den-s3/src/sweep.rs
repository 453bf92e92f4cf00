//! The orphan sweeper: objects under the prefix that no session record points at.
//!
//! Orphans come from a node that died between upload and record, a staging upload whose copy
//! or delete failed, a node fenced out of its session after it uploaded, or a previous snapshot
//! whose delete failed. The grace period protects an upload that is about to be recorded.

use std::collections::HashSet;
use std::time::Duration;

use den_sandbox::SandboxError;
use futures::StreamExt;
use object_store::ObjectStoreExt;

use crate::S3ArtifactStore;

/// What a sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Object names deleted.
    pub deleted: Vec<String>,
    /// Objects a session record points at.
    pub referenced: usize,
    /// Unreferenced objects younger than the grace period, left for a later sweep.
    pub too_young: usize,
    /// Objects that could not be deleted (logged; tried again next time).
    pub failed: usize,
}

impl S3ArtifactStore {
    /// Deletes every object under the prefix that is older than `grace` and whose artifact key
    /// is not in the set `referenced` returns. The objects are listed first and the records
    /// read after, so a snapshot recorded during the listing counts as referenced.
    pub async fn sweep_orphans<F, Fut, E>(
        &self,
        grace: Duration,
        referenced: F,
    ) -> Result<SweepReport, SandboxError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<HashSet<String>, E>>,
        E: std::fmt::Display,
    {
        let mut objects = Vec::new();
        let mut listing = self.store.list(Some(&self.prefix));
        while let Some(meta) = listing.next().await {
            objects.push(meta.map_err(|err| self.storage_error("list the snapshots", &err))?);
        }
        let referenced = referenced().await.map_err(|err| {
            SandboxError::ArtifactStorage(format!("read the recorded snapshots: {err}"))
        })?;
        let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let cutoff = chrono::Utc::now()
            .checked_sub_signed(grace)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        let mut report = SweepReport::default();
        for meta in objects {
            if self
                .key_of(&meta.location)
                .is_some_and(|key| referenced.contains(&key))
            {
                report.referenced += 1;
                continue;
            }
            if meta.last_modified > cutoff {
                report.too_young += 1;
                continue;
            }
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                    report.deleted.push(meta.location.to_string());
                }
                Err(err) => {
                    tracing::warn!(object = %meta.location, error = %self.redactor.scrub(&err.to_string()), "cannot delete an orphaned snapshot");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }
}
