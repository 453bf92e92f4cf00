//! Property tests (`scripts/fuzz` runs them longer): whatever bytes OpenCode's stream carries,
//! split however the network splits them, decoding never panics, never buffers past the
//! ceiling, and events under the ceiling come through whole and in order.

use bytes::Bytes;
use futures::{StreamExt, stream};
use proptest::prelude::*;
use sse_stream::SseByteStream;

use super::{EventSizeLimit, MAX_EVENT_BYTES};

/// Decodes `body` cut into pieces at `cuts` (positions, any order, out-of-range ones clamped):
/// every event's data, then whether the stream ended with an error.
fn decode(body: &[u8], cuts: &[usize], limit: usize) -> (Vec<String>, bool) {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.push(0);
    cuts.push(body.len());
    cuts.sort_unstable();
    cuts.dedup();
    let chunks: Vec<Result<Bytes, reqwest::Error>> = cuts
        .windows(2)
        .map(|w| Ok(Bytes::copy_from_slice(&body[w[0]..w[1]])))
        .collect();
    let limited = EventSizeLimit::new(stream::iter(chunks), limit);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut events = SseByteStream::new(limited);
        let mut data = Vec::new();
        while let Some(item) = events.next().await {
            match item {
                Ok(sse) => data.extend(sse.data),
                Err(_) => return (data, true),
            }
        }
        (data, false)
    })
}

fn encode(events: &[String], crlf: bool) -> Vec<u8> {
    let end = if crlf { "\r\n" } else { "\n" };
    events
        .iter()
        .map(|data| format!("data: {data}{end}{end}"))
        .collect::<String>()
        .into_bytes()
}

proptest! {
    #[test]
    fn events_under_the_ceiling_arrive_whole_however_the_body_is_split(
        events in prop::collection::vec("[^\r\n]{0,200}", 0..20),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
        crlf in any::<bool>(),
    ) {
        let body = encode(&events, crlf);
        let (data, failed) = decode(&body, &cuts, MAX_EVENT_BYTES);
        prop_assert!(!failed);
        prop_assert_eq!(data, events);
    }

    #[test]
    fn an_event_over_the_ceiling_ends_the_stream_with_an_error(
        events in prop::collection::vec("[a-z{}\":,]{1,300}", 1..10),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
        crlf in any::<bool>(),
    ) {
        let longest = events.iter().map(|e| encode(std::slice::from_ref(e), crlf).len()).max().unwrap_or(0);
        // Below the longest event (less the final line ending's last byte, which already counts
        // as the boundary): the ceiling must trip.
        let limit = longest.saturating_sub(3).max(1);
        let body = encode(&events, crlf);
        let (data, failed) = decode(&body, &cuts, limit);
        prop_assert!(failed, "no error with limit {} and an event of {} bytes", limit, longest);
        prop_assert!(data.iter().all(|d| d.len() <= limit), "an event over the limit got through");
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(
        body in prop::collection::vec(any::<u8>(), 0..4096),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
        limit in 1usize..8192,
    ) {
        let (data, _) = decode(&body, &cuts, limit);
        prop_assert!(data.iter().all(|d| d.len() <= limit));
    }
}

#[tokio::test]
async fn a_stream_that_never_ends_its_event_is_cut_off_at_the_ceiling() {
    // What a hostile process on OpenCode's port could send: one line, forever (here 16 MiB of
    // it, so a missing ceiling fails the test instead of hanging it).
    let chunk = Bytes::from(vec![b'a'; 1024]);
    let endless =
        stream::repeat_with(move || Ok::<_, reqwest::Error>(chunk.clone())).take(16 * 1024);
    let limit = 64 * 1024;
    let mut limited = EventSizeLimit::new(endless, limit);
    let mut passed = 0;
    let error = loop {
        match limited.next().await {
            Some(Ok(chunk)) => passed += chunk.len(),
            Some(Err(error)) => break error,
            None => panic!("16 MiB of one event passed a {limit}-byte ceiling"),
        }
    };
    assert!(
        passed <= limit,
        "{passed} bytes passed a {limit}-byte ceiling"
    );
    assert!(error.to_string().contains("passed 65536 bytes"), "{error}");
    assert!(
        limited.next().await.is_none(),
        "the stream goes on after the error"
    );
}
