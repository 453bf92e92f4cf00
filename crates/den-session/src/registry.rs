//! Which sessions have an actor right now, and the live side of each session's event log.
//!
//! An actor exists only while its session has something to do (a sandbox, a start, a turn, a
//! queue); a dormant session is just its record, and the next command starts a fresh actor
//! from it. The live broadcast of a session outlives its actors while anyone subscribes, so a
//! subscriber keeps receiving across actor incarnations.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use den_protocol::events::SessionListUpdate;
use den_store::{Fence, LeaseOutcome, SessionRecord, StoreError};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::actor::{self, Services};
use crate::error::{Result, SessionError};
use crate::eventlog::{LIVE_BUFFER, LiveSender};
use crate::handle::Command;

/// Takes a std mutex whoever held it before: a panic while holding one of these (plain maps
/// updated in single statements) cannot leave it half-written, so the data is still good.
/// The one way den-session treats a poisoned lock.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct Registry {
    services: Services,
    // A std mutex: held only to look up or change an entry, never across an await.
    entries: Mutex<Entries>,
    /// Held while a lease is acquired and its actor started, and while the heartbeat releases
    /// leases no actor uses: one node never races itself for a lease.
    acquiring: tokio::sync::Mutex<()>,
}

/// "No subscriber has caught up yet": the relay has no position to read from.
pub(crate) const NO_FLOOR: i64 = i64::MAX;

#[derive(Default)]
struct Entries {
    sessions: HashMap<Uuid, Entry>,
    /// den is stopping: no new actor starts.
    closed: bool,
}

struct Entry {
    /// The running actor's mailbox, if one runs.
    commands: Option<mpsc::Sender<Command>>,
    live: LiveSender,
    /// The lease the running actor holds.
    fence: Option<Fence>,
    /// Cancelled when the running actor's lease is lost: it stops without another write.
    lost: CancellationToken,
    /// The last event every subscriber here has (or will read itself): what the relay reads
    /// after when another node writes the session ([`NO_FLOOR`] until a subscriber caught up).
    floor: Arc<AtomicI64>,
}

impl Entry {
    fn new() -> Self {
        Self {
            commands: None,
            live: broadcast::channel(LIVE_BUFFER).0,
            fence: None,
            lost: CancellationToken::new(),
            floor: Arc::new(AtomicI64::new(NO_FLOOR)),
        }
    }

    fn running(&self) -> bool {
        self.commands.as_ref().is_some_and(|c| !c.is_closed())
    }
}

