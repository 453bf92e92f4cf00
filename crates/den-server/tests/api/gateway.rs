//! The model gateway, driven the way OpenCode in a sandbox drives it (a unix socket, the
//! session's gateway token as the "API key") against a stand-in provider that records the key
//! it receives: the key is picked per request, injected the provider's way, and every path or
//! model the session was not given is refused with a 403 OpenCode does not retry.

use den_session::{AdminProvider, Catalog};
use den_store::{NewModelEndpoint, NewSession, Store};
use den_test_support::ScriptedModel;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;

use crate::support::TestServer;

const TOKEN: &str = "gateway-token-of-the-session-0123456789";
const ALICE_KEY: &str = "sk-ant-api03-alice-own-key-0001";
const SONNET: &str = "claude-sonnet-4-5-20250929";

/// A gateway on a unix socket, as a sandbox reaches it, and a client for it.
pub(crate) struct Gateway {
    pub(crate) http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Gateway {
    pub(crate) async fn start(store: Store, catalog: Catalog) -> Self {
        Self::start_allowing(store, catalog, true).await
    }

    async fn start_allowing(store: Store, catalog: Catalog, allow_private: bool) -> Self {
        Self::start_with(store, catalog, allow_private, None).await
    }

    async fn start_with(
        store: Store,
        catalog: Catalog,
        allow_private: bool,
        budget: Option<f64>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("gateway.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        tokio::spawn(den_server::serve_gateway(
            listener,
            store,
            catalog,
            den_server::GatewayPolicy {
                allow_private_endpoints: allow_private,
                monthly_budget_usd: budget,
            },
            std::future::pending(),
        ));
        let http = reqwest::Client::builder()
            .unix_socket(socket.as_path())
            .build()
            .unwrap();
        Self { http, _dir: dir }
    }

    /// Sends what OpenCode's SDK sends: the token in `x-api-key` for Anthropic, else Bearer.
    async fn send(&self, method: Method, path: &str, body: Value) -> (StatusCode, String) {
        let mut request = self
            .http
            .request(method, format!("http://gateway{path}"))
            .header("anthropic-version", "2023-06-01")
            .json(&body);
        request = if path.contains("/anthropic/") {
            request.header("x-api-key", TOKEN)
        } else {
            request.bearer_auth(TOKEN)
        };
        let response = request.send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }
}

fn ask(model: &str) -> Value {
    json!({"model": model, "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "hello"}]})
}

/// A session of alice's on `model` whose gateway token is [`TOKEN`].
async fn session(store: &Store, owner_id: uuid::Uuid, model: &str) {
    let id = uuid::Uuid::now_v7();
    let new = NewSession {
        id,
        owner_id,
        title: "t",
        repository: "https://example.com/a/b.git",
        base_branch: None,
        work_branch: "den/aaaa0001",
        model,
    };
    store.create_session(new).await.unwrap();
    let hash = hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()));
    store.set_gateway_token(id, &hash).await.unwrap();
}

fn refused_clearly(status: StatusCode, body: &str, says: &str) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains(says), "{body}");
    // Nothing OpenCode's retry rule matches.
    for retry_word in ["429", "rate limit", "try again", "500", "503", "overloaded"] {
        assert!(!body.to_lowercase().contains(retry_word), "{body}");
    }
}

