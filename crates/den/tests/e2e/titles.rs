//! Session titles from OpenCode: the pinned OpenCode asks the model for a title after the first
//! prompt (the scripted model answers it with `SIDE_REPLY`) and announces it in
//! `session.updated`; a session nobody named takes it in place of its first prompt's line.

use den_protocol::events::SessionEvent;
use den_test_support::{SIDE_REPLY, Turn};
use reqwest::Method;

use crate::harness::Den;

#[tokio::test]
async fn a_session_nobody_named_takes_the_title_opencode_generates() {
    let den = Den::start().await;
    den.model.push(Turn::text("Hello there."));
    let session = den.create_session(Some("please say hello")).await;
    let (_, created) = den
        .api(Method::GET, &format!("/api/sessions/{session}"), None)
        .await;
    assert_eq!(created["title"], "please say hello", "{created}");
    let mut socket = den.connect(&session, 0).await;
    let renamed = socket
        .until(|event| matches!(event, SessionEvent::Renamed { title } if title == SIDE_REPLY))
        .await;
    assert!(matches!(renamed, SessionEvent::Renamed { .. }));
    let (_, listed) = den.api(Method::GET, "/api/sessions", None).await;
    assert_eq!(listed["sessions"][0]["title"], SIDE_REPLY, "{listed}");
}
