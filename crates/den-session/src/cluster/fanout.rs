//! Live events and session lists across nodes: hints between nodes, and the relay that turns a
//! hint into rows read from the event table for this node's subscribers.
//!
//! Why hints and not relaying the owner's live stream: the table stays the only truth, an owner
//! change needs nothing special (any node's new rows are hinted the same way), and a subscriber
//! on a surviving node keeps its connection across a failover. The cost is one notifying commit
//! plus one read per hint; the notifier sends at once (no fixed batching interval) and folds
//! whatever piles up while a `NOTIFY` is in flight into the next one, so its latency stays one
//! round trip under load and its commit rate stays bounded.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use den_store::Store;
use den_store::notify::{MAX_PAYLOAD, Notice};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The `NOTIFY` channel den nodes talk on.
pub(crate) const CHANNEL: &str = "den_cluster";
/// How often a relaying node reads the table even without a hint (a hint lost while the
/// listener reconnected, or while a subscriber was still replaying, is found this way).
pub(crate) const SAFETY_POLL: Duration = Duration::from_secs(1);

/// What another node says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// The session's events up to `seq` are stored.
    Events { session: Uuid, seq: i64 },
    /// A session of `owner` was created, changed or deleted.
    List { owner: Uuid, session: Uuid },
    /// Hints may have been lost: read everything again.
    Resync,
}

/// Tells other nodes what this node stored, and hands out what they told it. PostgreSQL's
/// `NOTIFY` is [`PgNotifier`]; a message bus (NATS) could implement the same.
pub trait Notifier: Send + Sync {
    /// Called after events of `session` up to `seq` are committed.
    fn events_stored(&self, session: Uuid, seq: i64);
    /// Called after a session of `owner` was created, changed or deleted.
    fn list_changed(&self, owner: Uuid, session: Uuid);
    /// Hints from other nodes.
    fn hints(&self) -> broadcast::Receiver<Hint>;
}

/// [`Notifier`] over PostgreSQL `NOTIFY`/`LISTEN`: one dedicated listening connection per node,
/// hints sent as soon as they come, folded together while a send is in flight.
pub struct PgNotifier {
    node: String,
    outbox: mpsc::UnboundedSender<Outgoing>,
    hints: broadcast::Sender<Hint>,
}

enum Outgoing {
    Events(Uuid, i64),
    List(Uuid, Uuid),
}

impl PgNotifier {
    /// Starts listening and sending for `node`; `None` on SQLite (one node: nobody to tell).
    /// Its tasks end with `stop`.
    pub async fn start(
        store: Store,
        node: &str,
        stop: CancellationToken,
    ) -> den_store::Result<Option<Arc<Self>>> {
        let Some(listener) = store
            .listen(CHANNEL, &format!("den-listener {node}"))
            .await?
        else {
            return Ok(None);
        };
        let (outbox, outgoing) = mpsc::unbounded_channel();
        let (hints, _) = broadcast::channel(4096);
        tokio::spawn(listen(
            listener,
            node.to_owned(),
            hints.clone(),
            stop.clone(),
        ));
        tokio::spawn(send(store, node.to_owned(), outgoing, stop));
        Ok(Some(Arc::new(Self {
            node: node.to_owned(),
            outbox,
            hints,
        })))
    }

    pub fn node(&self) -> &str {
        &self.node
    }
}

impl Notifier for PgNotifier {
    fn events_stored(&self, session: Uuid, seq: i64) {
        let _ = self.outbox.send(Outgoing::Events(session, seq));
    }

    fn list_changed(&self, owner: Uuid, session: Uuid) {
        let _ = self.outbox.send(Outgoing::List(owner, session));
    }

    fn hints(&self) -> broadcast::Receiver<Hint> {
        self.hints.subscribe()
    }
}

