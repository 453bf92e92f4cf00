//! Appending events (store first, then broadcast) and reading them back without gaps.

use std::collections::VecDeque;

use den_protocol::events::{SequencedEvent, SessionEvent};
use den_store::{Store, StoredEvent};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::error::{Result, SessionError};

/// How many live events a subscriber may fall behind before it catches up from the store.
pub(crate) const LIVE_BUFFER: usize = 1024;
/// Events read from the store per page while replaying.
const REPLAY_PAGE: u32 = 500;

/// The session's event log. Owned by the session's actor: the only writer.
pub(crate) struct EventLog {
    session_id: Uuid,
    store: Store,
    next_seq: i64,
    live: broadcast::Sender<SequencedEvent>,
}

impl EventLog {
    pub(crate) async fn open(
        store: Store,
        session_id: Uuid,
        live: broadcast::Sender<SequencedEvent>,
    ) -> Result<Self> {
        let next_seq = store.last_event_seq(session_id).await? + 1;
        Ok(Self {
            session_id,
            store,
            next_seq,
            live,
        })
    }

    /// Stores `event` with the next sequence number, then sends it to live subscribers. Once
    /// this returns, the event is durable: no subscriber can see an event that is not stored.
    pub(crate) async fn append(&mut self, event: SessionEvent) -> Result<SequencedEvent> {
        let payload = serde_json::to_value(&event)
            .map_err(|err| SessionError::InvalidPrompt(err.to_string()))?;
        let seq = self.next_seq;
        // One timestamp for the stored and the broadcast copy, so a replay equals the live event.
        let at = den_store::now();
        self.store
            .append_event(self.session_id, seq, event.kind(), &payload, at)
            .await?;
        self.next_seq += 1;
        let sequenced = SequencedEvent { seq, at, event };
        // No receiver is fine: nobody is watching right now.
        let _ = self.live.send(sequenced.clone());
        Ok(sequenced)
    }
}

/// Decodes a stored event.
pub(crate) fn decode(stored: StoredEvent) -> Result<SequencedEvent> {
    let event = serde_json::from_value(stored.payload.0).map_err(|err| {
        SessionError::Store(den_store::StoreError::Corrupt(format!(
            "event {}: {err}",
            stored.seq
        )))
    })?;
    Ok(SequencedEvent {
        seq: stored.seq,
        at: stored.created_at,
        event,
    })
}

/// A session's events after a given sequence number: first the stored history, then live
/// events as they happen, each exactly once and in order.
///
/// It subscribes to the live stream before reading history, so nothing falls between the two;
/// live events already read from the store are skipped by sequence number; a gap (this
/// subscriber fell more than [`LIVE_BUFFER`] events behind) is filled from the store.
pub struct EventSubscription {
    session_id: Uuid,
    store: Store,
    live: broadcast::Receiver<SequencedEvent>,
    /// The last sequence number handed out.
    cursor: i64,
    pending: VecDeque<SequencedEvent>,
    replaying: bool,
    /// Whether the end of the initial replay was announced.
    caught_up_sent: bool,
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Event(Box<SequencedEvent>),
    /// Sent once: the stored history up to `seq` was delivered; what follows is live.
    CaughtUp {
        seq: i64,
    },
}

impl EventSubscription {
    pub(crate) fn new(
        session_id: Uuid,
        store: Store,
        live: broadcast::Receiver<SequencedEvent>,
        after: i64,
    ) -> Self {
        Self {
            session_id,
            store,
            live,
            cursor: after.max(0),
            pending: VecDeque::new(),
            replaying: true,
            caught_up_sent: false,
        }
    }

    /// The last sequence number returned by [`EventSubscription::next`].
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// The next event (or the one-time end-of-replay marker); `None` when the session's
    /// actor is gone (deleted, or den stopping).
    pub async fn next(&mut self) -> Option<Result<Delivery>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if event.seq <= self.cursor {
                    continue;
                }
                if event.seq > self.cursor + 1 {
                    // A gap: fetch what lies between from the store, then this one again.
                    self.pending.push_front(event);
                    if let Err(err) = self.fill_from_store().await {
                        return Some(Err(err));
                    }
                    continue;
                }
                self.cursor = event.seq;
                return Some(Ok(Delivery::Event(Box::new(event))));
            }
            if self.replaying {
                match self.fill_from_store().await {
                    Ok(0) => {
                        self.replaying = false;
                        if !self.caught_up_sent {
                            self.caught_up_sent = true;
                            return Some(Ok(Delivery::CaughtUp { seq: self.cursor }));
                        }
                    }
                    Ok(_) => {}
                    Err(err) => return Some(Err(err)),
                }
                continue;
            }
            match self.live.recv().await {
                Ok(event) => self.pending.push_back(event),
                // Fell behind: whatever was dropped is in the store.
                Err(broadcast::error::RecvError::Lagged(_)) => self.replaying = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Reads the next page after the cursor into `pending` (in front); returns how many.
    async fn fill_from_store(&mut self) -> Result<usize> {
        let stored = self
            .store
            .events_after(self.session_id, self.cursor, REPLAY_PAGE)
            .await?;
        let count = stored.len();
        let mut page = stored.into_iter().map(decode).collect::<Result<Vec<_>>>()?;
        while let Some(event) = page.pop() {
            self.pending.push_front(event);
        }
        Ok(count)
    }
}
