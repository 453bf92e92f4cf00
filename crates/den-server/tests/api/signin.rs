//! Signing in: passwords, throttling, cookie flags, cross-site refusal, one-time links.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Auth, PASSWORD, TestServer, assert_error, read, session_cookie, set_cookies};

#[tokio::test]
async fn login_sets_a_safe_cookie_and_wrong_credentials_do_not_say_which_half_failed() {
    let server = TestServer::start().await;
    server.user("alice").await;

    let response = server.login("alice", PASSWORD).await;
    let cookie_header = set_cookies(&response)
        .into_iter()
        .find(|c| c.starts_with("den_session="))
        .unwrap();
    let lower = cookie_header.to_lowercase();
    assert!(
        lower.contains("httponly") && lower.contains("samesite=lax") && lower.contains("path=/"),
        "{cookie_header}"
    );
    assert!(
        !lower.contains("secure"),
        "plain http must not set Secure: {cookie_header}"
    );
    let (status, user) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["username"], "alice");
    assert!(!user.to_string().contains("argon2"), "hash leaked: {user}");

    let (status, wrong_password) = read(server.login("alice", "not the password").await).await;
    assert_error(
        status,
        &wrong_password,
        StatusCode::UNAUTHORIZED,
        "bad_credentials",
    );
    let (status, unknown_user) = read(server.login("mallory", "not the password").await).await;
    assert_error(
        status,
        &unknown_user,
        StatusCode::UNAUTHORIZED,
        "bad_credentials",
    );
    assert_eq!(
        wrong_password, unknown_user,
        "the two failures must look the same"
    );
}

