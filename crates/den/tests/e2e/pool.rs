//! The warm pool: sandboxes whose agent booted before anyone asked. A new session claims one
//! (and works in it like any other), the pool boots a replacement, a pool sandbox serves one
//! session only, and with the pool off nothing boots before a session asks.

use std::time::Duration;

use den_test_support::Turn;
use reqwest::Method;

use crate::harness::{Den, WITHIN};

/// Waits until den's metric `name` reaches `value` (the pool works in the background).
async fn metric_reaches(den: &Den, name: &str, value: f64) {
    let reached = tokio::time::timeout(WITHIN, async {
        loop {
            if den.counter(name).await >= value {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "{name} never reached {value} (it is {})",
        den.counter(name).await
    );
}

/// The sandboxes on the host now (their directories under den's sandbox root).
fn sandbox_dirs(den: &Den) -> Vec<String> {
    let root = den.data_dir.path().join("sandboxes").join("sandboxes");
    let mut names: Vec<String> = std::fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(|entry| Some(entry.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn a_new_session_claims_a_warm_sandbox_and_the_pool_boots_another() {
    let den = Den::start_with_pool(1).await;
    metric_reaches(&den, "den_warm_pool_boots_total", 1.0).await;
    let warm = sandbox_dirs(&den);
    assert_eq!(warm.len(), 1, "{warm:?}");

    // The claimed sandbox gets the session's workspace (the agent edits the repository) and
    // the session's gateway token (the model answers through den's gateway).
    den.model.push(Turn::new().bash(
        "cat README.md && printf 'from the pool\\n' > pooled.txt",
        "write a file",
    ));
    den.model.push(Turn::text("Done."));
    let session = den.create_session(Some("write a file")).await;
    let mut socket = den.connect(&session, 0).await;
    socket.until_turn_finished().await;
    assert_eq!(den.counter("den_warm_pool_claims_total").await, 1.0);
    let transcript = den.model.agent_requests().last().unwrap().transcript();
    assert!(transcript.contains("# test repo"), "{transcript}");
    let (_, diff) = den
        .api(Method::GET, &format!("/api/sessions/{session}/diff"), None)
        .await;
    assert!(
        diff["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "pooled.txt"),
        "{diff:#}"
    );

    // A replacement boots; the session's sandbox is the one that was waiting.
    metric_reaches(&den, "den_warm_pool_boots_total", 2.0).await;
    metric_reaches(&den, "den_warm_pool_waiting", 1.0).await;
    let now = sandbox_dirs(&den);
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(now.contains(&warm[0]), "{now:?}");
}

#[tokio::test]
async fn a_pool_sandbox_serves_one_session_and_sessions_see_nothing_of_each_other() {
    let den = Den::start_with_pool(1).await;
    metric_reaches(&den, "den_warm_pool_boots_total", 1.0).await;
    den.model.push(Turn::new().bash(
        "printf 'SECRET-OF-A\\n' > a-secret.txt && printf 'SECRET-OF-A\\n' > ~/a-home.txt \
         && printf 'SECRET-OF-A\\n' > /tmp/a-tmp.txt",
        "keep a secret",
    ));
    den.model.push(Turn::text("Kept."));
    let first = den.create_session(Some("keep a secret")).await;
    let mut socket = den.connect(&first, 0).await;
    socket.until_turn_finished().await;
    socket.close().await;
    // The first session is deleted; its sandbox goes, never back to the pool.
    let (status, _) = den
        .api(Method::DELETE, &format!("/api/sessions/{first}"), None)
        .await;
    assert!(status.is_success());

    metric_reaches(&den, "den_warm_pool_boots_total", 2.0).await;
    metric_reaches(&den, "den_warm_pool_waiting", 1.0).await;
    den.model.push(Turn::new().bash(
        "ls -a /workspace ~ /tmp; cat /workspace/a-secret.txt ~/a-home.txt /tmp/a-tmp.txt; \
         grep -rs SECRET-OF-\"\"A /workspace ~ /tmp; echo searched",
        "look for the secret",
    ));
    den.model.push(Turn::text("Nothing."));
    let second = den.create_session(Some("look around")).await;
    let mut socket = den.connect(&second, 0).await;
    socket.until_turn_finished().await;
    assert_eq!(den.counter("den_warm_pool_claims_total").await, 2.0);
    let transcript = den.model.agent_requests().last().unwrap().transcript();
    assert!(transcript.contains("searched"), "{transcript}");
    assert!(transcript.contains("README.md"), "{transcript}");
    assert!(
        !transcript.contains("SECRET-OF-A"),
        "the second session saw the first one's files: {transcript}"
    );
}

#[tokio::test]
async fn with_the_pool_off_no_sandbox_boots_before_a_session_asks() {
    let den = Den::start_with_pool(0).await;
    den.model.push(Turn::text("Hello."));
    assert!(sandbox_dirs(&den).is_empty(), "{:?}", sandbox_dirs(&den));
    let session = den.create_session(Some("hello")).await;
    let mut socket = den.connect(&session, 0).await;
    socket.until_turn_finished().await;
    assert_eq!(sandbox_dirs(&den).len(), 1);
    assert_eq!(den.counter("den_warm_pool_claims_total").await, 0.0);
    assert_eq!(den.counter("den_warm_pool_boots_total").await, 0.0);
}
