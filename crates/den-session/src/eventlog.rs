//! Appending events (store first, then broadcast) and reading them back without gaps.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use den_protocol::events::{SequencedEvent, ServerMessage, SessionEvent};
use den_store::{Store, StoredEvent};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::error::{Result, SessionError};

/// How many live events a subscriber may fall behind before it catches up from the store.
pub(crate) const LIVE_BUFFER: usize = 1024;
/// Events read from the store per page while replaying.
const REPLAY_PAGE: u32 = 500;

/// The live side of a session's log: every subscriber gets the same encoded event.
pub(crate) type LiveSender = broadcast::Sender<Arc<EncodedEvent>>;

/// An event together with its two wire encodings, made once and shared by every client,
/// rather than cloned and serialised again for each connection.
#[derive(Debug, PartialEq)]
pub struct EncodedEvent {
    event: SequencedEvent,
    /// The `SequencedEvent` as JSON (an SSE `data:` line).
    json: Bytes,
    /// The `ServerMessage::Event` as JSON (a WebSocket text frame).
    frame: Bytes,
}

impl EncodedEvent {
    pub fn new(event: SequencedEvent) -> Result<Self> {
        let encode = |err: serde_json::Error| SessionError::Encode(err.to_string());
        let json = serde_json::to_vec(&event).map_err(encode)?;
        let frame =
            serde_json::to_vec(&ServerMessage::Event(Box::new(event.clone()))).map_err(encode)?;
        Ok(Self {
            event,
            json: json.into(),
            frame: frame.into(),
        })
    }

    pub fn event(&self) -> &SequencedEvent {
        &self.event
    }

    pub fn seq(&self) -> i64 {
        self.event.seq
    }

    /// The event as JSON; always UTF-8.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The WebSocket message carrying the event (`ServerMessage::Event`) as JSON; always UTF-8.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }
}

/// The session's event log. Owned by the session's actor: the only writer.
pub(crate) struct EventLog {
    session_id: Uuid,
    store: Store,
    live: LiveSender,
    /// The lease every append checks (`None` only in this module's tests).
    fence: Option<den_store::Fence>,
    /// The relay's floor (see the registry): moved past what this log broadcast itself.
    floor: Option<Arc<AtomicI64>>,
    notifier: Option<Arc<dyn crate::cluster::Notifier>>,
    /// An append was refused: this node no longer owns the session.
    fenced: bool,
}

/// How often an append retries when another writer took the same sequence number.
const APPEND_ATTEMPTS: usize = 3;

impl EventLog {
    pub(crate) fn new(store: Store, session_id: Uuid, live: LiveSender) -> Self {
        Self {
            session_id,
            store,
            live,
            fence: None,
            floor: None,
            notifier: None,
            fenced: false,
        }
    }

    /// Appends only under `fence`, and tells `notifier` (the other nodes) of each append.
    pub(crate) fn owned(
        mut self,
        fence: den_store::Fence,
        floor: Option<Arc<AtomicI64>>,
        notifier: Option<Arc<dyn crate::cluster::Notifier>>,
    ) -> Self {
        self.fence = Some(fence);
        self.floor = floor;
        self.notifier = notifier;
        self
    }

    pub(crate) fn is_fenced(&self) -> bool {
        self.fenced
    }

    /// This node no longer owns the session: nothing more is appended.
    pub(crate) fn mark_fenced(&mut self) {
        self.fenced = true;
    }