/// Sends what is waiting as one or more `NOTIFY`s, then whatever came meanwhile, and so on.
async fn send(
    store: Store,
    node: String,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    stop: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => return,
            first = outgoing.recv() => match first {
                Some(first) => first,
                None => return,
            },
        };
        // Fold: the highest stored seq per session, each list change once.
        let mut events = BTreeMap::new();
        let mut lists = Vec::new();
        let mut add = |item: Outgoing| match item {
            Outgoing::Events(session, seq) => {
                let max = events.entry(session).or_insert(seq);
                *max = (*max).max(seq);
            }
            Outgoing::List(owner, session) => {
                if !lists.contains(&(owner, session)) {
                    lists.push((owner, session));
                }
            }
        };
        add(first);
        while let Ok(item) = outgoing.try_recv() {
            add(item);
        }
        let lines = events
            .into_iter()
            .map(|(session, seq)| format!("e {node} {session} {seq}"))
            .chain(
                lists
                    .into_iter()
                    .map(|(owner, session)| format!("l {node} {owner} {session}")),
            );
        for payload in payloads(lines) {
            if let Err(err) = store.notify(CHANNEL, &payload).await {
                // Subscribers elsewhere find these rows by their safety poll.
                tracing::warn!(error = %err, "cannot notify the other nodes");
            }
        }
    }
}

/// Joins lines into payloads under PostgreSQL's size limit.
fn payloads(lines: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        match out.last_mut() {
            Some(last) if last.len() + 1 + line.len() <= MAX_PAYLOAD => {
                last.push('\n');
                last.push_str(&line);
            }
            _ => out.push(line),
        }
    }
    out
}

async fn listen(
    mut listener: den_store::notify::StoreListener,
    node: String,
    hints: broadcast::Sender<Hint>,
    stop: CancellationToken,
) {
    loop {
        let notice = tokio::select! {
            () = stop.cancelled() => return,
            notice = listener.next(Duration::from_millis(500)) => notice,
        };
        match notice {
            Notice::Reconnected => {
                tracing::info!("the database listener reconnected; reading what may be missed");
                let _ = hints.send(Hint::Resync);
            }
            Notice::Payload(payload) => {
                for hint in parse(&payload, &node) {
                    let _ = hints.send(hint);
                }
            }
        }
    }
}

/// The hints in a payload, leaving out this node's own.
fn parse(payload: &str, me: &str) -> Vec<Hint> {
    payload
        .lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let (kind, node, a, b) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            if node == me {
                return None;
            }
            match kind {
                "e" => Some(Hint::Events {
                    session: a.parse().ok()?,
                    seq: b.parse().ok()?,
                }),
                "l" => Some(Hint::List {
                    owner: a.parse().ok()?,
                    session: b.parse().ok()?,
                }),
                _ => None,
            }
        })
        .collect()
}

/// Feeds this node's subscribers from the table on every hint, on a resync and by a safety
/// poll, until `stop`.
pub(crate) async fn relay_loop(
    registry: std::sync::Weak<crate::registry::Registry>,
    mut hints: broadcast::Receiver<Hint>,
    stop: CancellationToken,
) {
    let mut poll = tokio::time::interval(SAFETY_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let hint = tokio::select! {
            () = stop.cancelled() => return,
            _ = poll.tick() => Hint::Resync,
            hint = hints.recv() => match hint {
                Ok(hint) => hint,
                Err(broadcast::error::RecvError::Lagged(_)) => Hint::Resync,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        let Some(registry) = registry.upgrade() else {
            return;
        };
        match hint {
            Hint::Events { session, .. } => registry.relay(session).await,
            Hint::List { owner, session } => registry.relay_list(owner, session).await,
            Hint::Resync => registry.relay_all().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_stay_under_the_limit_and_a_node_ignores_its_own_hints() {
        let session = Uuid::now_v7();
        let lines = (0..500).map(|n| format!("e a {session} {n}"));
        let payloads = payloads(lines);
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
        let hints: Vec<Hint> = payloads.iter().flat_map(|p| parse(p, "b")).collect();
        assert_eq!(hints.len(), 500);
        assert_eq!(hints[499], Hint::Events { session, seq: 499 });
        assert!(payloads.iter().all(|p| parse(p, "a").is_empty()));
        assert!(parse("x y z\ne a not-a-uuid 1", "b").is_empty());
    }
}
