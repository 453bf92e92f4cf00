//! Integration tests with real sandboxes. They need root, bubblewrap, slirp4netns, nftables and
//! (for the OpenCode tests) the pinned OpenCode from scripts/install-opencode.
#![allow(
    clippy::unwrap_used,
    unreachable_pub,
    dead_code,
    reason = "test code: panics are failures"
)]

mod basics;
mod harness;
