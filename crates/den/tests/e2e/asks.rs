//! The person in the loop: the agent's questions and, in `ask` mode, its permission asks.

use den_protocol::asks::{AskClosed, AskOutcome, PermissionAsk, QuestionAsk};
use den_protocol::events::{SequencedEvent, SessionEvent, TurnOutcome};
use den_test_support::Turn;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Den, Socket, commit_file};

/// Creates a session on the test repository in approval mode `mode`, with a first prompt.
async fn create_in_mode(den: &Den, mode: &str, prompt: &str) -> String {
    let model = format!(
        "{}/{}",
        den_test_support::OPENAI_PROVIDER,
        den_test_support::OPENAI_MODEL
    );
    let body = json!({"repository": den.repo.display().to_string(), "model": model,
        "prompt": prompt, "approvalMode": mode});
    let (status, session) = den.api(Method::POST, "/api/sessions", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(session["approvalMode"], mode, "{session}");
    session["id"].as_str().unwrap().to_owned()
}

async fn until_permission(socket: &mut Socket) -> PermissionAsk {
    match socket
        .until(|e| matches!(e, SessionEvent::PermissionAsked(_)))
        .await
    {
        SessionEvent::PermissionAsked(ask) => ask,
        _ => unreachable!(),
    }
}

async fn until_closed(socket: &mut Socket, ask_id: &str) -> AskClosed {
    match socket
        .until(|e| matches!(e, SessionEvent::AskClosed(closed) if closed.ask_id == ask_id))
        .await
    {
        SessionEvent::AskClosed(closed) => closed,
        _ => unreachable!(),
    }
}

async fn answer(den: &Den, session: &str, ask_id: &str, reply: Value) -> (StatusCode, Value) {
    den.api(
        Method::POST,
        &format!("/api/sessions/{session}/asks/{ask_id}"),
        Some(reply),
    )
    .await
}

/// The files the session changed, by path (git inside the sandbox).
async fn changed_files(den: &Den, session: &str) -> Vec<String> {
    let (status, diff) = den
        .api(Method::GET, &format!("/api/sessions/{session}/diff"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{diff}");
    diff["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file["path"].as_str().unwrap().to_owned())
        .collect()
}

fn asked(events: &[SequencedEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e.event, SessionEvent::PermissionAsked(_)))
        .count()
}

#[tokio::test]
async fn a_question_with_options_is_answered_from_a_second_client() {
    let den = Den::start().await;
    den.model.push(Turn::new().question(
        "Which colour should the button be?",
        "Button colour",
        &["blue", "red"],
    ));
    den.model.push(Turn::text("Blue it is."));
    let session = den.create_session(Some("make a button")).await;
    let mut first = den.connect(&session, 0).await;
    let question: QuestionAsk = match first
        .until(|e| matches!(e, SessionEvent::QuestionAsked(_)))
        .await
    {
        SessionEvent::QuestionAsked(question) => question,
        _ => unreachable!(),
    };
    assert_eq!(question.questions.len(), 1);
    let asked = &question.questions[0];
    assert_eq!(asked.question, "Which colour should the button be?");
    let labels: Vec<&str> = asked.options.iter().map(|o| o.label.as_str()).collect();
    assert_eq!(labels, ["blue", "red"]);
    // OpenCode 1.18.33's question tool always allows a typed answer.
    assert!(asked.free_text);
    assert!(!asked.multiple);

    // Bad answers are refused clearly and change nothing.
    let id = &question.ask_id;
    let (status, body) = answer(&den, &session, id, json!({"reply": "once"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = answer(
        &den,
        &session,
        id,
        json!({"reply": "answer", "answers": [["blue", "red"]]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("one answer"),
        "{body}"
    );
    let (status, body) = answer(
        &den,
        &session,
        id,
        json!({"reply": "answer", "answers": []}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = answer(&den, &session, "que_nope", json!({"reply": "reject"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    den.add_user("mallory").await;
    let mallory = den.sign_in("mallory").await;
    let (status, body) = den
        .api_as(
            &mallory,
            Method::POST,
            &format!("/api/sessions/{session}/asks/{id}"),
            Some(json!({"reply": "answer", "answers": [["red"]]})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // A second client, connected afterwards, sees the question pending and answers it over
    // its WebSocket.
    let mut second = den.connect(&session, 0).await;
    second
        .until(|e| matches!(e, SessionEvent::QuestionAsked(q) if q.ask_id == *id))
        .await;
    second
        .send(json!({"type": "answer", "askId": id, "reply": {"reply": "answer", "answers": [["blue"]]}}))
        .await;
    let closed = until_closed(&mut second, id).await;
    assert_eq!(closed.outcome, AskOutcome::Answered);
    assert_eq!(closed.by.as_deref(), Some("alice"));
    assert_eq!(closed.answers, Some(vec![vec!["blue".to_owned()]]));
    // The first client hears it too, and the turn goes on with the answer.
    until_closed(&mut first, id).await;
    let finished = first.until_turn_finished().await;
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
    let last = den.model.agent_requests().last().unwrap().transcript();
    assert!(last.contains("blue"), "the model heard the answer: {last}");

    // Answering again is a conflict.
    let (status, body) = answer(
        &den,
        &session,
        id,
        json!({"reply": "answer", "answers": [["red"]]}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn in_ask_mode_a_rejected_command_does_not_run_once_and_always_let_it_run() {
    let den = Den::start().await;
    // Rejected: the turn ends without running the command.
    den.model
        .push(Turn::new().bash("echo ran > rejected.txt", "Write a file"));
    // With a message the agent hears why and goes on.
    den.model.push(Turn::text("Understood."));
    let session = create_in_mode(&den, "ask", "write rejected.txt").await;
    let mut socket = den.connect(&session, 0).await;
    let ask = until_permission(&mut socket).await;
    assert_eq!(ask.permission, "bash");
    assert_eq!(ask.command.as_deref(), Some("echo ran > rejected.txt"));
    let (status, body) = answer(
        &den,
        &session,
        &ask.ask_id,
        json!({"reply": "answer", "answers": [["x"]]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = answer(
        &den,
        &session,
        &ask.ask_id,
        json!({"reply": "reject", "message": "not now"}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let closed = until_closed(&mut socket, &ask.ask_id).await;
    assert_eq!(closed.outcome, AskOutcome::Rejected);
    assert_eq!(closed.message.as_deref(), Some("not now"));
    socket.until_turn_finished().await;
    assert!(
        !changed_files(&den, &session)
            .await
            .contains(&"rejected.txt".to_owned()),
        "the rejected command did not run"
    );

    // Approved once: it runs.
    den.model
        .push(Turn::new().bash("echo ran > approved.txt", "Write a file"));
    den.model.push(Turn::text("Done."));
    den.prompt(&session, "write approved.txt").await;
    let ask = until_permission(&mut socket).await;
    let (status, body) = answer(&den, &session, &ask.ask_id, json!({"reply": "once"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        until_closed(&mut socket, &ask.ask_id).await.outcome,
        AskOutcome::Once
    );
    socket.until_turn_finished().await;
    let files = changed_files(&den, &session).await;
    assert!(files.contains(&"approved.txt".to_owned()), "{files:?}");
    assert!(!files.contains(&"rejected.txt".to_owned()), "{files:?}");

    // "Always" covers the next identical request: one ask for two runs.
    den.model
        .push(Turn::new().bash("echo again >> always.txt", "Append"));
    den.model
        .push(Turn::new().bash("echo again >> always.txt", "Append"));
    den.model.push(Turn::text("Twice."));
    den.prompt(&session, "append twice").await;
    let before = asked(&socket.events);
    let ask = until_permission(&mut socket).await;
    let (status, body) = answer(&den, &session, &ask.ask_id, json!({"reply": "always"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    socket.until_turn_finished().await;
    assert_eq!(
        asked(&socket.events),
        before + 1,
        "asked once for both runs"
    );
    let files = changed_files(&den, &session).await;
    assert!(files.contains(&"always.txt".to_owned()), "{files:?}");
    let (_, diff) = den
        .api(Method::GET, &format!("/api/sessions/{session}/diff"), None)
        .await;
    let patch = diff.to_string();
    assert_eq!(patch.matches("+again").count(), 2, "both runs ran: {patch}");

    // Back to auto: the next command runs without asking.
    let (status, body) = den
        .api(
            Method::PUT,
            &format!("/api/sessions/{session}/approval-mode"),
            Some(json!({"mode": "auto"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["approvalMode"], "auto");
    den.model
        .push(Turn::new().bash("echo auto > auto.txt", "Write"));
    den.model.push(Turn::text("Done."));
    den.prompt(&session, "write auto.txt").await;
    let before = asked(&socket.events);
    socket.until_turn_finished().await;
    assert_eq!(asked(&socket.events), before, "auto does not ask");
    assert!(
        changed_files(&den, &session)
            .await
            .contains(&"auto.txt".to_owned())
    );
    let (status, body) = den
        .api(
            Method::PUT,
            &format!("/api/sessions/{session}/approval-mode"),
            Some(json!({"mode": "sometimes"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn a_pending_ask_survives_a_reconnect_and_a_den_restart_expires_it() {
    let mut den = Den::start().await;
    den.model
        .push(Turn::new().bash("echo ran > pending.txt", "Write a file"));
    let session = create_in_mode(&den, "ask", "write pending.txt").await;
    let mut socket = den.connect(&session, 0).await;
    let ask = until_permission(&mut socket).await;
    socket.close().await;

    // A client that reconnects after the ask sees it, still pending.
    let mut again = den.connect(&session, 0).await;
    again
        .until(|e| matches!(e, SessionEvent::PermissionAsked(a) if a.ask_id == ask.ask_id))
        .await;
    again.close().await;

    den.kill_and_restart().await;
    let mut after = den.connect(&session, 0).await;
    let closed = until_closed(&mut after, &ask.ask_id).await;
    assert_eq!(closed.outcome, AskOutcome::Expired);
    assert_eq!(closed.by, None);
    let (status, body) = answer(&den, &session, &ask.ask_id, json!({"reply": "once"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn a_repository_config_cannot_turn_asks_off_and_an_unanswered_ask_expires() {
    let den = Den::start_with("sandbox.ask_timeout_seconds = 3\n").await;
    // Everything a repository's OpenCode config can say to allow commands without asking.
    let allow = json!({
        "permission": {"bash": "allow", "edit": "allow", "*": "allow"},
        "agent": {"build": {"permission": {"bash": "allow", "edit": "allow"}}},
    })
    .to_string();
    commit_file(&den.repo, "opencode.json", &allow).await;
    std::fs::create_dir_all(den.repo.join(".opencode")).unwrap();
    commit_file(&den.repo, ".opencode/opencode.json", &allow).await;
    den.model
        .push(Turn::new().bash("echo ran > sneaky.txt", "Write a file"));
    let session = create_in_mode(&den, "ask", "write sneaky.txt").await;
    let mut socket = den.connect(&session, 0).await;
    let ask = until_permission(&mut socket).await;
    assert_eq!(ask.command.as_deref(), Some("echo ran > sneaky.txt"));

    // Nobody answers: it expires as refused, and the command never runs.
    let closed = until_closed(&mut socket, &ask.ask_id).await;
    assert_eq!(closed.outcome, AskOutcome::Expired);
    socket.until_turn_finished().await;
    assert!(
        !changed_files(&den, &session)
            .await
            .contains(&"sneaky.txt".to_owned())
    );
}
