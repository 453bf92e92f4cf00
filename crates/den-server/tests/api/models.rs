//! The model catalog, provider keys and personal endpoints as a person sees them: a key
//! unlocks its provider's models for its owner only, is never shown back, and deleting it
//! locks them again.

use den_session::{AdminProvider, Catalog};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, TestServer, TestUser, assert_error};

const ALICE_KEY: &str = "sk-ant-api03-alice-secret-WXYZ";
const SONNET: &str = "anthropic/claude-sonnet-4-5-20250929";

async fn models(server: &TestServer, user: &TestUser) -> Value {
    let (status, catalog) = server
        .call(Method::GET, "/api/models", Auth::Bearer(user), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{catalog}");
    catalog
}

fn model<'a>(catalog: &'a Value, id: &str) -> &'a Value {
    catalog["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in {catalog}"))
}

#[tokio::test]
async fn a_key_unlocks_its_models_for_its_owner_only_and_is_never_shown() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mut answers = Vec::new();

    let catalog = models(&server, &alice).await;
    assert_eq!(catalog["defaultModel"], "opencode/big-pickle");
    let free = model(&catalog, "opencode/big-pickle");
    assert_eq!(
        (free["available"].clone(), free["keySource"].clone()),
        (json!(true), json!("free"))
    );
    let sonnet = model(&catalog, SONNET);
    assert_eq!(sonnet["available"], false);
    assert_eq!(sonnet["keyProvider"], "anthropic");
    assert!(
        sonnet["lockedReason"]
            .as_str()
            .unwrap()
            .contains("Anthropic")
    );
    assert_eq!(sonnet["price"]["input"], 3.0);
    for id in [
        "anthropic/claude-opus-4-5-20251101",
        "openai/gpt-5.2",
        "openai/gpt-5.1-codex-max",
    ] {
        assert_eq!(model(&catalog, id)["available"], false, "{id}");
    }

    let (status, set) = server
        .call(
            Method::PUT,
            "/api/provider-keys/anthropic",
            Auth::Cookie(&alice),
            Some(json!({"key": ALICE_KEY})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["set"], true);
    assert_eq!(set["fingerprint"], "…WXYZ");
    answers.push(set);

    let catalog = models(&server, &alice).await;
    let sonnet = model(&catalog, SONNET);
    assert_eq!(
        (sonnet["available"].clone(), sonnet["keySource"].clone()),
        (json!(true), json!("personal"))
    );
    assert_eq!(
        model(&catalog, "openai/gpt-5.2")["available"],
        false,
        "only Anthropic's"
    );
    answers.push(catalog);
    assert_eq!(
        model(&models(&server, &bob).await, SONNET)["available"],
        false,
        "bob has no key"
    );

    // A session on the model: alice may, bob is told why not and nothing is created.
    let body = json!({"repository": "https://example.com/a/b.git", "model": SONNET});
    let (status, created) = server
        .call(
            Method::POST,
            "/api/sessions",
            Auth::Bearer(&alice),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, refused) = server
        .call(
            Method::POST,
            "/api/sessions",
            Auth::Bearer(&bob),
            Some(body),
        )
        .await;
    assert_error(status, &refused, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needs your Anthropic key")
    );
    let (_, bobs) = server
        .call(Method::GET, "/api/sessions", Auth::Bearer(&bob), None)
        .await;
    assert_eq!(bobs["sessions"], json!([]));

    let (_, keys) = server
        .call(
            Method::GET,
            "/api/provider-keys",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    answers.push(keys);

    let (status, _) = server
        .call(
            Method::DELETE,
            "/api/provider-keys/anthropic",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        model(&models(&server, &alice).await, SONNET)["available"],
        false,
        "locked again"
    );
    let (status, body) = server
        .call(
            Method::DELETE,
            "/api/provider-keys/anthropic",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    for answer in answers {
        assert!(
            !answer.to_string().contains(ALICE_KEY),
            "the key was shown: {answer}"
        );
    }
}

#[tokio::test]
async fn a_personal_endpoint_adds_its_models_to_its_owners_catalog_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let (status, endpoint) = server
        .call(
            Method::PUT,
            "/api/model-endpoints/home",
            Auth::Bearer(&alice),
            Some(json!({"baseUrl": "https://93.184.216.34/v1/", "models": ["llama-3"], "key": "home-endpoint-key-1234"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{endpoint}");
    assert_eq!(endpoint["provider"], "my-home");
    assert_eq!(endpoint["baseUrl"], "https://93.184.216.34/v1");
    assert_eq!(
        (
            endpoint["keySet"].clone(),
            endpoint["keyFingerprint"].clone()
        ),
        (json!(true), json!("…1234"))
    );
    assert!(!endpoint.to_string().contains("home-endpoint-key"));

    let mine = model(&models(&server, &alice).await, "my-home/llama-3").clone();
    assert_eq!(mine["available"], true);
    let bobs = models(&server, &bob).await;
    assert!(!bobs.to_string().contains("my-home"));
    // bob cannot start a session on alice's endpoint.
    let (status, body) = server
        .call(
            Method::POST,
            "/api/sessions",
            Auth::Bearer(&bob),
            Some(json!({"repository": "https://example.com/a/b.git", "model": "my-home/llama-3"})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");

    let (status, _) = server
        .call(
            Method::DELETE,
            "/api/model-endpoints/home",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        !models(&server, &alice)
            .await
            .to_string()
            .contains("my-home")
    );
}

#[tokio::test]
async fn an_admin_key_is_used_by_everyone_only_when_shared() {
    for shared in [true, false] {
        let server = TestServer::start_with(|config| {
            config.catalog = Catalog::new(vec![AdminProvider {
                name: "openai".to_owned(),
                kind: None,
                base_url: None,
                models: Vec::new(),
                api_key: Some("sk-admin-openai-key-000000".to_owned()),
                shared,
            }])
            .unwrap();
        })
        .await;
        let alice = server.user("alice").await;
        let catalog = models(&server, &alice).await;
        let gpt = model(&catalog, "openai/gpt-5.2");
        assert_eq!(gpt["available"], shared, "shared = {shared}");
        if shared {
            assert_eq!(gpt["keySource"], "shared");
        }
        let (_, keys) = server
            .call(
                Method::GET,
                "/api/provider-keys",
                Auth::Bearer(&alice),
                None,
            )
            .await;
        let openai = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["provider"] == "openai")
            .unwrap();
        assert_eq!(openai["sharedKey"], shared);
        assert!(!keys.to_string().contains("sk-admin"));
        assert!(!catalog.to_string().contains("sk-admin"));
    }
}

#[tokio::test]
async fn an_admin_may_allow_endpoints_on_private_addresses() {
    let server = TestServer::start_with(|config| config.allow_private_endpoints = true).await;
    let alice = server.user("alice").await;
    let (status, body) = server
        .call(
            Method::PUT,
            "/api/model-endpoints/local",
            Auth::Bearer(&alice),
            Some(json!({"baseUrl": "http://127.0.0.1:11434/v1", "models": ["qwen"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["keySet"], false);
}

#[tokio::test]
async fn usage_is_reported_to_its_owner_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let alice_id = server.store.user_by_name("alice").await.unwrap().id;
    let session = uuid::Uuid::now_v7();
    for cost in [0.25, 0.5] {
        server
            .store
            .record_usage(den_store::NewUsage {
                owner_id: alice_id,
                session_id: session,
                model: SONNET,
                input_tokens: 100,
                output_tokens: 20,
                reasoning_tokens: 0,
                cache_read_tokens: 0,
                cache_write_tokens: 0,
                cost_usd: cost,
            })
            .await
            .unwrap();
    }
    let (status, report) = server
        .call(Method::GET, "/api/usage", Auth::Bearer(&alice), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    for period in ["today", "month"] {
        assert_eq!(report[period]["requests"], 2, "{report}");
        assert_eq!(report[period]["inputTokens"], 200);
        assert_eq!(report[period]["costUsd"], 0.75);
    }
    assert_eq!(report["sessions"][0]["sessionId"], session.to_string());
    let (_, theirs) = server
        .call(Method::GET, "/api/usage", Auth::Bearer(&bob), None)
        .await;
    assert_eq!(theirs["month"]["requests"], 0);
    assert_eq!(theirs["sessions"], json!([]));
}
