//! The model gateway's doors (what `gateway.rs` does not already cover): a request without the
//! session's token, with the token of a session that was deleted, or for a provider den does
//! not know is refused before any provider hears of it; and a request that passes reaches the
//! provider with the owner's key added, never the session's token.

use den_session::{AdminProvider, Catalog};
use den_store::{NewSession, Store};
use den_test_support::ScriptedModel;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;

use crate::gateway::Gateway;
use crate::support::TestServer;

const TOKEN: &str = "gateway-token-doors-0123456789abcdef";
const OWNER_KEY: &str = "sk-ant-api03-doors-owner-key-0042";
const SONNET: &str = "claude-sonnet-4-5-20250929";

fn ask(model: &str) -> Value {
    json!({"model": model, "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "hello"}]})
}

/// A session of `owner_id` on `model` whose gateway token is [`TOKEN`]; returns its id.
async fn session(store: &Store, owner_id: uuid::Uuid, model: &str) -> uuid::Uuid {
    let id = uuid::Uuid::now_v7();
    let new = NewSession {
        id,
        owner_id,
        title: "t",
        repository: "/srv/repos/r",
        base_branch: None,
        work_branch: "den/doors001",
        model,
    };
    store.create_session(new).await.unwrap();
    let hash = hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()));
    store.set_gateway_token(id, &hash).await.unwrap();
    id
}

async fn post(
    http: &reqwest::Client,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (StatusCode, String) {
    let mut request = http
        .post(format!("http://gateway{path}"))
        .header("anthropic-version", "2023-06-01")
        .json(body);
    if let Some(token) = token {
        request = request.header("x-api-key", token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

fn anthropic_at(model: &ScriptedModel) -> Catalog {
    Catalog::new(vec![AdminProvider {
        name: "anthropic".to_owned(),
        kind: None,
        base_url: Some(model.base_url()),
        models: Vec::new(),
        api_key: None,
        shared: true,
    }])
    .unwrap()
}

#[tokio::test]
async fn no_token_or_a_deleted_sessions_token_is_refused_and_a_valid_one_gets_the_key_added() {
    let model = ScriptedModel::start().await.unwrap();
    let server = TestServer::start().await;
    server.user("alice").await;
    let alice = server.store.user_by_name("alice").await.unwrap().id;
    server
        .store
        .set_provider_key(alice, "anthropic", OWNER_KEY.as_bytes())
        .await
        .unwrap();
    let id = session(&server.store, alice, &format!("anthropic/{SONNET}")).await;
    let gateway = Gateway::start(server.store.clone(), anthropic_at(&model)).await;
    let http = gateway.http.clone();
    let path = "/v1/anthropic/messages";

    // No token at all, and a bearer header that is not the session's: not a session.
    let (status, body) = post(&http, path, None, &ask(SONNET)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let response = http
        .post(format!("http://gateway{path}"))
        .bearer_auth("den_not-the-session-token")
        .json(&ask(SONNET))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(model.requests().is_empty(), "the provider heard nothing");

    // The session's token: the provider gets the owner's key, and never the token.
    let (status, body) = post(&http, path, Some(TOKEN), &ask(SONNET)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen = model.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].credential.as_deref(), Some(OWNER_KEY));
    assert!(
        !format!("{:?}", seen[0]).contains(TOKEN),
        "the session's token reached the provider"
    );

    // The session deleted: its token opens nothing any more.
    server.store.delete_session(alice, id).await.unwrap();
    let (status, body) = post(&http, path, Some(TOKEN), &ask(SONNET)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(!body.contains(OWNER_KEY) && !body.contains(TOKEN), "{body}");
    assert_eq!(model.requests().len(), 1, "the provider heard nothing more");
}

#[tokio::test]
async fn a_provider_den_does_not_know_is_refused_clearly_before_anything_is_sent() {
    let model = ScriptedModel::start().await.unwrap();
    let server = TestServer::start().await;
    server.user("alice").await;
    let alice = server.store.user_by_name("alice").await.unwrap().id;
    // A session whose provider is gone (an admin removed it from the configuration).
    session(&server.store, alice, "removed-provider/some-model").await;
    let gateway = Gateway::start(server.store.clone(), anthropic_at(&model)).await;
    let http = gateway.http.clone();

    let (status, body) = post(
        &http,
        "/v1/removed-provider/chat/completions",
        Some(TOKEN),
        &ask("some-model"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.contains("there is no provider removed-provider"),
        "{body}"
    );
    // A provider the session was not given is refused the same way, whatever its name.
    let (status, body) = post(&http, "/v1/anthropic/messages", Some(TOKEN), &ask(SONNET)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("may use only the model"), "{body}");
    assert!(model.requests().is_empty(), "the provider heard nothing");
}
