//! Every route of the OpenAPI document, called by a signed-in admin with bodies, path
//! parameters and query strings drawn at random (`scripts/fuzz` raises the count with
//! `DEN_FUZZ_ROUTE_CASES`): no call is answered with an internal error (500), and the server
//! keeps answering. A bad request must be refused as one, never crash a handler.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, TestServer};

/// Calls per route (default: a short budget for the test suite).
fn cases_per_route() -> usize {
    std::env::var("DEN_FUZZ_ROUTE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12)
}

/// Every property name the document's schemas declare, so random objects often carry the
/// fields a handler reads, with values of any type.
fn field_names(doc: &Value) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    fn walk(value: &Value, names: &mut std::collections::BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::Object(properties)) = map.get("properties") {
                    names.extend(properties.keys().cloned());
                }
                map.values().for_each(|v| walk(v, names));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, names)),
            _ => {}
        }
    }
    walk(doc, &mut names);
    names.into_iter().collect()
}

fn any_json(fields: Vec<String>) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        ".{0,30}".prop_map(Value::from),
        Just(Value::from("x".repeat(300_000))),
        Just(Value::from("/etc/passwd")),
        Just(Value::from("https://127.0.0.1:1/v1")),
    ];
    let field = prop::sample::select(fields);
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(field.clone(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A path parameter: the fixture's real ids, or text git, SQL or a path join would choke on.
fn any_segment(real: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(real),
        Just("..".to_owned()),
        Just("%2e%2e%2f".to_owned()),
        Just("00000000-0000-0000-0000-000000000000".to_owned()),
        Just("'; drop table users; --".to_owned()),
        Just("x".repeat(5000)),
        "[a-zA-Z0-9._~-]{0,40}",
        ".{0,20}",
    ]
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Json(Value),
    Raw(Vec<u8>),
}

#[tokio::test]
async fn no_route_answers_random_input_with_an_internal_error() {
    let repos = tempfile::tempdir().unwrap();
    den_test_support::init_repository(&repos.path().join("r"), &[("README.md", "# r\n")])
        .await
        .unwrap();
    let root = repos.path().to_path_buf();
    let server = TestServer::start_with(move |config| config.local_repo_roots = vec![root]).await;
    let admin = server.admin("root").await;
    let (status, session) = server
        .call(
            Method::POST,
            "/api/sessions",
            Auth::Bearer(&admin),
            Some(json!({"repository": repos.path().join("r").display().to_string()})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let real = vec![
        session["id"].as_str().unwrap().to_owned(),
        "anthropic".to_owned(),
        "root".to_owned(),
        "github.com".to_owned(),
    ];

    let doc = serde_json::to_value(den_server::routes::openapi()).unwrap();
    let body = prop_oneof![
        Just(Body::None),
        any_json(field_names(&doc)).prop_map(Body::Json),
        prop::collection::vec(any::<u8>(), 0..200).prop_map(Body::Raw),
    ];
    let query = prop_oneof![
        Just(String::new()),
        "[a-zA-Z]{1,10}=[^#&]{0,20}".prop_map(|q| format!("?{q}")),
        Just("?limit=-1&cursor=%ff".to_owned()),
        Just("?repository=..%2f..%2fetc".to_owned()),
    ];
    let segment = any_segment(real);
    let mut runner = TestRunner::default();
    let mut calls = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            for _ in 0..cases_per_route() {
                let mut concrete = path.clone();
                while let Some(start) = concrete.find('{') {
                    let end = concrete[start..].find('}').unwrap() + start;
                    let value = segment.new_tree(&mut runner).unwrap().current();
                    let encoded =
                        url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
                    concrete.replace_range(start..=end, &encoded);
                }
                concrete.push_str(&query.new_tree(&mut runner).unwrap().current());
                let body = body.new_tree(&mut runner).unwrap().current();
                let request = server.request(method.clone(), &concrete, Auth::Bearer(&admin));
                let request = match &body {
                    Body::None => request,
                    Body::Json(value) => request.json(value),
                    Body::Raw(bytes) => request
                        .header("content-type", "application/json")
                        .body(bytes.clone()),
                };
                let response = request.send().await.unwrap_or_else(|err| {
                    panic!("{method} {concrete} with {body:?}: the server did not answer: {err}")
                });
                assert_ne!(
                    response.status(),
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "{method} {concrete} with {body:?}"
                );
                calls += 1;
            }
        }
    }
    // Still serving, and the fixture's session is still the admin's.
    let (status, _) = server
        .call(Method::GET, "/api/auth/me", Auth::Bearer(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "after {calls} random calls");
}
