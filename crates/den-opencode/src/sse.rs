//! The `/event` stream: SSE decoding, typed events, and reconnection.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use sse_stream::{Sse, SseByteStream};

use crate::client::OpencodeClient;
use crate::error::{OpencodeError, Result};
use crate::event::EventEnvelope;
use crate::event_size::{EventSizeLimit, MAX_EVENT_BYTES};

type SseBody = BoxStream<'static, Result<Sse, sse_stream::Error>>;

/// OpenCode's events, forever: when the connection drops the stream reconnects by itself.
///
/// An `Err` item is not the end. It reports a break, after which events may have been missed
/// (OpenCode does not replay), and a new `server.connected` follows once reconnected; a consumer
/// that needs exact state should re-read it (for example with `messages`) at that point. The
/// stream ends only after `max_reconnects` consecutive failed attempts.
pub struct EventStream {
    inner: BoxStream<'static, Result<EventEnvelope>>,
}

struct State {
    client: OpencodeClient,
    body: Option<SseBody>,
    /// An event read while confirming the subscription, handed out first.
    buffered: Option<EventEnvelope>,
    /// Consecutive failures since the last event that decoded; drives backoff and giving up.
    failures: u32,
}

impl EventStream {
    pub(crate) async fn connect(client: OpencodeClient) -> Result<Self> {
        let idle = client.config().event_idle;
        let mut body = open(&client).await?;
        // Wait for the first event so the caller knows the subscription is live before it
        // starts a turn whose events it must not miss.
        let first = loop {
            let block = tokio::time::timeout(idle, body.next())
                .await
                .map_err(|_| OpencodeError::StreamIdle { idle })?;
            match block {
                None => return Err(OpencodeError::StreamEnded),
                Some(Err(error)) => return Err(OpencodeError::Stream(error)),
                Some(Ok(sse)) => {
                    if let Some(event) = decode(sse).transpose()? {
                        break event;
                    }
                }
            }
        };
        let state = State {
            client,
            body: Some(body),
            buffered: Some(first),
            failures: 0,
        };
        Ok(Self {
            inner: futures::stream::unfold(state, next_item).boxed(),
        })
    }
}

impl Stream for EventStream {
    type Item = Result<EventEnvelope>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

async fn open(client: &OpencodeClient) -> Result<SseBody> {
    let response = client.open_event_response().await?;
    let body = EventSizeLimit::new(response.bytes_stream().boxed(), MAX_EVENT_BYTES);
    Ok(SseByteStream::new(body).boxed())
}

/// Parses one SSE block. Blocks without data (comments, keep-alives) yield `None`.
fn decode(sse: Sse) -> Option<Result<EventEnvelope>> {
    let data = sse.data?;
    if data.trim().is_empty() {
        return None;
    }
    Some(serde_json::from_str(&data).map_err(OpencodeError::DecodeEvent))
}

async fn next_item(mut state: State) -> Option<(Result<EventEnvelope>, State)> {
    if let Some(event) = state.buffered.take() {
        return Some((Ok(event), state));
    }
    let config = state.client.config().clone();
    loop {
        if state.failures > config.max_reconnects {
            return None;
        }
        let mut body = match state.body.take() {
            Some(body) => body,
            None => {
                if state.failures > 0 {
                    let step = usize::try_from(state.failures - 1).unwrap_or(usize::MAX);
                    let delay = config
                        .reconnect_backoff
                        .get(step)
                        .or(config.reconnect_backoff.last())
                        .copied()
                        .unwrap_or_default();
                    tokio::time::sleep(delay).await;
                }
                match open(&state.client).await {
                    Ok(body) => body,
                    Err(error) => {
                        state.failures += 1;
                        return Some((Err(error), state));
                    }
                }
            }
        };
        let error = match tokio::time::timeout(config.event_idle, body.next()).await {
            Err(_) => OpencodeError::StreamIdle {
                idle: config.event_idle,
            },
            Ok(None) => OpencodeError::StreamEnded,
            Ok(Some(Err(error))) => OpencodeError::Stream(error),
            Ok(Some(Ok(sse))) => {
                state.body = Some(body);
                match decode(sse) {
                    None => continue,
                    Some(Ok(event)) => {
                        state.failures = 0;
                        return Some((Ok(event), state));
                    }
                    // A malformed event is reported but the connection is kept.
                    Some(Err(error)) => return Some((Err(error), state)),
                }
            }
        };
        // The connection is gone (body dropped); the next call reconnects after a backoff.
        state.failures += 1;
        return Some((Err(error), state));
    }
}
