//! Many den nodes on one database: ownership, forwarding and fan-out between nodes.
//!
//! - Ownership: a session's actor runs on the node holding the session's lease (see
//!   `den_store::leases`); the registry acquires it before starting an actor and every write
//!   of the actor is fenced by its epoch. The node's heartbeat ([`heartbeat_loop`]) renews all
//!   its leases at once and stops any actor whose lease it no longer holds; a node that cannot
//!   renew for most of a TTL stops its actors on its own, before another node may take over.
//! - Commands: a command for a session owned by another live node is forwarded to that node's
//!   internal address by a [`Forwarder`] (den-server's HTTP client); one whose owner died (its
//!   lease expired) is taken over here.
//! - Events and the session list: the event table is the truth. After the owner stores events
//!   it tells the other nodes through a [`Notifier`] (PostgreSQL `NOTIFY` by default; a message
//!   bus could replace it); a node with local subscribers of that session reads the new rows
//!   and feeds them to its subscribers (`fanout`). Subscriptions skip what they already have and
//!   fill gaps from the table, so a lost hint costs latency, never an event.

pub(crate) mod fanout;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use uuid::Uuid;

use crate::error::Result;
use crate::handle::{CommandOutcome, SessionCommand};

pub use fanout::{Hint, Notifier, PgNotifier};

/// How a node reaches another node's copy of a session (den-server implements it over HTTP).
pub trait Forwarder: Send + Sync {
    /// Runs `command` for the session on the node at `internal_url`, which owns it.
    fn forward(
        &self,
        internal_url: String,
        owner_id: Uuid,
        session_id: Uuid,
        command: SessionCommand,
    ) -> BoxFuture<'static, Result<CommandOutcome>>;
}

/// What this node is among the nodes sharing the database.
#[derive(Clone)]
pub struct ClusterConfig {
    /// How long a lease lasts without renewal (other nodes take an expired lease over).
    pub lease_ttl: Duration,
    /// Where other nodes send this node's forwarded commands.
    pub internal_url: String,
    pub forwarder: Option<Arc<dyn Forwarder>>,
    pub notifier: Option<Arc<dyn Notifier>>,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("lease_ttl", &self.lease_ttl)
            .field("internal_url", &self.internal_url)
            .finish_non_exhaustive()
    }
}

/// The default lease: renewed every third of it; another node waits this long after a crash.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(15);

/// The heartbeat: renews the node's registration and every lease it holds each `ttl / 3`,
/// stops the actors whose lease is gone, releases leases no actor uses, and stops every actor
/// once no renewal succeeded for `ttl` minus a margin (another node may take over then).
pub(crate) async fn heartbeat_loop(
    registry: std::sync::Weak<crate::registry::Registry>,
    stop: tokio_util::sync::CancellationToken,
) {
    let Some(ttl) = registry.upgrade().map(|r| r.lease_ttl()) else {
        return;
    };
    let interval = ttl / 3;
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let Some(registry) = registry.upgrade() else {
            return;
        };
        match registry.renew_all().await {
            Ok(()) => last_renewed = tokio::time::Instant::now(),
            Err(err) => {
                tracing::warn!(error = %err, "cannot renew this node's session leases");
                // Self-fencing: stop side effects before another node may hold the lease.
                if last_renewed.elapsed() + interval >= ttl {
                    registry.stop_all_owned("this node could not renew its leases in time");
                }
            }
        }
    }
}
