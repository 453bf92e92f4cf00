//! Prompts, streaming, queueing, aborting and reconnecting.

use den_protocol::events::{
    ProgressStep, Role, ServerMessage, SessionEvent, StepState, ToolState, TurnOutcome,
};
use den_protocol::sessions::SessionStatus;
use den_test_support::{Gate, Turn};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Database, Den, assistant_text, seqs};

#[tokio::test]
async fn a_prompt_writes_a_file_and_its_events_arrive_in_order() {
    prompt_writes_a_file(Database::Sqlite).await;
}

/// Also run on PostgreSQL (`crate::postgres`).
pub(crate) async fn prompt_writes_a_file(database: Database) {
    let den = Den::start_on(database).await;
    den.model.push(
        Turn::new()
            .say("Writing it. ")
            .write("hello.txt", "hi from den\n"),
    );
    den.model.push(Turn::text("Done."));
    let session = den.create_session(Some("please write hello.txt")).await;
    let mut socket = den.connect(&session, 0).await;
    let finished = socket.until_turn_finished().await;
    assert!(
        matches!(
            finished,
            SessionEvent::TurnFinished {
                outcome: TurnOutcome::Completed,
                ..
            }
        ),
        "{finished:?}"
    );

    let events: Vec<SessionEvent> = socket.events.iter().map(|e| e.event.clone()).collect();
    assert_eq!(
        seqs(&socket.events),
        (1..=socket.events.len() as i64).collect::<Vec<_>>(),
        "no gap, no repeat"
    );
    let position = |wanted: &dyn Fn(&SessionEvent) -> bool| {
        events
            .iter()
            .position(wanted)
            .unwrap_or_else(|| panic!("missing event in {events:#?}"))
    };
    let agent_ready = position(&|e| {
        matches!(
            e,
            SessionEvent::Progress {
                step: ProgressStep::Agent,
                state: StepState::Done,
                ..
            }
        )
    });
    let running = position(&|e| {
        matches!(
            e,
            SessionEvent::Status {
                status: SessionStatus::Running,
                ..
            }
        )
    });
    let user = position(
        &|e| matches!(e, SessionEvent::Message { role: Role::User, text: Some(t), .. } if t == "please write hello.txt"),
    );
    let started = position(&|e| matches!(e, SessionEvent::TurnStarted { .. }));
    let assistant = position(&|e| {
        matches!(
            e,
            SessionEvent::Message {
                role: Role::Assistant,
                ..
            }
        )
    });
    let delta = position(&|e| matches!(e, SessionEvent::TextDelta { .. }));
    let tool_done = position(
        &|e| matches!(e, SessionEvent::Tool(call) if call.tool == "write" && call.state == ToolState::Completed),
    );
    let done = position(&|e| matches!(e, SessionEvent::TurnFinished { .. }));
    assert!(
        agent_ready < running && running < user && user < started && started < assistant,
        "{events:#?}"
    );
    assert!(
        assistant < delta && delta < tool_done && tool_done < done,
        "{events:#?}"
    );
    let tool_states: Vec<ToolState> = events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Tool(call) if call.tool == "write" => Some(call.state),
            _ => None,
        })
        .collect();
    assert_eq!(tool_states.last(), Some(&ToolState::Completed));
    assert!(
        tool_states.contains(&ToolState::Running) || tool_states.contains(&ToolState::Pending),
        "{tool_states:?}"
    );

    // The write reached the workspace: git inside the sandbox sees the new file with exactly
    // what the model wrote (the prompt names the file, but only the tool writes its contents).
    let (status, diff) = den
        .api(Method::GET, &format!("/api/sessions/{session}/diff"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{diff}");
    assert_eq!(diff["source"], "live", "{diff:#}");
    let files = diff["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "only hello.txt changed: {diff:#}");
    assert_eq!(
        (files[0]["path"].as_str(), files[0]["status"].as_str()),
        (Some("hello.txt"), Some("added")),
        "{diff:#}"
    );
    let patch = files[0]["patch"].as_str().unwrap();
    assert!(patch.ends_with("\n+hi from den\n"), "{patch}");
    let (_, record) = den
        .api(Method::GET, &format!("/api/sessions/{session}"), None)
        .await;
    assert_eq!(record["status"], "running");
}

#[tokio::test]
async fn two_clients_see_the_same_events_and_a_reconnecting_client_gets_exactly_the_rest() {
    two_clients_and_a_reconnect(Database::Sqlite).await;
}

/// Also run on PostgreSQL (`crate::postgres`).
pub(crate) async fn two_clients_and_a_reconnect(database: Database) {
    let den = Den::start_on(database).await;
    let gate = Gate::new();
    den.model.push(
        Turn::new()
            .say_deltas(["one ", "two "])
            .hold(&gate)
            .say("three"),
    );
    let session = den.create_session(Some("count")).await;
    let mut first = den.connect(&session, 0).await;
    let mut second = den.connect(&session, 0).await;
    first
        .until(|e| matches!(e, SessionEvent::TextDelta { .. }))
        .await;
    gate.reached().await;

    // The second client leaves mid-turn and comes back with what it had.
    second
        .until(|e| matches!(e, SessionEvent::TextDelta { .. }))
        .await;
    let had = second.events.last().unwrap().seq;
    second.close().await;
    gate.release();
    first.until_turn_finished().await;
    let mut back = den.connect(&session, had).await;
    back.until_turn_finished().await;
    assert_eq!(
        seqs(&back.events),
        ((had + 1)..=first.events.last().unwrap().seq).collect::<Vec<_>>()
    );
    let rest: Vec<_> = first
        .events
        .iter()
        .filter(|e| e.seq > had)
        .cloned()
        .collect();
    assert_eq!(
        back.events, rest,
        "the rejoined client sees exactly what it missed"
    );

    // And a client from the start sees what the first one saw, event for event. What den says
    // after the turn has ended (the diff summary, computed once the turn is over) may already
    // be stored too: the replay is the same up to the turn's end.
    let last = first.events.last().unwrap().seq;
    let mut replay = den.connect(&session, 0).await;
    loop {
        if let ServerMessage::Live { seq } = replay.next().await {
            assert!(
                seq >= last,
                "caught up at {seq}, before the turn's end at {last}"
            );
            break;
        }
    }
    let until_turn_end: Vec<_> = replay
        .events
        .iter()
        .filter(|e| e.seq <= last)
        .cloned()
        .collect();
    assert_eq!(until_turn_end, first.events);
}

#[tokio::test]
async fn a_running_turn_can_be_stopped_and_a_queued_prompt_runs_after_it() {
    stop_then_queued_prompt(Database::Sqlite).await;
}

/// Also run on PostgreSQL (`crate::postgres`).
pub(crate) async fn stop_then_queued_prompt(database: Database) {
    let den = Den::start_on(database).await;
    let gate = Gate::new();
    den.model
        .push(Turn::new().say("working ").hold(&gate).say("never sent"));
    den.model.push(Turn::text("second answer"));
    let session = den.create_session(Some("first")).await;
    let mut socket = den.connect(&session, 0).await;
    socket
        .until(|e| matches!(e, SessionEvent::TextDelta { .. }))
        .await;
    gate.reached().await;

    let queued = den.prompt(&session, "second").await;
    assert_eq!(queued["queued"], true);
    let queue = socket
        .until(|e| matches!(e, SessionEvent::Queue { items } if !items.is_empty()))
        .await;
    let SessionEvent::Queue { items } = queue else {
        unreachable!()
    };
    assert_eq!(items[0].text, "second");

    // The waiting prompt can be edited; a bad edit is refused and changes nothing.
    let item = items[0].id.clone();
    socket
        .send(json!({"type": "edit_queued", "id": item, "text": "  "}))
        .await;
    let refused = socket.next_refusal().await;
    assert!(
        matches!(&refused, ServerMessage::Refused { code, .. } if code == "invalid_request"),
        "{refused:?}"
    );
    socket
        .send(json!({"type": "edit_queued", "id": "not-queued", "text": "x"}))
        .await;
    let refused = socket.next_refusal().await;
    assert!(
        matches!(&refused, ServerMessage::Refused { code, .. } if code == "conflict"),
        "{refused:?}"
    );
    socket
        .send(json!({"type": "edit_queued", "id": item, "text": "the edited follow-up"}))
        .await;
    let edited = socket
        .until(|e| matches!(e, SessionEvent::Queue { .. }))
        .await;
    let SessionEvent::Queue { items } = edited else {
        unreachable!()
    };
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0].id.as_str(), items[0].text.as_str()),
        (item.as_str(), "the edited follow-up")
    );

    let (status, _) = den
        .api(
            Method::POST,
            &format!("/api/sessions/{session}/abort"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let first = socket.until_turn_finished().await;
    assert!(
        matches!(
            first,
            SessionEvent::TurnFinished {
                outcome: TurnOutcome::Aborted,
                ..
            }
        ),
        "{first:?}"
    );
    let second = socket.until_turn_finished().await;
    assert!(
        matches!(
            second,
            SessionEvent::TurnFinished {
                outcome: TurnOutcome::Completed,
                ..
            }
        ),
        "{second:?}"
    );
    let texts = assistant_text(&socket.events);
    assert!(
        texts.contains("second answer") && !texts.contains("never sent"),
        "{texts}"
    );
    let sent = den.model.agent_requests().last().unwrap().transcript();
    assert!(sent.contains("the edited follow-up"), "{sent}");
    gate.release();
}

#[tokio::test]
async fn bad_client_messages_are_refused_and_change_nothing() {
    let den = Den::start().await;
    let session = den.create_session(None).await;
    let mut socket = den.connect(&session, 0).await;
    let live = socket.next().await;
    assert_eq!(live, ServerMessage::Live { seq: 0 });

    for bad in [
        "{not json",
        r#"{"type":"explode"}"#,
        r#"{"type":"prompt"}"#,
        r#"{"type":"prompt","text":"x","extra":1}"#,
    ] {
        socket.send_raw(bad).await;
        let reply = socket.next().await;
        assert!(
            matches!(&reply, ServerMessage::Refused { code, .. } if code == "invalid_message"),
            "{bad}: {reply:?}"
        );
    }
    socket
        .send(json!({"type": "prompt", "text": "x".repeat(200_000)}))
        .await;
    let reply = socket.next().await;
    assert!(
        matches!(&reply, ServerMessage::Refused { code, .. } if code == "invalid_request"),
        "{reply:?}"
    );
    socket.send(json!({"type": "prompt", "text": "   "})).await;
    assert!(matches!(socket.next().await, ServerMessage::Refused { .. }));
    socket.send(json!({"type": "ping"})).await;
    assert_eq!(socket.next().await, ServerMessage::Pong);
    assert!(
        socket.events.is_empty(),
        "refused messages recorded events: {:?}",
        socket.events
    );
    let (_, record) = den
        .api(Method::GET, &format!("/api/sessions/{session}"), None)
        .await;
    assert_eq!(record["status"], "idle", "nothing started");

    // Another user's session does not exist for them, on the WebSocket as on REST.
    den.add_user("mallory").await;
    let mallory = den.sign_in("mallory").await;
    let refused = den
        .connect_as(&mallory, &session, 0)
        .await
        .err()
        .expect("mallory connected");
    assert!(refused.to_string().contains("404"), "{refused}");
    let (status, _) = den
        .api_as(
            &mallory,
            Method::POST,
            &format!("/api/sessions/{session}/prompt"),
            Some(json!({"text": "hi"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Reads Server-Sent Events frames from `response` until `stop` matches one; returns them as
/// (event, id, data).
pub(crate) async fn sse_frames(
    response: reqwest::Response,
    stop: impl Fn(&str, &str) -> bool,
) -> Vec<(String, String, String)> {
    use futures::StreamExt;
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut frames = Vec::new();
    // One deadline for the whole read: keep-alive comments must not extend it.
    let deadline = tokio::time::Instant::now() + crate::harness::WITHIN;
    loop {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("no SSE frame in time");
        buffer.push_str(&String::from_utf8_lossy(
            &chunk.expect("stream ended").unwrap(),
        ));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                frame
                    .lines()
                    .filter_map(|l| l.strip_prefix(&format!("{name}:")))
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let (event, id, data) = (field("event"), field("id"), field("data"));
            if event.is_empty() && data.is_empty() {
                continue; // keep-alive comment
            }
            let done = stop(&event, &data);
            frames.push((event, id, data));
            if done {
                return frames;
            }
        }
    }
}

#[tokio::test]
async fn the_sse_stream_resumes_from_last_event_id_and_the_session_list_streams_changes() {
    let den = Den::start().await;
    den.model.push(Turn::text("hello over SSE"));
    let session = den.create_session(Some("hi")).await;
    let mut socket = den.connect(&session, 0).await;
    socket.until_turn_finished().await;
    let last = socket.events.last().unwrap().seq;

    let url = format!("{}/api/sessions/{session}/events?after=1", den.base);
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&den.token)
        .header("last-event-id", "3")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let frames = sse_frames(response, |event, _| event == "live").await;
    let ids: Vec<i64> = frames
        .iter()
        .filter(|f| f.0 == "event")
        .map(|f| f.1.parse().unwrap())
        .collect();
    assert_eq!(
        ids,
        (4..=last).collect::<Vec<_>>(),
        "Last-Event-ID wins over after, and nothing is skipped"
    );
    let first: den_protocol::events::SequencedEvent = serde_json::from_str(&frames[0].2).unwrap();
    assert_eq!(first, socket.events[3]);

    // Every open list of the owner hears a rename.
    let url = format!("{}/api/sessions/stream", den.base);
    let list = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&den.token)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    let (status, _) = den
        .api(
            Method::PATCH,
            &format!("/api/sessions/{session}"),
            Some(json!({"title": "renamed live"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let frames = sse_frames(list, |_, data| data.contains("renamed live")).await;
    let update: den_protocol::events::SessionListUpdate =
        serde_json::from_str(&frames.last().unwrap().2).unwrap();
    assert!(
        matches!(update, den_protocol::events::SessionListUpdate::Upsert { session: ref s } if s.title == "renamed live")
    );
}

#[tokio::test]
async fn the_agent_never_waits_for_a_permission_nobody_can_give() {
    // Nobody can answer OpenCode's permission prompts from den yet: a repeated tool call (its
    // "doom loop" check), a read outside the workspace, or a repository whose own config asks
    // before every command must not stall the turn.
    let den = Den::start().await;
    crate::harness::commit_file(
        &den.repo,
        "opencode.json",
        r#"{"permission": {"bash": "ask", "read": "ask", "edit": "ask"}}"#,
    )
    .await;
    den.model
        .push(Turn::new().bash("echo ran > ran.txt", "write a file"));
    for _ in 0..3 {
        den.model.push(Turn::new().read("README.md"));
    }
    den.model.push(Turn::new().read("/etc/hosts"));
    den.model.push(Turn::text("Read them all."));
    let session = den
        .create_session(Some("read the readme, again and again"))
        .await;
    let mut socket = den.connect(&session, 0).await;
    let finished = socket.until_turn_finished().await;
    assert!(
        matches!(
            finished,
            SessionEvent::TurnFinished {
                outcome: TurnOutcome::Completed,
                ..
            }
        ),
        "{finished:?}"
    );
    let completed_reads = socket
        .events
        .iter()
        .filter(|e| {
            matches!(&e.event, SessionEvent::Tool(call) if call.tool == "read" && call.state == ToolState::Completed)
        })
        .count();
    assert_eq!(completed_reads, 4, "{:#?}", socket.events);
    assert!(
        socket.events.iter().any(|e| matches!(&e.event, SessionEvent::Tool(call) if call.tool == "bash" && call.state == ToolState::Completed)),
        "{:#?}",
        socket.events
    );
    assert!(assistant_text(&socket.events).contains("Read them all."));
}
