//! Where a person's credential for a git host comes from when they stored none for it: the
//! server's source (their GitHub token for GitHub's host, refreshed on demand), plugged in by
//! the binary so this crate knows nothing of GitHub or HTTP.

use std::sync::Arc;

use den_git::HttpAuth;
use futures::future::BoxFuture;
use uuid::Uuid;

/// A source of credentials besides the person's stored ones.
pub trait CredentialSource: Send + Sync {
    /// The credential for `owner` at `host` (lowercase `name[:port]`): `Ok(None)` when this
    /// source has none; `Err` says, for the person, why the one it had no longer works (e.g.
    /// "reconnect GitHub").
    fn credential<'a>(
        &'a self,
        owner: Uuid,
        host: &'a str,
    ) -> BoxFuture<'a, Result<Option<HttpAuth>, String>>;
}

/// A shared [`CredentialSource`] in the session config (`Debug` names it only).
#[derive(Clone)]
pub struct Credentials(pub Arc<dyn CredentialSource>);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(..)")
    }
}
