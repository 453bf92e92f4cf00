//! Integration tests with real sandboxes. They need root, bubblewrap, slirp4netns, nftables and
//! (for the OpenCode tests) the pinned OpenCode from scripts/install-opencode.
#![allow(
    clippy::unwrap_used,
    unreachable_pub,
    dead_code,
    reason = "test code: panics are failures"
)]

mod basics;
mod crash;
mod exec;
mod harness;
mod isolation;
mod lifecycle;
mod limits;
mod opencode;
mod seccomp;

/// Waits until the sandbox's log says "ready" (its script finished setting up).
pub async fn limits_wait(log: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "sandbox never became ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
