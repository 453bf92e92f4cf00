//! Setting and changing one's password: a person who signed in by link sets one and can sign
//! in with it later; a change needs the current password and signs out the other browsers.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Auth, PASSWORD, TestServer, TestUser, assert_error, session_cookie};

async fn me(server: &TestServer, user: &TestUser) -> (StatusCode, serde_json::Value) {
    server
        .call(Method::GET, "/api/auth/me", Auth::Cookie(user), None)
        .await
}

#[tokio::test]
async fn a_person_who_signed_in_by_link_sets_a_password_and_signs_in_with_it() {
    let server = TestServer::start().await;
    let link = den_server::accounts::bootstrap_admin(
        &server.store,
        &server.base,
        Duration::from_secs(900),
    )
    .await
    .unwrap()
    .unwrap();
    let response = server.http().get(&link).send().await.unwrap();
    let admin = TestUser {
        cookie: session_cookie(&response).unwrap(),
        token: String::new(),
    };
    let (status, body) = me(&server, &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["hasPassword"], false, "{body}");

    // No current password to give: the first one is set without it.
    let (status, body) = server
        .call(
            Method::PUT,
            "/api/auth/password",
            Auth::Cookie(&admin),
            Some(json!({"new": "admin's first password"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = me(&server, &admin).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the browser that set it stays signed in"
    );
    assert_eq!(body["hasPassword"], true, "{body}");

    // Signed out, the person gets back in with the password.
    let (status, _) = server
        .call(Method::POST, "/api/auth/logout", Auth::Cookie(&admin), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(me(&server, &admin).await.0, StatusCode::UNAUTHORIZED);
    let response = server.login("admin", "admin's first password").await;
    assert_eq!(response.status(), StatusCode::OK);
    let (_, body) = crate::support::read(response).await;
    assert_eq!(
        (body["username"].as_str(), body["hasPassword"].as_bool()),
        (Some("admin"), Some(true))
    );
}

#[tokio::test]
async fn a_change_needs_the_current_password_and_signs_out_the_other_browsers() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    let other_browser = TestUser {
        cookie: session_cookie(&server.login("alice", PASSWORD).await).unwrap(),
        token: String::new(),
    };

    let (status, body) = server
        .call(
            Method::PUT,
            "/api/auth/password",
            Auth::Cookie(&user),
            Some(json!({"current": PASSWORD, "new": "a brand new password"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(me(&server, &user).await.0, StatusCode::OK);
    assert_eq!(
        me(&server, &other_browser).await.0,
        StatusCode::UNAUTHORIZED,
        "the other browser is signed out"
    );
    let (status, _) = server
        .call(Method::GET, "/api/auth/me", Auth::Bearer(&user), None)
        .await;
    assert_eq!(status, StatusCode::OK, "API tokens keep working");
    assert_eq!(
        server.login("alice", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server.login("alice", "a brand new password").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn guessing_the_current_password_is_throttled_like_sign_in() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    let before = server.store.user_by_name("alice").await.unwrap();
    let guess = |current: &str| json!({"current": current, "new": "the thief's password"});
    for attempt in 0..5 {
        let (status, body) = server
            .call(
                Method::PUT,
                "/api/auth/password",
                Auth::Bearer(&user),
                Some(guess(&format!("guess number {attempt}"))),
            )
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    }
    // Locked out for the window: even the right password is refused, and nothing changes.
    let (status, body) = server
        .call(
            Method::PUT,
            "/api/auth/password",
            Auth::Bearer(&user),
            Some(guess(PASSWORD)),
        )
        .await;
    assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let (_, me) = me(&server, &user).await;
    assert_eq!(me["username"], "alice", "the browser is still signed in");
    let stored = server.store.user_by_name("alice").await.unwrap();
    assert_eq!(
        stored.password_hash, before.password_hash,
        "nothing changed"
    );
}