#[tokio::test]
async fn cookies_are_secure_when_den_is_served_over_https() {
    let server =
        TestServer::start_with(|config| config.public_url = "https://den.example".to_owned()).await;
    den_server::accounts::create_user(&server.store, "alice", Some(PASSWORD.to_owned()), false)
        .await
        .unwrap();
    let response = server.login("alice", PASSWORD).await;
    let cookies = set_cookies(&response);
    // The `__Host-` prefix: the browser keeps it only if Secure, Path=/ and no Domain, so no
    // sibling subdomain can plant or shadow it.
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("__Host-den_session="))
        .unwrap_or_else(|| panic!("no __Host- session cookie in {cookies:?}"));
    let lower = cookie.to_lowercase();
    assert!(
        lower.contains("secure") && lower.contains("path=/") && !lower.contains("domain="),
        "{cookie}"
    );
    let value = cookie
        .strip_prefix("__Host-den_session=")
        .and_then(|rest| rest.split(';').next())
        .unwrap();

    // It signs requests in; the unprefixed name, which a subdomain could plant, does not.
    let me = |cookie_header: String| {
        server
            .http()
            .get(format!("{}/api/auth/me", server.base))
            .header("cookie", cookie_header)
            .send()
    };
    let response = me(format!("__Host-den_session={value}")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = me(format!("den_session={value}")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn failed_logins_are_throttled_even_with_the_right_password_afterwards() {
    let server = TestServer::start().await;
    server.user("alice").await;
    for _ in 0..5 {
        let (status, _) = read(server.login("alice", "wrong password!").await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let response = server.login("alice", PASSWORD).await;
    assert!(response.headers().get("retry-after").is_some());
    let (status, body) = read(response).await;
    assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // Another name from another... the same address is still under its own, higher limit.
    server.user("bob").await;
}

#[tokio::test]
async fn the_address_limit_stops_guessing_across_many_names() {
    let server = TestServer::start_with(|config| config.throttle.per_address = 3).await;
    for n in 0..3 {
        let (status, _) = read(server.login(&format!("user{n}"), "wrong password!").await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = read(server.login("someone-else", "wrong password!").await).await;
    assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
}

#[tokio::test]
async fn cookie_requests_from_other_sites_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    let create = json!({"repository": "https://example.com/a/b.git"});
    let cookie = format!("den_session={}", user.cookie);

    // No CSRF header: what a cross-site form post looks like.
    let response = server
        .http()
        .post(format!("{}/api/sessions", server.base))
        .header("cookie", &cookie)
        .json(&create)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    // The header, but from a foreign origin.
    let response = server
        .request(Method::POST, "/api/sessions", Auth::Cookie(&user))
        .header("origin", "https://evil.example")
        .json(&create)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    // Login without the header (login CSRF).
    let response = server
        .http()
        .post(format!("{}/api/auth/login", server.base))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let (_, sessions) = server
        .call(Method::GET, "/api/sessions", Auth::Bearer(&user), None)
        .await;
    assert!(
        sessions["sessions"].as_array().unwrap().is_empty(),
        "a refused request created a session"
    );

    // Same origin with the header works; reads need no header.
    let response = server
        .request(Method::POST, "/api/sessions", Auth::Cookie(&user))
        .header("origin", &server.base)
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = server
        .http()
        .get(format!("{}/api/sessions", server.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_ends_the_browser_session() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    let (status, _) = server
        .call(Method::POST, "/api/auth/logout", Auth::Cookie(&user), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .call(Method::GET, "/api/auth/me", Auth::Cookie(&user), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server
        .call(Method::GET, "/api/auth/me", Auth::Bearer(&user), None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "logging out a browser keeps API tokens"
    );
}

#[tokio::test]
async fn a_first_run_link_signs_in_once_and_then_never_again() {
    let server = TestServer::start().await;
    let url = den_server::accounts::bootstrap_admin(
        &server.store,
        &server.base,
        Duration::from_secs(900),
    )
    .await
    .unwrap()
    .expect("no users yet, so an admin and a link are made");
    assert!(
        den_server::accounts::bootstrap_admin(
            &server.store,
            &server.base,
            Duration::from_secs(900)
        )
        .await
        .unwrap()
        .is_none()
    );
    let response = server.http().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/");
    let cookie = session_cookie(&response).unwrap();
    let me = server
        .http()
        .get(format!("{}/api/auth/me", server.base))
        .header("cookie", format!("den_session={cookie}"))
        .send()
        .await
        .unwrap();
    let (status, me) = read(me).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (me["username"].as_str(), me["isAdmin"].as_bool()),
        (Some("admin"), Some(true))
    );

    // Opened again, it sends the browser to the sign-in page, which says what happened.
    let again = server.http().get(&url).send().await.unwrap();
    assert_sent_to_sign_in_page(&again);
}

/// A used or expired link answers with a redirect to the sign-in page and its explanation,
/// never a JSON error, and signs nobody in.
fn assert_sent_to_sign_in_page(response: &reqwest::Response) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "/?signin_error=link_invalid"
    );
    assert!(session_cookie(response).is_none());
}

#[tokio::test]
async fn an_expired_link_does_not_sign_in() {
    let server = TestServer::start().await;
    let admin = den_server::accounts::create_user(&server.store, "admin", None, true)
        .await
        .unwrap();
    let url = den_server::accounts::create_login_link(
        &server.store,
        &server.base,
        admin.id,
        Duration::ZERO,
    )
    .await
    .unwrap();
    let response = server.http().get(&url).send().await.unwrap();
    assert_sent_to_sign_in_page(&response);
    // So is a link that never existed.
    let made_up = format!("{}/api/auth/link/den_not-a-real-link", server.base);
    assert_sent_to_sign_in_page(&server.http().get(&made_up).send().await.unwrap());
}

#[tokio::test]
async fn operational_endpoints_answer_and_metrics_count_requests_by_route() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    server
        .call(Method::GET, "/api/sessions", Auth::Bearer(&user), None)
        .await;
    let response = server
        .http()
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers().get("x-request-id").is_some(),
        "every response carries a request id"
    );
    assert_eq!(response.status(), StatusCode::OK);
    let metrics = server
        .http()
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("den_http_requests_total") && metrics.contains(r#"route="/api/sessions""#),
        "{metrics}"
    );
    assert!(!metrics.contains(&user.token));
}
