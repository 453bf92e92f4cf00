//! SIGTERM with a turn running and clients of every kind connected.

use std::time::{Duration, Instant};

use den_protocol::events::{SessionEvent, TurnOutcome};
use den_test_support::{Gate, Turn};
use futures::StreamExt;

use crate::harness::Den;
use crate::lifecycle::opencode_pid;

/// How long den may take to stop: its sessions' limit (20 s) plus the drain's (5 s), with room
/// for a loaded machine.
const STOP_LIMIT: Duration = Duration::from_secs(40);

/// Reads an SSE body to its end; the `data:` lines of each `event:` kind seen.
async fn read_sse_to_end(response: reqwest::Response) -> Vec<(String, String)> {
    let mut body = response.bytes_stream();
    let mut text = String::new();
    // A connection den closed after the stream (an error) ends it like a clean end.
    while let Some(Ok(chunk)) = tokio::time::timeout(STOP_LIMIT, body.next())
        .await
        .expect("the SSE stream ended in time")
    {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text.split("\n\n")
        .filter_map(|frame| {
            let field = |name: &str| {
                frame
                    .lines()
                    .find_map(|line| line.strip_prefix(&format!("{name}:")))
                    .map(|value| value.trim().to_owned())
            };
            Some((field("event")?, field("data").unwrap_or_default()))
        })
        .collect()
}

#[tokio::test]
async fn sigterm_ends_every_live_connection_closes_the_turn_as_interrupted_and_den_exits() {
    let mut den = Den::start().await;
    let gate = Gate::new();
    den.model
        .push(Turn::new().say("working ").hold(&gate).say("never said"));
    let session = den.create_session(Some("a long job")).await;
    let mut socket = den.connect(&session, 0).await;
    socket
        .until(|e| matches!(e, SessionEvent::TextDelta { .. }))
        .await;
    gate.reached().await;
    let events = den.stream(&format!("/api/sessions/{session}/events")).await;
    let list = den.stream("/api/sessions/stream").await;
    let opencode = opencode_pid(den.pid()).expect("OpenCode runs under den");

    let started = Instant::now();
    let status = den.terminate(STOP_LIMIT).await;
    assert!(status.success(), "den exits cleanly: {status:?}");
    assert!(started.elapsed() < STOP_LIMIT);

    // The WebSocket client saw the turn end as interrupted, then was told to reconnect.
    let close = socket.read_to_end().await;
    assert_eq!(close, Some(1012), "closed as 'den is restarting'");
    let finished = socket.events.iter().rev().find_map(|e| match &e.event {
        SessionEvent::TurnFinished { outcome, .. } => Some(*outcome),
        _ => None,
    });
    assert_eq!(finished, Some(TurnOutcome::Interrupted));
    // Both SSE streams ended; the event stream carried the interruption too.
    let frames = read_sse_to_end(events).await;
    assert!(
        frames
            .iter()
            .any(|(kind, data)| kind == "event" && data.contains("\"interrupted\"")),
        "{frames:?}"
    );
    read_sse_to_end(list).await;
    // The sandbox is gone with den.
    assert!(
        !std::path::Path::new(&format!("/proc/{opencode}")).exists(),
        "OpenCode still runs after den stopped"
    );
    gate.release();
}
