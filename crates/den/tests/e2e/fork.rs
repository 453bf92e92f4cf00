//! Forks and share links with the real OpenCode: a fork has its source's files and continues
//! its conversation on a branch of its own, leaving the source as it was; a share link's viewer
//! watches a real turn stream by.

use den_protocol::events::{SessionEvent, TurnOutcome};
use den_protocol::sessions::SessionStatus;
use den_test_support::Turn;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::Den;

fn diff_paths(diff: &Value) -> Vec<String> {
    let mut paths: Vec<String> = diff["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect();
    paths.sort_unstable();
    paths
}

#[tokio::test]
async fn a_fork_has_the_source_files_and_conversation_and_the_source_is_unchanged() {
    let den = Den::start().await;
    den.model
        .push(Turn::new().bash("printf 'from the source\\n' > source.txt", "write a file"));
    den.model.push(Turn::text(
        "Wrote source.txt. The secret word is marmalade.",
    ));
    let source = den
        .create_session(Some("write source.txt and remember a word"))
        .await;
    let mut socket = den.connect(&source, 0).await;
    socket.until_turn_finished().await;
    let source_path = format!("/api/sessions/{source}");
    let (_, before) = den.api(Method::GET, &source_path, None).await;

    let (status, forked) = den
        .api(
            Method::POST,
            &format!("{source_path}/fork"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{forked}");
    let fork = forked["sessions"][0].clone();
    let fork_id = fork["id"].as_str().unwrap().to_owned();
    assert_ne!(fork_id, source);
    assert_eq!(fork["status"], "paused");
    assert_ne!(fork["workBranch"], before["workBranch"]);
    assert_eq!(fork["repository"], before["repository"]);
    assert!(
        fork["title"].as_str().unwrap().ends_with("(fork)"),
        "{fork}"
    );
    // The fork's changes before it ever ran: the source's, saved after its turn.
    let (status, diff) = den
        .api(Method::GET, &format!("/api/sessions/{fork_id}/diff"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{diff}");
    assert_eq!(diff_paths(&diff), ["source.txt"], "{diff:#}");

    // The fork's history starts with the source's turn; its first prompt continues the
    // conversation in the fork's own sandbox, with the source's files.
    let mut fork_socket = den.connect(&fork_id, 0).await;
    fork_socket
        .until(|e| {
            matches!(
                e,
                SessionEvent::Status {
                    status: SessionStatus::Paused,
                    ..
                }
            )
        })
        .await;
    assert!(
        fork_socket
            .events
            .iter()
            .any(|e| matches!(&e.event, SessionEvent::TurnStarted { prompt, .. } if prompt == "write source.txt and remember a word")),
        "the fork's history holds the source's turn"
    );
    den.model.push(Turn::new().bash(
        "cat source.txt && printf 'from the fork\\n' > fork.txt",
        "read and write",
    ));
    den.model.push(Turn::text("The word was marmalade."));
    den.prompt(&fork_id, "what was the word?").await;
    let finished = fork_socket.until_turn_finished().await;
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
    assert!(
        last.contains("write source.txt and remember a word")
            && last.contains("marmalade")
            && last.contains("what was the word?")
            && last.contains("from the source"),
        "the fork's model request lacks the source's conversation or files: {last}"
    );
    fork_socket
        .until(|e| matches!(e, SessionEvent::DiffChanged { .. }))
        .await;
    let (_, diff) = den
        .api(Method::GET, &format!("/api/sessions/{fork_id}/diff"), None)
        .await;
    assert_eq!(diff_paths(&diff), ["fork.txt", "source.txt"], "{diff:#}");

    // The source is as it was: same branch, title and history, and none of the fork's files.
    let (_, after) = den.api(Method::GET, &source_path, None).await;
    for field in ["title", "workBranch", "status", "model"] {
        assert_eq!(after[field], before[field], "{field}");
    }
    let (_, source_diff) = den
        .api(Method::GET, &format!("{source_path}/diff"), None)
        .await;
    assert_eq!(diff_paths(&source_diff), ["source.txt"], "{source_diff:#}");
    assert!(
        !socket.events.iter().any(|e| matches!(
            &e.event,
            SessionEvent::TurnStarted { prompt, .. } if prompt == "what was the word?"
        )),
        "the fork's turn reached the source's history"
    );
}

#[tokio::test]
async fn a_share_link_viewer_watches_a_real_turn_and_sees_only_the_transcript() {
    let den = Den::start().await;
    let source = den.create_session(None).await;
    let (status, share) = den
        .api(
            Method::POST,
            &format!("/api/sessions/{source}/shares"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{share}");
    let token = share["token"].as_str().unwrap();
    // No credential: the link alone.
    let mut viewer = reqwest::Client::new()
        .get(format!("{}/api/shared/{token}/events", den.base))
        .send()
        .await
        .unwrap();
    assert_eq!(viewer.status(), StatusCode::OK);

    den.model
        .push(Turn::new().bash("printf 'x\\n' > x.txt", "write"));
    den.model.push(Turn::text("Shared hello from the agent."));
    den.prompt(&source, "say hello to the viewers").await;

    let mut text = String::new();
    let mut kinds = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    while !kinds.iter().any(|k| k == "turn_finished") {
        let chunk = tokio::time::timeout_at(deadline, viewer.chunk())
            .await
            .expect("the viewer saw the turn end in time")
            .unwrap()
            .expect("the viewer's stream stayed open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        kinds = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .filter_map(|event| event["event"]["type"].as_str().map(str::to_owned))
            .collect();
    }
    for expected in ["turn_started", "message", "tool", "turn_finished"] {
        assert!(
            kinds.iter().any(|k| k == expected),
            "{expected} in {kinds:?}"
        );
    }
    assert!(text.contains("say hello to the viewers"));
    for private in ["progress", "diff_changed", "turn_usage", "queue", "agent"] {
        assert!(
            !kinds.iter().any(|k| k == private),
            "{private} shown: {kinds:?}"
        );
    }
    assert!(!text.contains(&den.repo.display().to_string()), "{text}");
}
