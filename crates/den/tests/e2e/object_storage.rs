//! Snapshots in S3-compatible object storage: a real S3 server (s3s-fs, in this test's process,
//! SigV4 checked) and den configured with `snapshots.url` and the `AWS_*` environment.

use den_protocol::events::{ProgressStep, SessionEvent, TurnOutcome};
use den_s3::LocalS3Server;
use den_test_support::Turn;
use reqwest::{Method, StatusCode};

use crate::harness::Den;

const ACCESS_KEY: &str = "AKIDE2ESNAPSHOTS";
const SECRET_KEY: &str = "e2e-secret-Q2hhbmdlTWVQbGVhc2U";

/// The snapshot objects under the bucket's `nodes/snapshots/`.
fn snapshot_objects(server: &LocalS3Server) -> Vec<String> {
    let dir = server.root().join("den-e2e/nodes/snapshots");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tar.zst"))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_session_pauses_and_resumes_from_object_storage() {
    let storage = tempfile::tempdir().unwrap();
    let server = LocalS3Server::start(storage.path(), "den-e2e", ACCESS_KEY, SECRET_KEY)
        .await
        .unwrap();
    let den = Den::start_with_env(
        "[snapshots]\nurl = \"s3://den-e2e/nodes\"\n",
        server.environment(),
    )
    .await;
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
    let first = snapshot_objects(&server);
    assert_eq!(first.len(), 1, "one snapshot in object storage: {first:?}");
    assert!(first[0].starts_with(&session), "{first:?}");
    // Nothing of it on the node's disk: another node could restore it.
    let local = den.data_dir.path().join("snapshots");
    let on_disk: Vec<_> = walk_files(&local)
        .into_iter()
        .filter(|p| p.ends_with(".tar.zst") || p.ends_with(".partial"))
        .collect();
    assert!(on_disk.is_empty(), "{on_disk:?}");

    // A prompt resumes it from the object, in the same conversation.
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
            step: ProgressStep::Restore,
            ..
        }
    )));
    let last = den.model.agent_requests().last().unwrap().transcript();
    assert!(
        last.contains("marmalade") && last.contains("what was the word?"),
        "{last}"
    );

    // The turn's snapshot replaced the first one: recorded first, then the old one deleted.
    let (status, body) = den
        .api(
            Method::POST,
            &format!("/api/sessions/{session}/pause"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let second = snapshot_objects(&server);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second, first);
    // The downloaded copy used for the restore is gone.
    let downloads: Vec<_> = walk_files(&den.data_dir.path().join("snapshot-downloads"));
    assert!(downloads.is_empty(), "{downloads:?}");

    // The credentials are in no answer and no log line.
    let (_, record) = den
        .api(Method::GET, &format!("/api/sessions/{session}"), None)
        .await;
    let log = den.log.lock().unwrap().clone();
    assert!(
        log.contains("snapshots are kept in object storage"),
        "the log says where"
    );
    let events = serde_json::to_string(&socket.events).unwrap();
    for text in [record.to_string(), events, log] {
        assert!(!text.contains(SECRET_KEY), "the secret key leaked");
        assert!(!text.contains(ACCESS_KEY), "the access key id leaked");
    }
}

fn walk_files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}