impl Registry {
    pub(crate) fn new(services: Services) -> Self {
        Self {
            services,
            entries: Mutex::new(Entries::default()),
            acquiring: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn services(&self) -> &Services {
        &self.services
    }

    /// The mailbox of the session's actor, starting one from the stored record if none runs.
    pub(crate) async fn mailbox(
        self: &std::sync::Arc<Self>,
        owner_id: Uuid,
        id: Uuid,
    ) -> Result<mpsc::Sender<Command>> {
        if let Some(commands) = self.running(id)? {
            return Ok(commands);
        }
        match self.services.store.session_of(owner_id, id).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => return Err(SessionError::NotFound),
            Err(err) => return Err(err.into()),
        }
        self.acquire_and_start(id).await
    }

    /// This node's name among the nodes sharing the database.
    pub(crate) fn node(&self) -> &str {
        &self.services.config.runner
    }

    pub(crate) fn lease_ttl(&self) -> std::time::Duration {
        self.services
            .cluster()
            .map_or(crate::cluster::DEFAULT_LEASE_TTL, |c| c.lease_ttl)
    }

    /// Takes the session's lease and starts its actor here; [`SessionError::OwnedElsewhere`]
    /// when another node holds an unexpired lease. A lease that expired (its node died or was
    /// cut off) is taken over: the new actor closes what the old one left open.
    async fn acquire_and_start(self: &Arc<Self>, id: Uuid) -> Result<mpsc::Sender<Command>> {
        let _one_at_a_time = self.acquiring.lock().await;
        if let Some(commands) = self.running(id)? {
            return Ok(commands);
        }
        let store = &self.services.store;
        match store
            .acquire_lease(id, self.node(), self.lease_ttl())
            .await?
        {
            LeaseOutcome::Acquired(fence) => {
                // Read after acquiring: the previous owner can write nothing any more.
                let record = match store.session(id).await {
                    Ok(record) => record,
                    Err(StoreError::NotFound) => return Err(SessionError::NotFound),
                    Err(err) => return Err(err.into()),
                };
                self.start(record, fence)
            }
            LeaseOutcome::Held {
                owner,
                internal_url,
            } => Err(SessionError::OwnedElsewhere {
                node: owner,
                internal_url,
            }),
        }
    }

    fn running(&self, id: Uuid) -> Result<Option<mpsc::Sender<Command>>> {
        let entries = lock(&self.entries);
        if entries.closed {
            return Err(SessionError::ActorGone);
        }
        Ok(entries
            .sessions
            .get(&id)
            .and_then(|entry| entry.commands.clone())
            .filter(|commands| !commands.is_closed()))
    }

    /// Starts a successor for an actor that exited with commands still in its mailbox.
    pub(crate) async fn restart(
        self: &Arc<Self>,
        record: SessionRecord,
    ) -> Result<mpsc::Sender<Command>> {
        self.acquire_and_start(record.id).await
    }

    /// Starts the actor of `record` under `fence` (the caller holds `acquiring`).
    fn start(
        self: &Arc<Self>,
        record: SessionRecord,
        fence: Fence,
    ) -> Result<mpsc::Sender<Command>> {
        let mut entries = lock(&self.entries);
        if entries.closed {
            return Err(SessionError::ActorGone);
        }
        let entry = entries.sessions.entry(record.id).or_insert_with(Entry::new);
        if let Some(commands) = entry.commands.as_ref().filter(|c| !c.is_closed()) {
            return Ok(commands.clone());
        }
        entry.lost = CancellationToken::new();
        let mut services = self.services.clone();
        services.fence = fence.clone();
        let commands = actor::spawn(
            services,
            Arc::downgrade(self),
            record,
            actor::Wiring {
                live: entry.live.clone(),
                floor: entry.floor.clone(),
                lost: entry.lost.clone(),
            },
        );
        entry.fence = Some(fence);
        entry.commands = Some(commands.clone());
        Ok(commands)
    }

    /// How many actors run now.
    pub(crate) fn running_actors(&self) -> usize {
        lock(&self.entries)
            .sessions
            .values()
            .filter(|entry| entry.commands.as_ref().is_some_and(|c| !c.is_closed()))
            .count()
    }

    /// The live side of the session's log, kept while anyone subscribes or an actor runs,
    /// and the relay's floor (see `Entry::floor`).
    pub(crate) fn live(&self, id: Uuid) -> (LiveSender, Arc<AtomicI64>) {
        let mut entries = lock(&self.entries);
        let entry = entries.sessions.entry(id).or_insert_with(Entry::new);
        (entry.live.clone(), entry.floor.clone())
    }

    /// An actor is exiting: it no longer takes commands. The entry goes too once nobody
    /// subscribes (and so do other entries nobody uses any more).
    pub(crate) fn forget(&self, id: Uuid, commands: &mpsc::Sender<Command>) {
        let mut entries = lock(&self.entries);
        if let Some(entry) = entries.sessions.get_mut(&id)
            && entry
                .commands
                .as_ref()
                .is_some_and(|mine| mine.same_channel(commands))
        {
            entry.commands = None;
            entry.fence = None;
        }
        entries
            .sessions
            .retain(|_, entry| entry.commands.is_some() || entry.live.receiver_count() > 0);
    }

    /// The session is gone (deleted): its entry goes now, live side included, so once the
    /// actor's own copy drops every subscription ends and its clients are disconnected.
    pub(crate) fn remove(&self, id: Uuid) {
        lock(&self.entries).sessions.remove(&id);
    }

    /// Refuses new actors and hands out the mailboxes of the running ones, and the live
    /// senders: once the caller drops those (after the actors said their last), every
    /// subscription ends.
    pub(crate) fn close(&self) -> (Vec<mpsc::Sender<Command>>, Vec<LiveSender>) {
        let mut entries = lock(&self.entries);
        entries.closed = true;
        entries
            .sessions
            .drain()
            .map(|(_, entry)| (entry.commands, entry.live))
            .fold(
                (Vec::new(), Vec::new()),
                |(mut mailboxes, mut lives), (commands, live)| {
                    mailboxes.extend(commands);
                    lives.push(live);
                    (mailboxes, lives)
                },
            )
    }
}

/// Leases: the heartbeat's side.
impl Registry {
    /// Renews this node's registration and leases; stops the actors whose lease is gone and
    /// releases leases no actor here uses.
    pub(crate) async fn renew_all(&self) -> Result<()> {
        let store = &self.services.store;
        let held = store.heartbeat(self.node(), self.lease_ttl()).await?;
        let _one_at_a_time = self.acquiring.lock().await;
        let unused: Vec<(Uuid, i64)> = {
            let entries = lock(&self.entries);
            for (id, entry) in &entries.sessions {
                if let Some(fence) = entry.fence.as_ref().filter(|_| entry.running())
                    && !held.contains(&(*id, fence.epoch))
                {
                    tracing::warn!(session.id = %id, "this node lost the session's lease; stopping its actor");
                    entry.lost.cancel();
                }
            }
            held.into_iter()
                .filter(|(id, epoch)| {
                    !entries.sessions.get(id).is_some_and(|entry| {
                        entry.running() && entry.fence.as_ref().is_some_and(|f| f.epoch == *epoch)
                    })
                })
                .collect()
        };
        for (id, epoch) in unused {
            let fence = Fence {
                node: self.node().to_owned(),
                epoch,
            };
            store.release_lease(id, &fence).await?;
        }
        Ok(())
    }

