//! Credentials for git hosts: stored sealed, listed without the token, refused when malformed.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Auth, TestServer, assert_error};

const TOKEN: &str = "ghp_s3cr3t_t0ken_value";

#[tokio::test]
async fn a_credential_is_sealed_listed_without_its_token_replaced_and_removed() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let path = "/api/git-credentials/Git.Example.com:8443";
    let (status, body) = server
        .call(
            Method::PUT,
            path,
            Auth::Bearer(&alice),
            Some(json!({"username": "alice", "token": TOKEN})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let (status, listing) = server
        .call(
            Method::GET,
            "/api/git-credentials",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listing.as_array().unwrap().len(), 1, "{listing}");
    assert_eq!(listing[0]["host"], "git.example.com:8443");
    assert_eq!(listing[0]["username"], "alice");
    assert!(
        !listing.to_string().contains(TOKEN),
        "the token is never returned"
    );

    let user = server.store.user_by_name("alice").await.unwrap();
    let sealed = server
        .store
        .sealed_secret(user.id, "git:git.example.com:8443")
        .await
        .unwrap();
    assert!(
        !sealed.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
        "stored sealed, not in the clear"
    );

    // Replacing keeps one credential per host.
    server
        .call(
            Method::PUT,
            path,
            Auth::Bearer(&alice),
            Some(json!({"username": "bot", "token": "other"})),
        )
        .await;
    let (_, listing) = server
        .call(
            Method::GET,
            "/api/git-credentials",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(listing.as_array().unwrap().len(), 1);
    assert_eq!(listing[0]["username"], "bot");

    // Another person sees none of it and cannot remove it.
    let bob = server.user("bob").await;
    let (_, theirs) = server
        .call(
            Method::GET,
            "/api/git-credentials",
            Auth::Bearer(&bob),
            None,
        )
        .await;
    assert_eq!(theirs, json!([]));
    let (status, body) = server
        .call(Method::DELETE, path, Auth::Bearer(&bob), None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    let (status, _) = server
        .call(Method::DELETE, path, Auth::Bearer(&alice), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, listing) = server
        .call(
            Method::GET,
            "/api/git-credentials",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(listing, json!([]));
}

#[tokio::test]
async fn malformed_hosts_and_credentials_are_refused_and_store_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let good = json!({"username": "alice", "token": TOKEN});
    for host in [
        "-bad.example.com",
        "a..b",
        "host:0",
        "host:99999",
        "under_score.com",
        "x%2Fy",
    ] {
        let (status, body) = server
            .call(
                Method::PUT,
                &format!("/api/git-credentials/{host}"),
                Auth::Bearer(&alice),
                Some(good.clone()),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let long = "t".repeat(5000);
    for body in [
        json!({"username": "", "token": TOKEN}),
        json!({"username": "a:b", "token": TOKEN}),
        json!({"username": "alice", "token": ""}),
        json!({"username": "alice", "token": "has space"}),
        json!({"username": "alice", "token": long}),
        json!({"username": "alice"}),
        json!({"username": "alice", "token": TOKEN, "scope": "all"}),
    ] {
        let (status, reply) = server
            .call(
                Method::PUT,
                "/api/git-credentials/git.example.com",
                Auth::Bearer(&alice),
                Some(body.clone()),
            )
            .await;
        assert_error(status, &reply, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(!reply.to_string().contains(TOKEN), "{reply}");
    }
    let (_, listing) = server
        .call(
            Method::GET,
            "/api/git-credentials",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(listing, json!([]), "nothing was stored");
}
