//! A ceiling on one server-sent event's size.
//!
//! The SSE decoder keeps an event's bytes until the blank line that ends it. OpenCode runs inside
//! the sandbox, next to whatever the agent runs, so what arrives on its event stream is untrusted:
//! without a ceiling, a stream that never sends a blank line would make den buffer without end.
//! The ceiling sits between the body and the decoder and ends the stream once one event passes
//! it; the event stream reports a break and reconnects, as after any other failure.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::Stream;

/// The largest event den accepts. OpenCode's largest events (a `session.diff` with whole files
/// before and after) stay far below it.
pub(crate) const MAX_EVENT_BYTES: usize = 64 * 1024 * 1024;

/// Why the body stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error(transparent)]
    Transport(reqwest::Error),
    #[error("an event of OpenCode's stream passed {limit} bytes")]
    EventTooLarge { limit: usize },
}

/// Counts the bytes of the event in progress across chunks and fails once it passes `limit`.
pub(crate) struct EventSizeLimit<S> {
    inner: S,
    limit: usize,
    /// Bytes since the last event boundary (a blank line).
    pending: usize,
    /// Length of the line in progress; a line ending after an empty line ends an event.
    line_len: usize,
    /// The last byte was `\r`, so a following `\n` finishes the same line ending.
    after_cr: bool,
    failed: bool,
}

impl<S> EventSizeLimit<S> {
    pub(crate) fn new(inner: S, limit: usize) -> Self {
        Self {
            inner,
            limit,
            pending: 0,
            line_len: 0,
            after_cr: false,
            failed: false,
        }
    }

    /// Accounts for `chunk`; false once the event in progress is over the limit.
    fn admit(&mut self, chunk: &[u8]) -> bool {
        for &byte in chunk {
            self.pending += 1;
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    if self.line_len == 0 {
                        self.pending = 0;
                    }
                    self.line_len = 0;
                    self.after_cr = byte == b'\r';
                }
                _ => {
                    self.line_len += 1;
                    self.after_cr = false;
                }
            }
            if self.pending > self.limit {
                return false;
            }
        }
        true
    }
}

impl<S> Stream for EventSizeLimit<S>
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Unpin,
{
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed {
            return Poll::Ready(None);
        }
        let item = match ready!(Pin::new(&mut self.inner).poll_next(cx)) {
            None => None,
            Some(Err(error)) => Some(Err(BodyError::Transport(error))),
            Some(Ok(chunk)) if self.admit(&chunk) => Some(Ok(chunk)),
            Some(Ok(_)) => {
                self.failed = true;
                Some(Err(BodyError::EventTooLarge { limit: self.limit }))
            }
        };
        Poll::Ready(item)
    }
}

#[cfg(test)]
#[path = "event_size_fuzz.rs"]
mod fuzz;