    /// Stores `event` under the next sequence number (the database picks it), then sends it to
    /// live subscribers. Once this returns, the event is durable: no subscriber can see an
    /// event that is not stored.
    pub(crate) async fn append(&mut self, event: SessionEvent) -> Result<SequencedEvent> {
        let payload =
            serde_json::to_value(&event).map_err(|err| SessionError::Encode(err.to_string()))?;
        // One timestamp for the stored and the broadcast copy, so a replay equals the live event.
        let at = den_store::now();
        if self.fenced {
            return Err(den_store::StoreError::Fenced.into());
        }
        let mut attempt = 0;
        let seq = loop {
            attempt += 1;
            let appended = match &self.fence {
                Some(fence) => {
                    self.store
                        .append_next_event_fenced(
                            self.session_id,
                            fence,
                            event.kind(),
                            &payload,
                            at,
                        )
                        .await
                }
                None => {
                    self.store
                        .append_next_event(self.session_id, event.kind(), &payload, at)
                        .await
                }
            };
            match appended {
                Ok(seq) => break seq,
                Err(den_store::StoreError::Conflict(_)) if attempt < APPEND_ATTEMPTS => {}
                Err(den_store::StoreError::Fenced) => {
                    self.fenced = true;
                    return Err(den_store::StoreError::Fenced.into());
                }
                Err(err) => return Err(err.into()),
            }
        };
        let sequenced = SequencedEvent { seq, at, event };
        let encoded = Arc::new(EncodedEvent::new(sequenced.clone())?);
        // No receiver is fine: nobody is watching right now.
        let _ = self.live.send(encoded);
        if let Some(floor) = &self.floor {
            floor.fetch_max(seq, Ordering::AcqRel);
        }
        if let Some(notifier) = &self.notifier {
            notifier.events_stored(self.session_id, seq);
        }
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
    live: broadcast::Receiver<Arc<EncodedEvent>>,
    /// The last sequence number handed out.
    cursor: i64,
    pending: VecDeque<Arc<EncodedEvent>>,
    replaying: bool,
    /// Whether the end of the initial replay was announced.
    caught_up_sent: bool,
    /// The relay's floor: lowered to where this subscription caught up, so events another
    /// node stores after that reach it.
    floor: Option<Arc<AtomicI64>>,
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Event(Arc<EncodedEvent>),
    /// Sent once: the stored history up to `seq` was delivered; what follows is live.
    CaughtUp {
        seq: i64,
    },
}

impl EventSubscription {
    pub(crate) fn new(
        session_id: Uuid,
        store: Store,
        live: broadcast::Receiver<Arc<EncodedEvent>>,
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
            floor: None,
        }
    }

    pub(crate) fn with_floor(mut self, floor: Arc<AtomicI64>) -> Self {
        self.floor = Some(floor);
        self
    }

