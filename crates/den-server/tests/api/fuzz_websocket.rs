//! The session WebSocket fed random frames (`scripts/fuzz` raises the count with
//! `DEN_FUZZ_WS_FRAMES`): text that is not JSON, JSON of the wrong shape, commands with random
//! fields, binary frames. Each is refused or handled, the connection stays usable (a ping is
//! still answered) and nothing starts. Prompts and resumes are left out: a valid one would
//! start a sandbox, and their checks have tests of their own.

use futures::{SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{Auth, TestServer};

fn frames() -> usize {
    std::env::var("DEN_FUZZ_WS_FRAMES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

fn any_frame() -> impl Strategy<Value = Message> {
    let value = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
        Just(json!({"nested": [1, {"deep": null}]})),
        Just(Value::from("x".repeat(70_000))),
    ];
    let command = (
        prop_oneof![
            Just("abort"),
            Just("pause"),
            Just("dequeue"),
            Just("edit_queued"),
            Just("clear_queue"),
            Just("ping"),
            Just("Prompt"),
            Just(""),
        ],
        prop::collection::btree_map(
            prop_oneof![Just("id".to_owned()), Just("text".to_owned()), "[a-z]{1,6}"],
            value,
            0..4,
        ),
    )
        .prop_map(|(kind, fields)| {
            let mut object: serde_json::Map<String, Value> = fields.into_iter().collect();
            object.insert("type".to_owned(), Value::from(kind));
            Message::text(Value::Object(object).to_string())
        });
    prop_oneof![
        3 => command,
        1 => ".{0,60}".prop_map(Message::text),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Message::binary),
        1 => Just(Message::text("{\"type\":\"ping\"")),
    ]
}

#[tokio::test]
async fn random_frames_are_refused_and_leave_the_connection_usable() {
    let server = TestServer::start_live().await;
    let user = server.user("alice").await;
    let (_, session) = server
        .call(
            Method::POST,
            "/api/sessions",
            Auth::Bearer(&user),
            Some(json!({"repository": server.repository.as_deref().unwrap()})),
        )
        .await;
    let id = session["id"].as_str().unwrap().to_owned();
    let url = format!(
        "{}/api/sessions/{id}/ws",
        server.base.replacen("http://", "ws://", 1)
    );
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", user.token).parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();

    let strategy = any_frame();
    let mut runner = TestRunner::default();
    let mut sent = Vec::new();
    for _ in 0..frames() {
        let frame = strategy.new_tree(&mut runner).unwrap().current();
        sent.push(frame.clone());
        socket.send(frame).await.unwrap_or_else(|err| {
            panic!(
                "the connection broke after {} frames ({:?}): {err}",
                sent.len(),
                sent.last()
            )
        });
    }
    socket
        .send(Message::text(r#"{"type":"ping"}"#))
        .await
        .unwrap();
    let pong = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(message) = socket.next().await {
            let message = message.unwrap_or_else(|err| {
                panic!("the connection broke after {} frames: {err}", sent.len())
            });
            if let Message::Text(text) = message
                && serde_json::from_str::<Value>(&text).is_ok_and(|v| v["type"] == "pong")
            {
                return true;
            }
        }
        false
    })
    .await
    .expect("no pong within 30 s");
    assert!(
        pong,
        "the server closed the connection after {} random frames",
        sent.len()
    );

    // Nothing started: the session never left idle.
    let (_, after) = server
        .call(
            Method::GET,
            &format!("/api/sessions/{id}"),
            Auth::Bearer(&user),
            None,
        )
        .await;
    assert_eq!(after["status"], "idle", "{after}");
    let _ = socket.close(None).await;
    server.stop().await;
}
