//! A person's monthly model budget through the API: the admin's cap (den's default or one set
//! for them), a lower one of their own, and every bad amount refused with nothing changed.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, TestServer, TestUser, assert_error};

async fn budget(server: &TestServer, user: &TestUser) -> Value {
    let (status, budget) = server
        .call(Method::GET, "/api/budget", Auth::Bearer(user), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{budget}");
    budget
}

async fn set(server: &TestServer, user: &TestUser, body: Value) -> (StatusCode, Value) {
    server
        .call(Method::PUT, "/api/budget", Auth::Cookie(user), Some(body))
        .await
}

#[tokio::test]
async fn a_person_may_set_a_lower_budget_but_never_a_higher_one() {
    let server = TestServer::start_with(|config| config.monthly_budget_usd = Some(50.0)).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let alice_id = server.store.user_by_name("alice").await.unwrap().id;
    assert_eq!(
        budget(&server, &alice).await,
        json!({"adminCapUsd": 50.0, "ownCapUsd": null, "capUsd": 50.0, "spentUsd": 0.0})
    );

    let (status, lowered) = set(&server, &alice, json!({"monthlyUsd": 10})).await;
    assert_eq!(status, StatusCode::OK, "{lowered}");
    assert_eq!(
        (lowered["ownCapUsd"].clone(), lowered["capUsd"].clone()),
        (json!(10.0), json!(10.0))
    );
    assert_eq!(
        budget(&server, &bob).await["ownCapUsd"],
        Value::Null,
        "bob's is his own"
    );

    // Higher than the admin's cap: a clear 400 that says why, and her cap stays.
    let (status, refused) = set(&server, &alice, json!({"monthlyUsd": 60})).await;
    assert_error(status, &refused, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lower than the admin's cap"),
        "{refused}"
    );
    assert_eq!(budget(&server, &alice).await["ownCapUsd"], 10.0);

    // The admin sets a cap for her (`den user budget`): it replaces the default for her only.
    server
        .store
        .set_admin_budget(alice_id, Some(5.0))
        .await
        .unwrap();
    let now = budget(&server, &alice).await;
    assert_eq!(
        (now["adminCapUsd"].clone(), now["capUsd"].clone()),
        (json!(5.0), json!(5.0))
    );
    assert_eq!(budget(&server, &bob).await["adminCapUsd"], 50.0);

    // Removing her own cap leaves the admin's.
    let (status, cleared) = set(&server, &alice, json!({"monthlyUsd": null})).await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert_eq!(
        (cleared["ownCapUsd"].clone(), cleared["capUsd"].clone()),
        (Value::Null, json!(5.0))
    );
}

#[tokio::test]
async fn without_any_admin_cap_a_person_may_set_any_budget_of_their_own() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    assert_eq!(budget(&server, &alice).await["capUsd"], Value::Null);
    let (status, set_to) = set(&server, &alice, json!({"monthlyUsd": 250.5})).await;
    assert_eq!(status, StatusCode::OK, "{set_to}");
    assert_eq!(set_to["capUsd"], 250.5);
}

#[tokio::test]
async fn bad_budgets_are_refused_clearly_and_change_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (status, _) = set(&server, &alice, json!({"monthlyUsd": 7})).await;
    assert_eq!(status, StatusCode::OK);
    for body in [
        json!({"monthlyUsd": -1}).to_string(),
        json!({"monthlyUsd": 1e12}).to_string(),
        json!({"monthlyUsd": "ten"}).to_string(),
        json!({"monthlyUsd": 5, "currency": "EUR"}).to_string(),
        json!({"monthlyUsd": true}).to_string(),
        json!({}).to_string(),
        "{\"monthlyUsd\": 5".to_owned(),
    ] {
        let response = server
            .request(Method::PUT, "/api/budget", Auth::Bearer(&alice))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let (status, error) = crate::support::read(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert_eq!(
            budget(&server, &alice).await["ownCapUsd"],
            7.0,
            "after {body}"
        );
    }
}

#[tokio::test]
async fn an_admin_sees_everyones_budget_and_sets_a_cap_per_person() {
    let server = TestServer::start_with(|config| config.monthly_budget_usd = Some(50.0)).await;
    let root = server.admin("root").await;
    let alice = server.user("alice").await;
    let (status, overview) = server
        .call(Method::GET, "/api/admin/budgets", Auth::Cookie(&root), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{overview}");
    assert_eq!(overview["defaultCapUsd"], 50.0);
    let people = overview["people"].as_array().unwrap();
    assert_eq!(people.len(), 2);
    assert!(
        people
            .iter()
            .all(|p| p["adminCapUsd"].is_null() && p["capUsd"] == 50.0)
    );

    let path = "/api/admin/budgets/alice";
    let (status, updated) = server
        .call(
            Method::PUT,
            path,
            Auth::Cookie(&root),
            Some(json!({"monthlyUsd": 80})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        (updated["adminCapUsd"].clone(), updated["capUsd"].clone()),
        (json!(80.0), json!(80.0))
    );
    // Alice sees the admin's cap for her, and may now set hers up to it.
    assert_eq!(budget(&server, &alice).await["adminCapUsd"], 80.0);
    let (status, _) = set(&server, &alice, json!({"monthlyUsd": 70})).await;
    assert_eq!(status, StatusCode::OK);

    // Bad amounts and unknown people are refused clearly, and change nothing.
    for (target, body, expected) in [
        (path, json!({"monthlyUsd": -5}), StatusCode::BAD_REQUEST),
        (path, json!({}), StatusCode::BAD_REQUEST),
        (path, json!({"monthlyUsd": "lots"}), StatusCode::BAD_REQUEST),
        (
            "/api/admin/budgets/nobody",
            json!({"monthlyUsd": 5}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (status, error) = server
            .call(Method::PUT, target, Auth::Bearer(&root), Some(body.clone()))
            .await;
        assert_eq!(status, expected, "{body}: {error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    assert_eq!(budget(&server, &alice).await["adminCapUsd"], 80.0);

    // Back to den's default.
    let (status, reset) = server
        .call(
            Method::PUT,
            path,
            Auth::Cookie(&root),
            Some(json!({"monthlyUsd": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            reset["adminCapUsd"].clone(),
            reset["ownCapUsd"].clone(),
            reset["capUsd"].clone()
        ),
        (Value::Null, json!(70.0), json!(50.0)),
        "her own cap stays; the lower default applies"
    );
}