    /// The next event (or the one-time end-of-replay marker); `None` when the session's
    /// actor is gone (deleted, or den stopping).
    pub async fn next(&mut self) -> Option<Result<Delivery>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if event.seq() <= self.cursor {
                    continue;
                }
                if event.seq() > self.cursor + 1 {
                    // A gap: fetch what lies between from the store, then this one again.
                    self.pending.push_front(event);
                    if let Err(err) = self.fill_from_store().await {
                        return Some(Err(err));
                    }
                    continue;
                }
                self.cursor = event.seq();
                return Some(Ok(Delivery::Event(event)));
            }
            if self.replaying {
                match self.fill_from_store().await {
                    Ok(0) => {
                        self.replaying = false;
                        if let Some(floor) = &self.floor {
                            floor.fetch_min(self.cursor, Ordering::AcqRel);
                        }
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

    /// The next event if it is already here (buffered, or sent live and not yet taken),
    /// without waiting or reading the store: lets a transport batch what is ready into one
    /// write. `None` when [`EventSubscription::next`] would have to wait or read the store.
    pub fn next_ready(&mut self) -> Option<Arc<EncodedEvent>> {
        loop {
            let event = match self.pending.pop_front() {
                Some(event) => event,
                // Replaying: what is not yet read from the store is `next`'s to fetch.
                None if self.replaying => return None,
                None => match self.live.try_recv() {
                    Ok(event) => event,
                    Err(broadcast::error::TryRecvError::Lagged(_)) => {
                        self.replaying = true;
                        return None;
                    }
                    Err(_) => return None,
                },
            };
            if event.seq() <= self.cursor {
                continue;
            }
            if event.seq() > self.cursor + 1 {
                // A gap: leave it to `next`, which reads the store.
                self.pending.push_front(event);
                return None;
            }
            self.cursor = event.seq();
            return Some(event);
        }
    }

    /// Reads the next page after the cursor into `pending` (in front); returns how many.
    async fn fill_from_store(&mut self) -> Result<usize> {
        let stored = self
            .store
            .events_after(self.session_id, self.cursor, REPLAY_PAGE)
            .await?;
        let count = stored.len();
        let mut page = stored
            .into_iter()
            .map(|stored| Ok(Arc::new(EncodedEvent::new(decode(stored)?)?)))
            .collect::<Result<Vec<_>>>()?;
        while let Some(event) = page.pop() {
            self.pending.push_front(event);
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use den_protocol::events::SessionEvent;
    use den_store::{Keyring, NewSession, NewUser};

    use super::*;

    async fn store_with_session() -> (Store, Uuid, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let store = Store::connect(&url, Keyring::generate().unwrap())
            .await
            .unwrap();
        let user = store
            .create_user(NewUser {
                username: "u",
                password_hash: None,
                is_admin: false,
                github: None,
            })
            .await
            .unwrap();
        let id = Uuid::now_v7();
        let new = NewSession {
            id,
            owner_id: user.id,
            title: "t",
            repository: "r",
            base_branch: None,
            work_branch: "b",
            model: "m/n",
        };
        store.create_session(new).await.unwrap();
        (store, id, dir)
    }

    fn delta(n: usize) -> SessionEvent {
        SessionEvent::TextDelta {
            message_id: "m".into(),
            part_id: "p".into(),
            delta: n.to_string(),
        }
    }

    async fn next_event(subscription: &mut EventSubscription) -> SequencedEvent {
        match subscription.next().await.unwrap().unwrap() {
            Delivery::Event(event) => event.event().clone(),
            Delivery::CaughtUp { seq } => panic!("caught up at {seq} too early"),
        }
    }

    #[tokio::test]
    async fn a_subscriber_gets_history_after_its_cursor_then_live_events_each_once() {
        let (store, id, _dir) = store_with_session().await;
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        let mut log = EventLog::new(store.clone(), id, live.clone());
        for n in 1..=5 {
            log.append(delta(n)).await.unwrap();
        }
        let mut subscription = EventSubscription::new(id, store.clone(), live.subscribe(), 2);
        // Appended after subscribing but before the replay reads: it must come exactly once.
        log.append(delta(6)).await.unwrap();
        let mut seqs = Vec::new();
        loop {
            match subscription.next().await.unwrap().unwrap() {
                Delivery::Event(event) => seqs.push(event.seq()),
                Delivery::CaughtUp { seq } => {
                    assert_eq!(seq, 6);
                    break;
                }
            }
        }
        assert_eq!(seqs, [3, 4, 5, 6]);
        log.append(delta(7)).await.unwrap();
        assert_eq!(next_event(&mut subscription).await.seq, 7);
        // A log reopened (a restarted den) continues the numbering.
        let mut reopened = EventLog::new(store, id, live);
        assert_eq!(reopened.append(delta(8)).await.unwrap().seq, 8);
        assert_eq!(next_event(&mut subscription).await.seq, 8);
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_far_behind_catches_up_from_the_store_without_gaps() {
        let (store, id, _dir) = store_with_session().await;
        let (live, _) = broadcast::channel(8);
        let mut log = EventLog::new(store.clone(), id, live.clone());
        let mut subscription = EventSubscription::new(id, store, live.subscribe(), 0);
        assert_eq!(
            subscription.next().await.unwrap().unwrap(),
            Delivery::CaughtUp { seq: 0 }
        );
        // Far more than the live buffer holds, while the subscriber reads nothing.
        for n in 1..=100 {
            log.append(delta(n)).await.unwrap();
        }
        let mut seqs = Vec::new();
        while seqs.len() < 100 {
            seqs.push(next_event(&mut subscription).await.seq);
        }
        assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
        drop(log);
        drop(live);
        assert!(
            subscription.next().await.is_none(),
            "ends when the actor is gone"
        );
    }
}