#[tokio::test]
async fn the_owners_key_is_picked_per_request_and_only_the_sessions_model_and_path_pass() {
    let model = ScriptedModel::start().await.unwrap();
    let server = TestServer::start().await;
    server.user("alice").await;
    let alice = server.store.user_by_name("alice").await.unwrap().id;
    let catalog = Catalog::new(vec![AdminProvider {
        name: "anthropic".to_owned(),
        kind: None,
        base_url: Some(model.base_url()),
        models: Vec::new(),
        api_key: None,
        shared: true,
    }])
    .unwrap();
    session(&server.store, alice, &format!("anthropic/{SONNET}")).await;
    let gateway = Gateway::start(server.store.clone(), catalog).await;

    // No key yet: refused, and the provider never hears of it.
    let (status, body) = gateway
        .send(Method::POST, "/v1/anthropic/messages", ask(SONNET))
        .await;
    refused_clearly(status, &body, "no key for provider Anthropic");
    assert!(
        body.contains("permission_error"),
        "Anthropic's envelope: {body}"
    );
    assert!(model.requests().is_empty());

    // With alice's own key, it reaches the provider as x-api-key, and the answer streams back.
    server
        .store
        .set_provider_key(alice, "anthropic", ALICE_KEY.as_bytes())
        .await
        .unwrap();
    let (status, body) = gateway
        .send(Method::POST, "/v1/anthropic/messages", ask(SONNET))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("text_delta") && body.contains("message_stop"),
        "{body}"
    );
    let seen = model.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].credential.as_deref(), Some(ALICE_KEY));
    // Metered from the stream (10 in, 5 out) at Sonnet 4.5's price, stored by the stream's end.
    let since = den_store::now() - chrono::Duration::hours(1);
    let usage = server.store.usage_since(alice, since).await.unwrap();
    assert_eq!(
        (usage.requests, usage.input_tokens, usage.output_tokens),
        (1, 10, 5)
    );
    assert!((usage.cost_usd - (10.0 * 3.0 + 5.0 * 15.0) / 1e6).abs() < 1e-12);

    // Another model, another path, another method: refused before the provider.
    let (status, body) = gateway
        .send(
            Method::POST,
            "/v1/anthropic/messages",
            ask("claude-opus-4-5-20251101"),
        )
        .await;
    refused_clearly(
        status,
        &body,
        "may use only the model anthropic/claude-sonnet-4-5",
    );
    let (status, body) = gateway
        .send(Method::POST, "/v1/anthropic/models", ask(SONNET))
        .await;
    refused_clearly(status, &body, "may not call models");
    let (status, body) = gateway
        .send(Method::GET, "/v1/anthropic/messages", ask(SONNET))
        .await;
    refused_clearly(status, &body, "may not call messages");
    let (status, body) = gateway
        .send(Method::POST, "/v1/openai/responses", ask("gpt-5.2"))
        .await;
    refused_clearly(status, &body, "may use only the model");
    assert_eq!(
        model.requests().len(),
        1,
        "nothing refused reached the provider"
    );

    // A wrong token is not a session.
    let response = gateway
        .http
        .post("http://gateway/v1/anthropic/messages")
        .header("x-api-key", "not-a-token")
        .json(&ask(SONNET))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // The key deleted: the very next request is refused, and the provider hears nothing.
    server
        .store
        .delete_provider_key(alice, "anthropic")
        .await
        .unwrap();
    let (status, body) = gateway
        .send(Method::POST, "/v1/anthropic/messages", ask(SONNET))
        .await;
    refused_clearly(status, &body, "no key for provider Anthropic");
    assert_eq!(model.requests().len(), 1);
    assert!(!body.contains(ALICE_KEY) && !body.contains(TOKEN));
    let usage = server.store.usage_since(alice, since).await.unwrap();
    assert_eq!(usage.requests, 1, "refusals cost nothing");
}

