//! Pause and resume, den killed mid-turn, a sandbox killed mid-turn.

use den_protocol::events::{SessionEvent, TurnOutcome};
use den_test_support::{Gate, Turn};
use reqwest::{Method, StatusCode};

use crate::harness::{Database, Den, seqs};

#[tokio::test]
async fn pause_and_resume_continue_the_same_conversation() {
    pause_and_resume(Database::Sqlite).await;
}

/// Also run on PostgreSQL (`crate::postgres`).
pub(crate) async fn pause_and_resume(database: Database) {
    let den = Den::start_on(database).await;
    den.model.push(Turn::text("The secret word is marmalade."));
    let session = den.create_session(Some("remember a word")).await;
    let mut socket = den.connect(&session, 0).await;
    socket.until_turn_finished().await;

    let (status, body) = den
        .api(
            Method::POST,
            &format!("/api/sessions/{session}/pause"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, record) = den
        .api(Method::GET, &format!("/api/sessions/{session}"), None)
        .await;
    assert_eq!(record["status"], "paused");

    // A prompt to a paused session resumes it from the snapshot, in the same conversation.
    den.model.push(Turn::text("It was marmalade."));
    den.prompt(&session, "what was the word?").await;
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
    assert!(socket.events.iter().any(|e| matches!(
        e.event,
        SessionEvent::Progress {
            step: den_protocol::events::ProgressStep::Restore,
            ..
        }
    )));
    let last = den.model.agent_requests().last().unwrap().transcript();
    assert!(
        last.contains("remember a word")
            && last.contains("marmalade")
            && last.contains("what was the word?"),
        "{last}"
    );
}

#[tokio::test]
async fn den_killed_mid_turn_keeps_history_and_the_next_prompt_works() {
    den_killed_mid_turn(Database::Sqlite).await;
}

/// Also run on PostgreSQL (`crate::postgres`).
pub(crate) async fn den_killed_mid_turn(database: Database) {
    let mut den = Den::start_on(database).await;
    let gate = Gate::new();
    den.model
        .push(Turn::new().say("partial ").hold(&gate).say("lost"));
    let session = den.create_session(Some("start something")).await;
    let mut socket = den.connect(&session, 0).await;
    socket
        .until(|e| matches!(e, SessionEvent::TextDelta { .. }))
        .await;
    gate.reached().await;
    let seen = socket.events.clone();

    den.kill_and_restart().await;
    gate.release();
    let mut after = den.connect(&session, 0).await;
    let interrupted = after.until_turn_finished().await;
    assert!(
        matches!(
            interrupted,
            SessionEvent::TurnFinished {
                outcome: TurnOutcome::Interrupted,
                ..
            }
        ),
        "{interrupted:?}"
    );
    assert_eq!(
        seqs(&after.events),
        (1..=after.events.len() as i64).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    assert_eq!(
        &after.events[..seen.len()],
        &seen[..],
        "every acknowledged event survived"
    );
    let (_, record) = den
        .api(Method::GET, &format!("/api/sessions/{session}"), None)
        .await;
    assert!(
        record["status"] == "idle" || record["status"] == "paused",
        "{record}"
    );

    den.model.push(Turn::text("back again"));
    den.prompt(&session, "are you there?").await;
    let finished = after.until_turn_finished().await;
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
}

/// The OpenCode process among den's descendants.
pub(crate) fn opencode_pid(den_pid: u32) -> Option<i32> {
    let parent_of = |pid: i32| -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let descends = |mut pid: i32| {
        for _ in 0..32 {
            match parent_of(pid) {
                Some(parent) if parent == den_pid as i32 => return true,
                Some(parent) if parent > 1 => pid = parent,
                _ => return false,
            }
        }
        false
    };
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.starts_with("/opt/opencode/bin/opencode")
                && cmdline.contains("serve")
                && descends(*pid)
        })
}

#[tokio::test]
async fn a_sandbox_killed_mid_turn_moves_the_session_to_error_and_the_next_prompt_recovers() {
    let den = Den::start().await;
    den.model.push(Turn::text("first answer"));
    let session = den.create_session(Some("first")).await;
    let mut socket = den.connect(&session, 0).await;
    socket.until_turn_finished().await;

    let gate = Gate::new();
    den.model
        .push(Turn::new().say("going ").hold(&gate).say("gone"));
    den.prompt(&session, "second").await;
    socket
        .until(|e| matches!(e, SessionEvent::TextDelta { delta, .. } if delta.contains("going")))
        .await;
    gate.reached().await;
    let pid = opencode_pid(den.pid()).expect("OpenCode runs under den");
    let killed = tokio::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(killed.success());

    let error = socket
        .until(|e| {
            matches!(
                e,
                SessionEvent::Status {
                    status: den_protocol::sessions::SessionStatus::Error,
                    ..
                }
            )
        })
        .await;
    let SessionEvent::Status {
        error: Some(reason),
        ..
    } = error
    else {
        panic!("{error:?}")
    };
    assert!(reason.contains("agent"), "{reason}");
    assert!(socket.events.iter().any(|e| matches!(
        e.event,
        SessionEvent::TurnFinished {
            outcome: TurnOutcome::Interrupted,
            ..
        }
    )));
    gate.release();

    den.model.push(Turn::text("recovered"));
    den.prompt(&session, "third").await;
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
    let last = den.model.agent_requests().last().unwrap().transcript();
    assert!(
        last.contains("first answer"),
        "recovered from the snapshot after the first turn: {last}"
    );
}
