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
