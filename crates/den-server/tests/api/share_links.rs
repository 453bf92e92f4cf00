//! Read-only share links and forks, through the API: what a share token opens (the transcript
//! and its live stream) and everything it does not; revocation and expiry; bad input.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::authz::{Fixture, Rule, call_for, routes, rule};
use crate::support::{Auth, TestServer, TestUser, assert_error};

/// A session of `owner` and a share link of it: (session id, link id, token).
async fn shared_session(server: &TestServer, owner: &TestUser) -> (String, String, String) {
    let (status, session) = server
        .call(
            Method::POST,
            "/api/sessions",
            Auth::Bearer(owner),
            Some(json!({"repository": server.repository.as_deref().unwrap(), "title": "shared work"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let id = session["id"].as_str().unwrap().to_owned();
    let (status, share) = server
        .call(
            Method::POST,
            &format!("/api/sessions/{id}/shares"),
            Auth::Cookie(owner),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{share}");
    let token = share["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("dsh_"), "{token}");
    (id, share["link"]["id"].as_str().unwrap().to_owned(), token)
}

/// An open viewer: the SSE stream of a share link, read frame by frame.
struct ViewerStream {
    response: reqwest::Response,
    buffer: String,
}

impl ViewerStream {
    async fn open(server: &TestServer, token: &str) -> Self {
        let response = server
            .http()
            .get(format!("{}/api/shared/{token}/events", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next frame as (event name, data); `None` when the stream ended.
    async fn next(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let (mut name, mut data) = (String::new(), String::new());
                for line in frame.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if name.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((name, data));
            }
            match tokio::time::timeout(Duration::from_secs(20), self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Ok(None) | Err(_)) => return None,
                Err(_) => panic!("the viewer's stream went silent"),
            }
        }
    }

    /// Reads until the end of the replay (`live`), returning the replayed events.
    async fn until_live(&mut self) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let (name, data) = self.next().await.expect("the stream ended before `live`");
            match name.as_str() {
                "live" => return events,
                _ => events.push(serde_json::from_str(&data).unwrap()),
            }
        }
    }
}

#[tokio::test]
async fn a_viewer_sees_the_transcript_live_and_is_closed_at_once_by_revoking() {
    let server = TestServer::start_live().await;
    let owner = server.user("owner").await;
    let (id, link, token) = shared_session(&server, &owner).await;

    let (status, shared) = server
        .call(
            Method::GET,
            &format!("/api/shared/{token}"),
            Auth::Anonymous,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{shared}");
    assert_eq!(shared["title"], "shared work");
    let text = shared.to_string();
    for private in [server.repository.as_deref().unwrap(), "owner", "den/"] {
        assert!(!text.contains(private), "{private} in {text}");
    }

    let mut viewer = ViewerStream::open(&server, &token).await;
    viewer.until_live().await;
    // A live event: the owner renames the session.
    let (status, _) = server
        .call(
            Method::PATCH,
            &format!("/api/sessions/{id}"),
            Auth::Bearer(&owner),
            Some(json!({"title": "renamed while watched"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (name, data) = viewer.next().await.expect("the viewer hears the rename");
    assert_eq!(name, "event");
    let event: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(event["event"]["type"], "renamed", "{event}");
    assert_eq!(event["event"]["title"], "renamed while watched");

    // The owner's list shows the link, never its token.
    let (_, links) = server
        .call(
            Method::GET,
            &format!("/api/sessions/{id}/shares"),
            Auth::Bearer(&owner),
            None,
        )
        .await;
    assert_eq!(links[0]["id"], link.as_str());
    assert!(!links.to_string().contains(&token));

    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/sessions/{id}/shares/{link}"),
            Auth::Cookie(&owner),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(viewer.next().await, None, "the open viewer is closed");
    for path in [
        format!("/api/shared/{token}"),
        format!("/api/shared/{token}/events"),
    ] {
        let (status, body) = server.call(Method::GET, &path, Auth::Anonymous, None).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
    let (_, links) = server
        .call(
            Method::GET,
            &format!("/api/sessions/{id}/shares"),
            Auth::Bearer(&owner),
            None,
        )
        .await;
    assert!(links[0]["revokedAt"].is_string(), "{links}");
    server.stop().await;
}

#[tokio::test]
async fn a_share_token_is_refused_by_every_other_route_and_is_no_sign_in() {
    let server = TestServer::start_live().await;
    let owner = server.user("owner").await;
    let (id, link, token) = shared_session(&server, &owner).await;
    // The share token in each place a credential goes.
    let holder = TestUser {
        cookie: token.clone(),
        token: token.clone(),
    };
    let fixture = Fixture {
        session: id.clone(),
        token: "00000000-0000-7000-8000-000000000000".to_owned(),
        share_link: link.clone(),
        share_token: token.clone(),
        owner: "00000000-0000-7000-8000-000000000001".to_owned(),
    };
    let repository = server.repository.as_deref().unwrap();
    let mut checked = 0;
    for (method, path) in routes() {
        if path.starts_with("/api/shared/") || matches!(rule(&method, &path), Rule::Public { .. }) {
            continue;
        }
        let (concrete, body) = call_for(&method, &path, &fixture, repository);
        for auth in [Auth::Bearer(&holder), Auth::Cookie(&holder)] {
            let status = server
                .exercise(method.clone(), &concrete, auth, body.clone())
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} routes checked");
    // Nothing changed: the session, its title and its link are as they were.
    let (status, session) = server
        .call(
            Method::GET,
            &format!("/api/sessions/{id}"),
            Auth::Bearer(&owner),
            None,
        )
        .await;
    assert_eq!(
        (status, session["title"].as_str()),
        (StatusCode::OK, Some("shared work"))
    );
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/api/shared/{token}"),
            Auth::Anonymous,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A token that is not a share token, or a changed one, opens nothing.
    for wrong in [owner.token.clone(), format!("{token}x"), "dsh_".to_owned()] {
        let (status, body) = server
            .call(
                Method::GET,
                &format!("/api/shared/{wrong}"),
                Auth::Anonymous,
                None,
            )
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
    server.stop().await;
}

#[tokio::test]
async fn share_links_expire_and_refuse_bad_input() {
    let server = TestServer::start_live().await;
    let owner = server.user("owner").await;
    let other = server.user("other").await;
    let (id, link, _) = shared_session(&server, &owner).await;
    let shares = format!("/api/sessions/{id}/shares");

    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    for body in [
        json!({"expiresAt": past}),
        json!({"expiresAt": "tomorrow"}),
        json!({"expires": "2099-01-01T00:00:00Z"}),
    ] {
        let (status, answer) = server
            .call(
                Method::POST,
                &shares,
                Auth::Bearer(&owner),
                Some(body.clone()),
            )
            .await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_request");
    }
    // Another user can neither create, list nor revoke the owner's links.
    let (status, _) = server
        .call(Method::POST, &shares, Auth::Bearer(&other), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("{shares}/{link}"),
            Auth::Bearer(&other),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = server
        .call(
            Method::DELETE,
            &format!("{shares}/not-a-uuid"),
            Auth::Bearer(&owner),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (_, links) = server
        .call(Method::GET, &shares, Auth::Bearer(&owner), None)
        .await;
    assert_eq!(
        links.as_array().unwrap().len(),
        1,
        "nothing was added: {links}"
    );
    assert!(
        links[0]["revokedAt"].is_null(),
        "nothing was revoked: {links}"
    );

    // A link that expires soon: its open viewer ends at the expiry, then it is a 404.
    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let (status, created) = server
        .call(
            Method::POST,
            &shares,
            Auth::Bearer(&owner),
            Some(json!({"expiresAt": soon})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap();
    let mut viewer = ViewerStream::open(&server, token).await;
    viewer.until_live().await;
    assert_eq!(
        viewer.next().await,
        None,
        "the viewer ends when the link expires"
    );
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/api/shared/{token}"),
            Auth::Anonymous,
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    server.stop().await;
}

#[tokio::test]
async fn fork_refuses_bad_input_and_changes_nothing() {
    let server = TestServer::start_live().await;
    let owner = server.user("owner").await;
    let other = server.user("other").await;
    let (id, _, _) = shared_session(&server, &owner).await;
    let fork = format!("/api/sessions/{id}/fork");
    let cases = [
        (
            Auth::Bearer(&other),
            json!({}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Auth::Bearer(&owner),
            json!({"count": 0}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Auth::Bearer(&owner),
            json!({"count": 6}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Auth::Bearer(&owner),
            json!({"prompt": "  "}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Auth::Bearer(&owner),
            json!({"copies": 2}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        // No turn has finished: there is no snapshot to fork.
        (
            Auth::Bearer(&owner),
            json!({}),
            StatusCode::CONFLICT,
            "conflict",
        ),
    ];
    for (auth, body, expected, code) in cases {
        let (status, answer) = server
            .call(Method::POST, &fork, auth, Some(body.clone()))
            .await;
        assert_error(status, &answer, expected, code);
    }
    let (status, body) = server
        .call(
            Method::POST,
            "/api/sessions/00000000-0000-7000-8000-000000000000/fork",
            Auth::Bearer(&owner),
            Some(json!({})),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    for user in [&owner, &other] {
        let (_, page) = server
            .call(Method::GET, "/api/sessions", Auth::Bearer(user), None)
            .await;
        let expected = if std::ptr::eq(user, &owner) { 1 } else { 0 };
        assert_eq!(
            page["sessions"].as_array().unwrap().len(),
            expected,
            "{page}"
        );
    }
    server.stop().await;
}