    /// Stops every actor here at once (this node can no longer prove it owns anything).
    pub(crate) fn stop_all_owned(&self, reason: &str) {
        let entries = lock(&self.entries);
        for (id, entry) in &entries.sessions {
            if entry.running() {
                tracing::warn!(session.id = %id, %reason, "stopping the session's actor");
                entry.lost.cancel();
            }
        }
    }
}

/// The relay: feeding subscribers here with events another node stored.
impl Registry {
    /// Reads the session's events after the floor and sends them to its subscribers here,
    /// unless an actor here writes them itself.
    pub(crate) async fn relay(&self, id: Uuid) {
        let target = {
            let entries = lock(&self.entries);
            entries
                .sessions
                .get(&id)
                .filter(|entry| !entry.running() && entry.live.receiver_count() > 0)
                .map(|entry| (entry.live.clone(), entry.floor.clone()))
        };
        let Some((live, floor)) = target else {
            return;
        };
        loop {
            let after = floor.load(Ordering::Acquire);
            if after == NO_FLOOR {
                return;
            }
            let page = match self.services.store.events_after(id, after, 500).await {
                Ok(page) => page,
                Err(err) => {
                    tracing::warn!(error = %err, session.id = %id, "cannot read events to relay");
                    return;
                }
            };
            let full = page.len() == 500;
            for stored in page {
                let seq = stored.seq;
                match crate::eventlog::decode(stored).and_then(crate::eventlog::EncodedEvent::new) {
                    Ok(event) => {
                        let _ = live.send(Arc::new(event));
                    }
                    Err(err) => tracing::warn!(error = %err, seq, "cannot relay an event"),
                }
                floor.fetch_max(seq, Ordering::AcqRel);
            }
            if !full {
                return;
            }
        }
    }

    /// Relays every session that has subscribers here and no actor.
    pub(crate) async fn relay_all(&self) {
        let ids: Vec<Uuid> = {
            let entries = lock(&self.entries);
            entries
                .sessions
                .iter()
                .filter(|(_, entry)| !entry.running() && entry.live.receiver_count() > 0)
                .map(|(id, _)| *id)
                .collect()
        };
        for id in ids {
            self.relay(id).await;
        }
    }

    /// Another node changed a session of `owner`: this node's session lists hear it.
    pub(crate) async fn relay_list(&self, owner: Uuid, id: Uuid) {
        if self.services.list.receiver_count() == 0 {
            return;
        }
        let update = match self.services.store.session(id).await {
            Ok(record) if record.owner_id == owner => match record.to_protocol() {
                Ok(session) => SessionListUpdate::Upsert { session },
                Err(_) => return,
            },
            Ok(_) => return,
            Err(StoreError::NotFound) => SessionListUpdate::Removed { id },
            Err(err) => {
                tracing::warn!(error = %err, "cannot read a changed session");
                return;
            }
        };
        let _ = self.services.list.send(crate::manager::ListChange {
            owner_id: owner,
            update,
        });
    }
}
