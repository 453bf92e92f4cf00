//! Which sessions have an actor right now, and the live side of each session's event log.
//!
//! An actor exists only while its session has something to do (a sandbox, a start, a turn, a
//! queue); a dormant session is just its record, and the next command starts a fresh actor
//! from it. The live broadcast of a session outlives its actors while anyone subscribes, so a
//! subscriber keeps receiving across actor incarnations.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use den_store::{SessionRecord, StoreError};
use tokio::sync::{broadcast, mpsc};
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
}

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
}

impl Registry {
    pub(crate) fn new(services: Services) -> Self {
        Self {
            services,
            entries: Mutex::new(Entries::default()),
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
        let record = match self.services.store.session_of(owner_id, id).await {
            Ok(record) => record,
            Err(StoreError::NotFound) => return Err(SessionError::NotFound),
            Err(err) => return Err(err.into()),
        };
        self.start(record)
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
    pub(crate) fn restart(
        self: &std::sync::Arc<Self>,
        record: SessionRecord,
    ) -> Result<mpsc::Sender<Command>> {
        self.start(record)
    }

    /// Starts the actor of `record` unless one runs already (two callers may race here).
    fn start(self: &std::sync::Arc<Self>, record: SessionRecord) -> Result<mpsc::Sender<Command>> {
        let mut entries = lock(&self.entries);
        if entries.closed {
            return Err(SessionError::ActorGone);
        }
        let entry = entries.sessions.entry(record.id).or_insert_with(|| Entry {
            commands: None,
            live: broadcast::channel(LIVE_BUFFER).0,
        });
        if let Some(commands) = entry.commands.as_ref().filter(|c| !c.is_closed()) {
            return Ok(commands.clone());
        }
        let commands = actor::spawn(
            self.services.clone(),
            std::sync::Arc::downgrade(self),
            record,
            entry.live.clone(),
        );
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

    /// The live side of the session's log, kept while anyone subscribes or an actor runs.
    pub(crate) fn live(&self, id: Uuid) -> LiveSender {
        let mut entries = lock(&self.entries);
        entries
            .sessions
            .entry(id)
            .or_insert_with(|| Entry {
                commands: None,
                live: broadcast::channel(LIVE_BUFFER).0,
            })
            .live
            .clone()
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
