//! "Test key": a person's saved key (or endpoint) tried with one tiny request against stand-ins
//! that accept only the right key; the answer says whether it works or what the provider said,
//! and never holds the key.

use den_session::{AdminProvider, Catalog};
use den_store::NewModelEndpoint;
use den_test_support::ScriptedModel;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, TestServer, TestUser, assert_error};

const RIGHT_KEY: &str = "sk-ant-api03-the-right-key-0001";
const WRONG_KEY: &str = "sk-ant-api03-a-wrong-key-0002";

async fn test_key(server: &TestServer, user: &TestUser, path: &str) -> (StatusCode, Value) {
    server
        .call(Method::POST, path, Auth::Cookie(user), None)
        .await
}

#[tokio::test]
async fn a_provider_key_is_tried_with_one_tiny_request_and_the_providers_refusal_is_shown() {
    let model = ScriptedModel::start().await.unwrap();
    model.require_key(RIGHT_KEY);
    let base_url = model.base_url();
    let server = TestServer::start_with(|config| {
        config.catalog = Catalog::new(vec![AdminProvider {
            name: "anthropic".to_owned(),
            kind: None,
            base_url: Some(base_url),
            models: Vec::new(),
            api_key: None,
            shared: true,
        }])
        .unwrap();
    })
    .await;
    let alice = server.user("alice").await;
    let path = "/api/provider-keys/anthropic/test";

    // No key of hers to test: 404, and the provider hears nothing.
    let (status, body) = test_key(&server, &alice, path).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert!(model.requests().is_empty());

    for (key, works) in [(RIGHT_KEY, true), (WRONG_KEY, false)] {
        let (status, _) = server
            .call(
                Method::PUT,
                "/api/provider-keys/anthropic",
                Auth::Cookie(&alice),
                Some(json!({"key": key})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, result) = test_key(&server, &alice, path).await;
        assert_eq!(status, StatusCode::OK, "{result}");
        assert_eq!(result["ok"], works, "{result}");
        assert!(
            !result.to_string().contains(key),
            "the key came back: {result}"
        );
        if works {
            assert_eq!(result["status"], 200);
        } else {
            assert_eq!(result["status"], 401);
            assert!(
                result["message"]
                    .as_str()
                    .unwrap()
                    .contains("invalid x-api-key"),
                "the provider's own words: {result}"
            );
        }
    }
    let seen = model.requests();
    assert_eq!(seen.len(), 2, "one request per test");
    assert_eq!(seen[0].credential.as_deref(), Some(RIGHT_KEY));
    assert_eq!(seen[0].body["max_tokens"], 1, "a tiny request");
    assert_eq!(
        seen[0].body["model"], "claude-sonnet-4-5-20250929",
        "the cheaper of den's Anthropic models"
    );

    // An unknown provider is a clear 400.
    let (status, body) = test_key(&server, &alice, "/api/provider-keys/acme/test").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(model.requests().len(), 2);
}

#[tokio::test]
async fn an_endpoint_is_tried_where_its_check_pinned_it_and_an_unreachable_one_says_so() {
    let model = ScriptedModel::start().await.unwrap();
    model.require_key("endpoint-right-key-42");
    let server = TestServer::start_with(|config| config.allow_private_endpoints = true).await;
    let alice = server.user("alice").await;
    for (name, key) in [
        ("home", "endpoint-right-key-42"),
        ("stale", "endpoint-old-key-41"),
    ] {
        let (status, body) = server
            .call(
                Method::PUT,
                &format!("/api/model-endpoints/{name}"),
                Auth::Cookie(&alice),
                Some(json!({"baseUrl": model.base_url(), "models": ["llama-3"], "key": key})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, works) = test_key(&server, &alice, "/api/model-endpoints/home/test").await;
    assert_eq!(
        (works["ok"].clone(), works["status"].clone()),
        (json!(true), json!(200)),
        "{works}"
    );
    let (_, refused) = test_key(&server, &alice, "/api/model-endpoints/stale/test").await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("Incorrect API key provided"),
        "{refused}"
    );
    assert!(!refused.to_string().contains("endpoint-old-key-41"));
    let seen = model.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body["model"], "llama-3");
    assert_eq!(seen[0].credential.as_deref(), Some("endpoint-right-key-42"));

    // Nobody listening: it says den could not reach it.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let (status, _) = server
        .call(
            Method::PUT,
            "/api/model-endpoints/gone",
            Auth::Cookie(&alice),
            Some(json!({"baseUrl": closed_url, "models": ["m"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, gone) = test_key(&server, &alice, "/api/model-endpoints/gone/test").await;
    assert_eq!(
        (gone["ok"].clone(), gone["status"].clone()),
        (json!(false), Value::Null),
        "{gone}"
    );
    assert!(
        gone["message"]
            .as_str()
            .unwrap()
            .contains("could not reach"),
        "{gone}"
    );

    // Someone else's endpoint, or none: 404.
    let bob = server.user("bob").await;
    let (status, body) = test_key(&server, &bob, "/api/model-endpoints/home/test").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(model.requests().len(), 2);
}

#[tokio::test]
async fn an_endpoint_on_a_private_address_is_not_tried_unless_the_admin_allows_it() {
    let model = ScriptedModel::start().await.unwrap();
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let alice_id = server.store.user_by_name("alice").await.unwrap().id;
    // Stored directly: the API would refuse it, but a name may resolve elsewhere later.
    server
        .store
        .put_model_endpoint(NewModelEndpoint {
            owner_id: alice_id,
            name: "home",
            base_url: &model.base_url(),
            models: &["llama-3".to_owned()],
            api_key: None,
        })
        .await
        .unwrap();
    let (status, result) = test_key(&server, &alice, "/api/model-endpoints/home/test").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result["ok"], false);
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .contains("loopback, private or link-local"),
        "{result}"
    );
    assert!(model.requests().is_empty(), "nothing was sent");
}
