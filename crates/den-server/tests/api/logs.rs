//! What den writes to its log: every request is logged by its route, never by its raw path, so
//! no token that travels in a path (a one-time sign-in link) or a header, and no password,
//! reaches the log.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;

use crate::support::{Auth, TestServer};

/// A log writer into memory, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn no_token_of_any_kind_reaches_the_request_log() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test's runtime runs every task of the server on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = TestServer::start().await;
    let link = den_server::accounts::bootstrap_admin(
        &server.store,
        &server.base,
        Duration::from_secs(900),
    )
    .await
    .unwrap()
    .expect("no users yet, so an admin and a link are made");
    let link_token = link.rsplit('/').next().unwrap().to_owned();
    // The first-run link, used and then reused.
    let used = server.http().get(&link).send().await.unwrap();
    assert_eq!(used.status(), StatusCode::SEE_OTHER);
    server.http().get(&link).send().await.unwrap();
    // A person's cookie and API token, on a route that takes an id in its path.
    let user = server.user("alice").await;
    let (status, _) = server
        .call(
            reqwest::Method::GET,
            "/api/sessions/0190c7a1-0000-7000-8000-000000000000",
            Auth::Bearer(&user),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(
            reqwest::Method::GET,
            "/api/auth/me",
            Auth::Cookie(&user),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A password change: the old and the new one travel in the body.
    let new_password = "a password nobody logs";
    let (status, _) = server
        .call(
            reqwest::Method::PUT,
            "/api/auth/password",
            Auth::Cookie(&user),
            Some(serde_json::json!({"current": crate::support::PASSWORD, "new": new_password})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    server.stop().await;

    let text = log.text();
    assert!(
        text.contains("route=\"/api/auth/link/{token}\""),
        "requests are logged by their route:\n{text}"
    );
    assert!(
        text.contains("route=\"/api/sessions/{id}\""),
        "requests are logged by their route:\n{text}"
    );
    for (what, secret) in [
        ("sign-in link token", link_token.as_str()),
        ("API token", user.token.as_str()),
        ("session cookie", user.cookie.as_str()),
        ("current password", crate::support::PASSWORD),
        ("new password", new_password),
    ] {
        assert!(!secret.is_empty());
        assert!(!text.contains(secret), "the {what} is in the log:\n{text}");
    }
}
