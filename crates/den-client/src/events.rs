//! A session's events over Server-Sent Events (`GET /api/sessions/{id}/events`), resumed
//! across dropped connections.
//!
//! den numbers every event of a session 1, 2, 3, … and replays exactly the events after the
//! `after=N` a client asks for. The stream remembers the last number it handed out and asks
//! for the events after it on every reconnect, and drops anything at or below it, so a caller
//! sees every event once, in order, however often the connection breaks.

use std::time::Duration;

use den_protocol::events::SequencedEvent;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::Method;
use sse_stream::{Sse, SseByteStream};
use uuid::Uuid;

use crate::client::Client;
use crate::error::ClientError;

/// den sends a keep-alive every 15 s; a connection silent for this long is dead (a network
/// that drops packets never closes it) and is replaced.
const IDLE: Duration = Duration::from_secs(45);
/// Waits between consecutive failed reconnects; the last one repeats.
const BACKOFF: &[Duration] = &[
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];
/// Consecutive failed reconnects before giving up (about a minute of den being unreachable).
const MAX_ATTEMPTS: u32 = 20;

type SseBody = BoxStream<'static, Result<Sse, sse_stream::Error>>;

/// What the stream hands out.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// The next event; its `seq` is always one more than the last handed out, except after
    /// `after` at the start.
    Event(Box<SequencedEvent>),
    /// The replay caught up: everything up to `seq` was handed out; what follows is live.
    CaughtUp { seq: i64 },
    /// The connection broke; the stream is resuming after `after`. Informational.
    Reconnecting { after: i64, reason: String },
}

/// A session's events, forever (until the session is deleted or den stays unreachable).
pub struct EventStream {
    client: Client,
    session: Uuid,
    last_seq: i64,
    body: Option<SseBody>,
    failures: u32,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("session", &self.session)
            .field("last_seq", &self.last_seq)
            .finish_non_exhaustive()
    }
}

impl EventStream {
    /// Opens the stream; refusals (no such session, a revoked token) are reported here.
    pub(crate) async fn open(
        client: Client,
        session: Uuid,
        after: i64,
    ) -> Result<Self, ClientError> {
        let body = connect(&client, session, after).await?;
        Ok(Self {
            client,
            session,
            last_seq: after,
            body: Some(body),
            failures: 0,
        })
    }

    /// The sequence number of the last event handed out.
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    /// The next item. `Err` ends the stream: den refused to resume it (the session was
    /// deleted, the token revoked) or stayed unreachable.
    pub async fn next(&mut self) -> Result<StreamItem, ClientError> {
        loop {
            let mut body = match self.body.take() {
                Some(body) => body,
                None => {
                    let step = usize::try_from(self.failures.saturating_sub(1)).unwrap_or(0);
                    tokio::time::sleep(BACKOFF[step.min(BACKOFF.len() - 1)]).await;
                    match connect(&self.client, self.session, self.last_seq).await {
                        Ok(body) => body,
                        Err(err) if err.is_transient() => {
                            self.failures += 1;
                            if self.failures >= MAX_ATTEMPTS {
                                return Err(ClientError::GaveUp {
                                    attempts: self.failures,
                                    last: err.to_string(),
                                });
                            }
                            continue;
                        }
                        Err(err) => return Err(err),
                    }
                }
            };
            let reason = match body.next().await {
                None => "the connection ended".to_owned(),
                Some(Err(err)) => err.to_string(),
                Some(Ok(sse)) => {
                    self.body = Some(body);
                    match self.decode(sse) {
                        Ok(Some(item)) => {
                            self.failures = 0;
                            return Ok(item);
                        }
                        Ok(None) => continue,
                        Err(err) => {
                            // A block that does not decode: start again after the last good
                            // event rather than skip it.
                            self.body = None;
                            err.to_string()
                        }
                    }
                }
            };
            self.failures += 1;
            return Ok(StreamItem::Reconnecting {
                after: self.last_seq,
                reason,
            });
        }
    }

    /// One SSE block: `event` (a `SequencedEvent`), `live` (the caught-up marker), or a
    /// keep-alive (`None`). Events at or below the last handed out are dropped.
    fn decode(&mut self, sse: Sse) -> Result<Option<StreamItem>, ClientError> {
        let Some(data) = sse.data else {
            return Ok(None);
        };
        match sse.event.as_deref() {
            Some("event") => {
                let event: SequencedEvent = serde_json::from_str(&data)
                    .map_err(|err| ClientError::Protocol(format!("an event: {err}")))?;
                if event.seq <= self.last_seq {
                    return Ok(None);
                }
                self.last_seq = event.seq;
                Ok(Some(StreamItem::Event(Box::new(event))))
            }
            Some("live") => {
                let seq = data
                    .trim()
                    .parse()
                    .map_err(|_| ClientError::Protocol(format!("a live marker: {data}")))?;
                Ok(Some(StreamItem::CaughtUp { seq }))
            }
            _ => Ok(None),
        }
    }
}

async fn connect(client: &Client, session: Uuid, after: i64) -> Result<SseBody, ClientError> {
    let after = after.to_string();
    let request = client
        .request_with_query(
            Method::GET,
            &format!("/api/sessions/{session}/events"),
            &[("after", &after)],
        )
        .header("accept", "text/event-stream");
    let response = client.send(request).await?;
    // The idle limit watches the bytes, not the decoded events: den's keep-alives are SSE
    // comments, which the decoder swallows, and a quiet turn (a long build) is not a dead link.
    let bytes = response.bytes_stream().boxed();
    let watched = futures::stream::unfold(Some(bytes), |state| async move {
        let mut bytes = state?;
        match tokio::time::timeout(IDLE, bytes.next()).await {
            Ok(Some(chunk)) => Some((chunk.map_err(std::io::Error::other), Some(bytes))),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "nothing from den for {} s, not even a keep-alive",
                        IDLE.as_secs()
                    ),
                )),
                None,
            )),
        }
    });
    Ok(SseByteStream::new(watched).boxed())
}
