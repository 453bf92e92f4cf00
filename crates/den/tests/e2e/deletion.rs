//! Deleting a session while its turn runs, and while its sandbox is still starting: the
//! session is gone for good (records, sandbox, checkout, snapshots, processes, mounts), the
//! owner's session list hears it, and its live connections end.

use den_protocol::events::{ProgressStep, SessionEvent, SessionListUpdate, StepState};
use den_test_support::{Gate, Turn};
use reqwest::{Method, StatusCode};

use crate::harness::{Den, Socket};

/// Opens the owner's session-list stream (before the change it should hear).
async fn session_list(den: &Den) -> reqwest::Response {
    let list = reqwest::Client::new()
        .get(format!("{}/api/sessions/stream", den.base))
        .bearer_auth(&den.token)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    list
}

/// Deletes `session`, then checks everything a user or the host could still find of it.
async fn delete_and_check_nothing_is_left(den: &Den, session: &str, socket: &mut Socket) {
    let list = session_list(den).await;
    let path = format!("/api/sessions/{session}");
    let (status, body) = den.api(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // The owner's open lists hear the removal; the session's own connection ends.
    let frames = crate::turns::sse_frames(list, |_, data| data.contains(session)).await;
    let update: SessionListUpdate = serde_json::from_str(&frames.last().unwrap().2).unwrap();
    assert!(
        matches!(update, SessionListUpdate::Removed { id } if id.to_string() == session),
        "{update:?}"
    );
    socket.read_to_end().await;

    // The API has no trace of it.
    for path in [
        path.clone(),
        format!("{path}/events"),
        format!("{path}/diff"),
    ] {
        let (status, body) = den.api(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (_, listing) = den.api(Method::GET, "/api/sessions", None).await;
    assert!(!listing.to_string().contains(session), "{listing}");

    // The host has none: no file or directory named after it anywhere in den's data (checkout,
    // snapshots), no sandbox directory, no process as a sandbox user, no mount in den's data.
    let data = den.data_dir.path();
    let named: Vec<_> = walk(data)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(session))
        .collect();
    assert!(named.is_empty(), "left behind: {named:?}");
    let sandboxes: Vec<_> = std::fs::read_dir(data.join("sandboxes/sandboxes"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(sandboxes.is_empty(), "sandboxes left: {sandboxes:?}");
    let uids = den.uid_base..den.uid_base + 10_000;
    let processes: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            let uid: u32 = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            let zombie = status.lines().any(|l| l.starts_with("State:\tZ"));
            (uids.contains(&uid) && !zombie).then(|| status.lines().next().unwrap().to_owned())
        })
        .collect();
    assert!(
        processes.is_empty(),
        "sandbox processes left: {processes:?}"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let data_text = data.to_string_lossy();
    let left: Vec<&str> = mounts
        .lines()
        .filter(|line| line.contains(data_text.as_ref()))
        .collect();
    assert!(left.is_empty(), "mounts left: {left:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

#[tokio::test]
async fn deleting_a_session_mid_turn_stops_it_and_leaves_nothing() {
    let den = Den::start().await;
    let gate = Gate::new();
    den.model
        .push(Turn::new().say("working ").hold(&gate).say("never seen"));
    let session = den.create_session(Some("work for a while")).await;
    let mut socket = den.connect(&session, 0).await;
    socket
        .until(|e| matches!(e, SessionEvent::TextDelta { .. }))
        .await;
    gate.reached().await;
    let (_, record) = den
        .api(Method::GET, &format!("/api/sessions/{session}"), None)
        .await;
    assert_eq!(record["status"], "running", "the turn runs: {record}");

    delete_and_check_nothing_is_left(&den, &session, &mut socket).await;
    assert!(
        !socket.events.iter().any(|e| matches!(
            &e.event,
            SessionEvent::TextDelta { delta, .. } if delta.contains("never seen")
        )),
        "the turn went on after the delete"
    );
    gate.release();
}

#[tokio::test]
async fn deleting_a_session_while_its_sandbox_starts_leaves_nothing() {
    let den = Den::start().await;
    den.model.push(Turn::text("never asked"));
    let session = den.create_session(Some("start and go")).await;
    let mut socket = den.connect(&session, 0).await;
    // OpenCode is booting: seconds in which the start is under way.
    socket
        .until(|e| {
            matches!(
                e,
                SessionEvent::Progress {
                    step: ProgressStep::Agent,
                    state: StepState::Started,
                    ..
                }
            )
        })
        .await;
    delete_and_check_nothing_is_left(&den, &session, &mut socket).await;
    let started = socket.events.iter().any(|e| {
        matches!(
            e.event,
            SessionEvent::Progress {
                step: ProgressStep::Ready,
                state: StepState::Done,
                ..
            }
        )
    });
    assert!(
        !started && den.model.agent_requests().is_empty(),
        "the delete came after the start finished: this test checks a delete during the start"
    );
}
