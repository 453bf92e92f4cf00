//! "Sign in with GitHub" against a local server that speaks GitHub's OAuth and `/user` wire
//! format, including PKCE verification.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};

use crate::support::{Auth, TestServer, assert_error, read, session_cookie, set_cookies};

const ACCESS_TOKEN: &str = "gho_standin_access_token_123";

/// GitHub's side: remembers each code's PKCE challenge and checks the verifier.
#[derive(Clone, Default)]
struct FakeGithub {
    challenges: Arc<Mutex<HashMap<String, String>>>,
}

async fn authorize(
    State(github): State<FakeGithub>,
    Query(query): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    assert_eq!(
        query.get("code_challenge_method").map(String::as_str),
        Some("S256")
    );
    let code = format!("code-{}", query["state"]);
    github
        .challenges
        .lock()
        .unwrap()
        .insert(code.clone(), query["code_challenge"].clone());
    Redirect::to(&format!(
        "{}?code={code}&state={}",
        query["redirect_uri"], query["state"]
    ))
}

async fn access_token(
    State(github): State<FakeGithub>,
    Form(form): Form<HashMap<String, String>>,
) -> impl IntoResponse {
    let challenge = github.challenges.lock().unwrap().remove(&form["code"]);
    let verifier_hash = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(form["code_verifier"].as_bytes()));
    if challenge.as_deref() != Some(verifier_hash.as_str()) {
        return Json(serde_json::json!({"error": "bad_verification_code"}));
    }
    Json(
        serde_json::json!({"access_token": ACCESS_TOKEN, "token_type": "bearer", "scope": "read:user,repo"}),
    )
}

async fn user(headers: HeaderMap) -> impl IntoResponse {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {ACCESS_TOKEN}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"message": "Bad credentials"})),
        );
    }
    (
        StatusCode::OK,
        Json(serde_json::json!({"id": 583231, "login": "octocat", "name": "The Octocat"})),
    )
}

async fn start_fake_github() -> String {
    let app = Router::new()
        .route("/login/oauth/authorize", get(authorize))
        .route("/login/oauth/access_token", post(access_token))
        .route("/user", get(user))
        .with_state(FakeGithub::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

pub(crate) async fn server_with_github(allowed: &[&str]) -> TestServer {
    let github = start_fake_github().await;
    let allowed = allowed.iter().map(|s| (*s).to_owned()).collect();
    TestServer::start_with(move |config| {
        config.github = Some(den_server::GithubConfig {
            client_id: "client-id".to_owned(),
            client_secret: "client-secret".to_owned(),
            authorize_url: format!("{github}/login/oauth/authorize"),
            token_url: format!("{github}/login/oauth/access_token"),
            api_url: github,
            scopes: vec!["read:user".to_owned(), "repo".to_owned()],
            allowed_logins: allowed,
        });
    })
    .await
}

/// Runs the browser's side up to den's callback URL; returns it and the state cookie.
pub(crate) async fn approve_at_github(server: &TestServer) -> (String, String) {
    let start = server
        .http()
        .get(format!("{}/api/auth/github/start", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let state_cookie = set_cookies(&start)
        .into_iter()
        .find(|c| c.starts_with("den_oauth_state="))
        .unwrap();
    let state_cookie = state_cookie.split(';').next().unwrap().to_owned();
    let github_url = start.headers()["location"].to_str().unwrap().to_owned();
    let approved = server.http().get(&github_url).send().await.unwrap();
    let callback = approved.headers()["location"].to_str().unwrap().to_owned();
    (callback, state_cookie)
}

#[tokio::test]
async fn github_sign_in_creates_the_user_and_keeps_the_token_sealed() {
    let server = server_with_github(&["octocat"]).await;
    let (status, options) = server
        .call(Method::GET, "/api/auth/options", Auth::Anonymous, None)
        .await;
    assert_eq!(
        (status, options["github"].as_bool()),
        (StatusCode::OK, Some(true))
    );

    let (callback, state_cookie) = approve_at_github(&server).await;
    let response = server
        .http()
        .get(&callback)
        .header("cookie", &state_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        response.text().await
    );
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
        (me["username"].as_str(), me["githubLogin"].as_str()),
        (Some("octocat"), Some("octocat"))
    );
    assert!(!me.to_string().contains(ACCESS_TOKEN));

    let user_id = me["id"].as_str().unwrap().parse().unwrap();
    let stored: serde_json::Value =
        serde_json::from_slice(&server.store.secret(user_id, "github:token").await.unwrap())
            .unwrap();
    assert_eq!(stored["access_token"], ACCESS_TOKEN);
    assert!(
        stored.get("expires_at").is_none(),
        "an OAuth App's token does not expire"
    );
    let sealed = server
        .store
        .sealed_secret(user_id, "github:token")
        .await
        .unwrap();
    assert!(
        !sealed
            .windows(ACCESS_TOKEN.len())
            .any(|w| w == ACCESS_TOKEN.as_bytes())
    );

    // Signing in again links to the same user.
    let (callback, state_cookie) = approve_at_github(&server).await;
    let response = server
        .http()
        .get(&callback)
        .header("cookie", &state_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(server.store.count_users().await.unwrap(), 1);
}

#[tokio::test]
async fn a_callback_whose_state_does_not_match_the_browser_is_refused() {
    let server = server_with_github(&["*"]).await;
    let (callback, _) = approve_at_github(&server).await;
    // Another browser (an attacker's link): no state cookie, or another one.
    for cookie in ["", "den_oauth_state=forged"] {
        let response = server
            .http()
            .get(&callback)
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let (status, body) = read(response).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    }
    // A state den never issued, even with a matching cookie.
    let forged = format!(
        "{}/api/auth/github/callback?code=x&state=forged",
        server.base
    );
    let response = server
        .http()
        .get(&forged)
        .header("cookie", "den_oauth_state=forged")
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(server.store.count_users().await.unwrap(), 0);
}

#[tokio::test]
async fn a_github_user_who_is_not_allowed_gets_no_account() {
    let server = server_with_github(&["someone-else"]).await;
    let (callback, state_cookie) = approve_at_github(&server).await;
    let response = server
        .http()
        .get(&callback)
        .header("cookie", &state_cookie)
        .send()
        .await
        .unwrap();
    assert!(session_cookie(&response).is_none());
    let (status, body) = read(response).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(server.store.count_users().await.unwrap(), 0);
}
