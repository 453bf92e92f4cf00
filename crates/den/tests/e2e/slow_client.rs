//! A WebSocket client that stops reading: den cuts it off instead of slowing the session, and
//! it resumes exactly where it stopped.

use std::time::Duration;

use den_protocol::events::SessionEvent;
use den_test_support::Turn;

use crate::harness::{Den, seqs};

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_without_slowing_the_session_and_resumes_exactly() {
    let den = Den::start_with("[live]\nslow_client_ms = 500\n").await;
    let session = den.create_session(None).await;
    let mut watcher = den.connect(&session, 0).await;
    let mut stalled = den.connect_stalled(&session, 0).await;
    // About 3 MB of text in 1 KiB deltas: far more than the socket buffers between den and a
    // client that reads nothing, and streamed over several seconds.
    den.model.push(
        Turn::new()
            .say_long(3 << 20)
            .chunk_delay(Duration::from_millis(2)),
    );
    den.prompt(&session, "write a lot").await;
    watcher.until_turn_finished().await;

    // The turn finished while the stalled client read nothing: den gave up on it.
    assert_eq!(den.counter("den_ws_slow_client_closes_total").await, 1.0);
    let code = stalled.read_to_end().await;
    assert!(
        code.is_none() || code == Some(den_server::CLOSE_RESUMABLE),
        "closed with {code:?}"
    );
    let received = seqs(&stalled.events);
    assert_eq!(
        received,
        (1..=received.len() as i64).collect::<Vec<_>>(),
        "what it got before the cut has no gap and no repeat"
    );
    assert!(
        !stalled
            .events
            .iter()
            .any(|e| matches!(e.event, SessionEvent::TurnFinished { .. })),
        "it was cut off before the end of the turn"
    );

    // Resuming after the last event it received gives exactly the rest.
    let last = received.last().copied().unwrap_or(0);
    let mut resumed = den.connect(&session, last).await;
    resumed.until_turn_finished().await;
    let mut whole = stalled.events.clone();
    whole.extend(resumed.events.iter().cloned());
    assert_eq!(
        whole, watcher.events,
        "the same history as a client that kept up"
    );
    // Everyone else is unaffected.
    assert_eq!(den.counter("den_ws_slow_client_closes_total").await, 1.0);

    // Created without a title or a prompt, the session took its title from its first prompt.
    assert!(
        watcher
            .events
            .iter()
            .any(|e| matches!(&e.event, SessionEvent::Renamed { title } if title == "write a lot")),
        "no rename after the first prompt"
    );
    let (_, record) = den
        .api(
            reqwest::Method::GET,
            &format!("/api/sessions/{session}"),
            None,
        )
        .await;
    // By now OpenCode may also have titled the conversation (the scripted model answers
    // "Scripted session"), which a session nobody named takes in place of its first prompt.
    let title = record["title"].as_str().unwrap_or_default();
    assert!(
        title == "write a lot" || title == "Scripted session",
        "{record}"
    );
}