#[tokio::test]
async fn a_personal_endpoint_gets_its_own_key_as_bearer_until_it_is_deleted() {
    let model = ScriptedModel::start().await.unwrap();
    let server = TestServer::start().await;
    server.user("alice").await;
    let alice = server.store.user_by_name("alice").await.unwrap().id;
    let models = vec!["llama-3".to_owned()];
    server
        .store
        .put_model_endpoint(NewModelEndpoint {
            owner_id: alice,
            name: "home",
            base_url: &model.base_url(),
            models: &models,
            api_key: Some(b"home-endpoint-key-77"),
        })
        .await
        .unwrap();
    session(&server.store, alice, "my-home/llama-3").await;
    let gateway = Gateway::start(server.store.clone(), Catalog::builtin()).await;
    let (status, body) = gateway
        .send(Method::POST, "/v1/my-home/chat/completions", ask("llama-3"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("[DONE]"), "{body}");
    assert_eq!(
        model.requests()[0].credential.as_deref(),
        Some("home-endpoint-key-77")
    );
    let (status, body) = gateway
        .send(Method::POST, "/v1/my-home/responses", ask("llama-3"))
        .await;
    refused_clearly(status, &body, "may not call responses");

    // The endpoint deleted: refused at the next request.
    server
        .store
        .delete_model_endpoint(alice, "home")
        .await
        .unwrap();
    let (status, body) = gateway
        .send(Method::POST, "/v1/my-home/chat/completions", ask("llama-3"))
        .await;
    refused_clearly(status, &body, "no model endpoint named home");
    assert_eq!(model.requests().len(), 1);
}

#[tokio::test]
async fn an_endpoint_on_a_private_address_is_refused_at_request_time_unless_the_admin_allows_it() {
    let model = ScriptedModel::start().await.unwrap();
    let server = TestServer::start().await;
    server.user("alice").await;
    let alice = server.store.user_by_name("alice").await.unwrap().id;
    // Stored directly: the API would have refused it, but a name can resolve elsewhere later.
    server
        .store
        .put_model_endpoint(NewModelEndpoint {
            owner_id: alice,
            name: "home",
            base_url: &model.base_url(),
            models: &["llama-3".to_owned()],
            api_key: None,
        })
        .await
        .unwrap();
    session(&server.store, alice, "my-home/llama-3").await;
    let gateway = Gateway::start_allowing(server.store.clone(), Catalog::builtin(), false).await;
    let (status, body) = gateway
        .send(Method::POST, "/v1/my-home/chat/completions", ask("llama-3"))
        .await;
    refused_clearly(status, &body, "cannot be used");
    assert!(model.requests().is_empty());
}

#[tokio::test]
async fn an_admins_shared_key_is_used_when_the_person_has_none_and_theirs_wins() {
    let model = ScriptedModel::start().await.unwrap();
    let server = TestServer::start().await;
    server.user("alice").await;
    let alice = server.store.user_by_name("alice").await.unwrap().id;
    let catalog = Catalog::new(vec![AdminProvider {
        name: "anthropic".to_owned(),
        kind: None,
        base_url: Some(model.base_url()),
        models: Vec::new(),
        api_key: Some("sk-ant-admin-shared-key-9999".to_owned()),
        shared: true,
    }])
    .unwrap();
    session(&server.store, alice, &format!("anthropic/{SONNET}")).await;
    let gateway = Gateway::start(server.store.clone(), catalog).await;
    let (status, _) = gateway
        .send(Method::POST, "/v1/anthropic/messages", ask(SONNET))
        .await;
    assert_eq!(status, StatusCode::OK);
    server
        .store
        .set_provider_key(alice, "anthropic", ALICE_KEY.as_bytes())
        .await
        .unwrap();
    let (status, _) = gateway
        .send(Method::POST, "/v1/anthropic/messages", ask(SONNET))
        .await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<_> = model
        .requests()
        .into_iter()
        .map(|r| r.credential.unwrap())
        .collect();
    assert_eq!(keys, ["sk-ant-admin-shared-key-9999", ALICE_KEY]);
}

#[tokio::test]
async fn zens_free_model_goes_out_with_the_anonymous_key_and_a_persons_zen_key_wins() {
    let model = ScriptedModel::start().await.unwrap();
    let server = TestServer::start().await;
    server.user("alice").await;
    let alice = server.store.user_by_name("alice").await.unwrap().id;
    let catalog = Catalog::new(vec![AdminProvider {
        name: "opencode".to_owned(),
        kind: None,
        base_url: Some(model.base_url()),
        models: Vec::new(),
        api_key: None,
        shared: true,
    }])
    .unwrap();
    session(&server.store, alice, "opencode/big-pickle").await;
    let gateway = Gateway::start(server.store.clone(), catalog).await;
    let (status, body) = gateway
        .send(
            Method::POST,
            "/v1/opencode/chat/completions",
            ask("big-pickle"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(model.requests()[0].credential.as_deref(), Some("public"));

    // With her own Zen key, hers goes out instead.
    server
        .store
        .set_provider_key(alice, "opencode", b"zen-key-of-alice-000000")
        .await
        .unwrap();
    let (status, _) = gateway
        .send(
            Method::POST,
            "/v1/opencode/chat/completions",
            ask("big-pickle"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        model.requests()[1].credential.as_deref(),
        Some("zen-key-of-alice-000000")
    );
}

#[tokio::test]
async fn a_spent_monthly_budget_stops_the_next_request_before_the_provider() {
    let model = ScriptedModel::start().await.unwrap();
    let server = TestServer::start().await;
    server.user("alice").await;
    let alice = server.store.user_by_name("alice").await.unwrap().id;
    let catalog = Catalog::new(vec![AdminProvider {
        name: "anthropic".to_owned(),
        kind: None,
        base_url: Some(model.base_url()),
        models: Vec::new(),
        api_key: Some("sk-ant-admin-shared-key-9999".to_owned()),
        shared: true,
    }])
    .unwrap();
    session(&server.store, alice, &format!("anthropic/{SONNET}")).await;
    // A cap just above one request's cost (10 in, 5 out at Sonnet's price: $0.000105).
    let gateway = Gateway::start_with(server.store.clone(), catalog, true, Some(0.0002)).await;
    for _ in 0..2 {
        let (status, body) = gateway
            .send(Method::POST, "/v1/anthropic/messages", ask(SONNET))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = gateway
        .send(Method::POST, "/v1/anthropic/messages", ask(SONNET))
        .await;
    refused_clearly(status, &body, "monthly model budget is used up");
    assert_eq!(
        model.requests().len(),
        2,
        "the refused request never left den"
    );
}

#[tokio::test]
async fn the_admins_cap_for_a_person_replaces_the_default_and_their_own_lower_cap_stops_them_first()
{
    let model = ScriptedModel::start().await.unwrap();
    let server = TestServer::start().await;
    server.user("alice").await;
    let alice = server.store.user_by_name("alice").await.unwrap().id;
    let catalog = Catalog::new(vec![AdminProvider {
        name: "anthropic".to_owned(),
        kind: None,
        base_url: Some(model.base_url()),
        models: Vec::new(),
        api_key: Some("sk-ant-admin-shared-key-9999".to_owned()),
        shared: true,
    }])
    .unwrap();
    session(&server.store, alice, &format!("anthropic/{SONNET}")).await;
    // den's default would stop her at once; the admin's cap for her lets one request through.
    let gateway = Gateway::start_with(server.store.clone(), catalog, true, Some(0.0)).await;
    let (status, body) = gateway
        .send(Method::POST, "/v1/anthropic/messages", ask(SONNET))
        .await;
    refused_clearly(status, &body, "an admin can raise it");
    server
        .store
        .set_admin_budget(alice, Some(0.0002))
        .await
        .unwrap();
    let (status, body) = gateway
        .send(Method::POST, "/v1/anthropic/messages", ask(SONNET))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Her own cap, lower than what she spent: her own words stop her, not the admin's.
    server
        .store
        .set_own_budget(alice, Some(0.0001))
        .await
        .unwrap();
    let (status, body) = gateway
        .send(Method::POST, "/v1/anthropic/messages", ask(SONNET))
        .await;
    refused_clearly(status, &body, "budget you set for yourself is used up");
    // Removed again: the admin's cap (not yet reached) lets her through.
    server.store.set_own_budget(alice, None).await.unwrap();
    let (status, _) = gateway
        .send(Method::POST, "/v1/anthropic/messages", ask(SONNET))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        model.requests().len(),
        2,
        "the refused requests never left den"
    );
}
