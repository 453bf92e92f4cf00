//! People's own model keys with the real OpenCode: den's built-in Anthropic provider pointed
//! at the scripted model (speaking Anthropic's streaming format), a person's own key reaching
//! it, another person locked out, a deleted key never used again, a personal OpenAI-compatible
//! endpoint, and no key anywhere it should not be.

use den_protocol::events::{ServerMessage, SessionEvent};
use den_test_support::{Api, Turn};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Den, assistant_text};
use crate::secrets;

const ALICE_KEY: &str = "sk-ant-api03-alice-e2e-secret-Q7Zk";
const ENDPOINT_KEY: &str = "home-endpoint-e2e-secret-P4Lm";
const SONNET: &str = "anthropic/claude-sonnet-4-5-20250929";

#[tokio::test]
async fn a_persons_own_key_reaches_the_provider_and_once_deleted_is_never_used_again() {
    let den = Den::start_with(
        "[[providers]]\nname = \"anthropic\"\nbase_url = \"{model_url}\"\n\
         [models]\nallow_private_endpoints = true\n",
    )
    .await;
    let (status, body) = den
        .api(
            Method::PUT,
            "/api/provider-keys/anthropic",
            Some(json!({"key": ALICE_KEY})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // alice's turn on Claude Sonnet 4.5 reaches the Anthropic stand-in with her key.
    den.model
        .push(Turn::text("Hello from the Anthropic stand-in."));
    let session = den
        .create_session_on(&den.token, SONNET, Some("say hello"))
        .await;
    let mut socket = den.connect(&session, 0).await;
    socket.until_turn_finished().await;
    assert_eq!(
        assistant_text(&socket.events),
        "Hello from the Anthropic stand-in."
    );
    let requests = den.model.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert_eq!(request.api, Api::Anthropic);
        assert_eq!(
            request.credential.as_deref(),
            Some(ALICE_KEY),
            "the key den injected"
        );
        assert_eq!(request.body["model"], "claude-sonnet-4-5-20250929");
    }

    // Every request the stand-in answered (title included) is metered, at Sonnet's price.
    let (_, usage) = den.api(Method::GET, "/api/usage", None).await;
    let answered = i64::try_from(requests.len()).unwrap();
    assert_eq!(usage["month"]["requests"], answered, "{usage}");
    assert_eq!(
        usage["month"]["inputTokens"],
        10 * answered,
        "the stand-in reports 10 in"
    );
    assert_eq!(usage["month"]["outputTokens"], 5 * answered, "and 5 out");
    assert_eq!(usage["sessions"][0]["sessionId"], session.as_str());
    // The turn's own usage event: what the gateway metered while it ran.
    let metered: Vec<_> = socket
        .events
        .iter()
        .filter_map(|e| match &e.event {
            SessionEvent::TurnUsage { usage, .. } => Some(usage.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(metered.len(), 1, "one usage event for the one turn");
    assert!((1..=answered).contains(&metered[0].requests));
    assert_eq!(metered[0].input_tokens, 10 * metered[0].requests);
    assert_eq!(metered[0].output_tokens, 5 * metered[0].requests);
    assert!(metered[0].cost_usd > 0.0, "priced at Sonnet 4.5's price");

    // bob has no key: the model is locked for him and a session on it is refused clearly.
    den.add_user("bob").await;
    let bob = den.sign_in("bob").await;
    let (_, catalog) = den.api_as(&bob, Method::GET, "/api/models", None).await;
    let sonnet = catalog["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == SONNET)
        .unwrap();
    assert_eq!(sonnet["available"], false, "{catalog}");
    let body =
        json!({"repository": den.repo.display().to_string(), "model": SONNET, "prompt": "hi"});
    let (status, refused) = den
        .api_as(&bob, Method::POST, "/api/sessions", Some(body))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needs your Anthropic key")
    );

    // alice deletes her key mid-session: the next turn is refused at the gateway, with a
    // message in the transcript, and no request (nor retry) reaches the provider.
    let (status, _) = den
        .api(Method::DELETE, "/api/provider-keys/anthropic", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let before = den.model.requests().len();
    let already = socket.events.len();
    den.prompt(&session, "again").await;
    socket.until_turn_finished().await;
    let second_turn = serde_json::to_string(&socket.events[already..]).unwrap();
    assert!(
        second_turn.contains("no key for provider Anthropic"),
        "the transcript says why: {second_turn}"
    );
    assert!(
        !second_turn.contains("provider_retry"),
        "OpenCode did not retry: {second_turn}"
    );
    assert_eq!(
        den.model.requests().len(),
        before,
        "nothing reached the provider"
    );

    // A personal OpenAI-compatible endpoint, with its own key.
    let (status, body) = den
        .api(
            Method::PUT,
            "/api/model-endpoints/home",
            Some(json!({"baseUrl": den.model.base_url(), "models": ["llama-3"], "key": ENDPOINT_KEY})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    den.model.push(Turn::text("Hello from my own server."));
    let own = den
        .create_session_on(&den.token, "my-home/llama-3", Some("say hello"))
        .await;
    let mut own_socket = den.connect(&own, 0).await;
    own_socket.until_turn_finished().await;
    assert_eq!(
        assistant_text(&own_socket.events),
        "Hello from my own server."
    );
    let endpoint_requests: Vec<_> = den
        .model
        .requests()
        .into_iter()
        .filter(|r| r.api == Api::OpenAi)
        .collect();
    assert!(!endpoint_requests.is_empty());
    for request in endpoint_requests {
        assert_eq!(request.credential.as_deref(), Some(ENDPOINT_KEY));
        assert_eq!(request.body["model"], "llama-3");
    }

    // No key in any event, any answer of den's, any file of den's data (database, checkouts,
    // sandboxes, log, snapshot archives) or any process (the sandboxes still run).
    let events_seen = serde_json::to_string(&socket.events).unwrap()
        + &serde_json::to_string(&own_socket.events).unwrap();
    assert!(!events_seen.contains(ALICE_KEY) && !events_seen.contains(ENDPOINT_KEY));
    let answers = secrets::api_answers(&den, &[&session, &own]).await;
    for key in [ALICE_KEY, ENDPOINT_KEY] {
        assert!(!answers.contains(key), "{key} in den's answers");
    }
    secrets::assert_no_key_in_processes(&[ALICE_KEY, ENDPOINT_KEY]);
    secrets::assert_no_key_in_files(&den, &[ALICE_KEY, ENDPOINT_KEY]);
    assert!(
        socket
            .events
            .iter()
            .any(|e| matches!(e.event, SessionEvent::TurnFinished { .. }))
    );
}

#[tokio::test]
async fn switching_the_model_between_prompts_is_honoured_and_each_turn_names_its_model() {
    let den = Den::start_with(
        "[[providers]]\nname = \"other\"\nkind = \"openai-compatible\"\n\
         base_url = \"{model_url}\"\nmodels = [\"second-model\"]\n",
    )
    .await;
    den.model.push(Turn::text("First answer."));
    let session = den.create_session(Some("first")).await;
    let mut socket = den.connect(&session, 0).await;
    socket.until_turn_finished().await;

    // A model the person may not use is refused, and the session keeps its model.
    let path = format!("/api/sessions/{session}/prompt");
    let (status, refused) = den
        .api(
            Method::POST,
            &path,
            Some(json!({"text": "x", "model": SONNET})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");

    den.model.push(Turn::text("Second answer."));
    let (status, body) = den
        .api(
            Method::POST,
            &path,
            Some(json!({"text": "second", "model": "other/second-model"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    socket.until_turn_finished().await;
    let agent = den.model.agent_requests();
    assert_eq!(agent.first().unwrap().body["model"], "scripted-model");
    assert_eq!(
        agent.last().unwrap().body["model"],
        "second-model",
        "the stand-in saw the new model"
    );

    // Over the WebSocket, the same rules: a locked or malformed model is refused, nothing runs.
    for (model, code) in [(SONNET, "forbidden"), ("no-slash", "invalid_request")] {
        socket
            .send(json!({"type": "prompt", "text": "x", "model": model}))
            .await;
        match socket.next_refusal().await {
            ServerMessage::Refused { code: got, .. } => assert_eq!(got, code, "{model}"),
            other => panic!("{other:?}"),
        }
    }
    den.model.push(Turn::text("Third answer."));
    socket
        .send(json!({"type": "prompt", "text": "third", "model": "scripted/scripted-model"}))
        .await;
    socket.until_turn_finished().await;
    assert_eq!(
        den.model.agent_requests().last().unwrap().body["model"],
        "scripted-model",
        "the WebSocket prompt switched back"
    );
    let models: Vec<Option<String>> = socket
        .events
        .iter()
        .filter_map(|e| match &e.event {
            SessionEvent::TurnStarted { model, .. } => Some(model.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        models,
        [
            Some("scripted/scripted-model".to_owned()),
            Some("other/second-model".to_owned()),
            Some("scripted/scripted-model".to_owned())
        ],
        "the transcript names the model of each turn"
    );
    assert!(assistant_text(&socket.events).ends_with("Third answer."));
    let (_, record) = den
        .api(Method::GET, &format!("/api/sessions/{session}"), None)
        .await;
    assert_eq!(record["model"], "scripted/scripted-model");
}

#[tokio::test]
async fn openai_models_speak_the_responses_api_with_the_persons_key() {
    let den =
        Den::start_with("[[providers]]\nname = \"openai\"\nbase_url = \"{model_url}\"\n").await;
    let key = "sk-proj-alice-openai-e2e-secret-R2d2";
    let (status, body) = den
        .api(
            Method::PUT,
            "/api/provider-keys/openai",
            Some(json!({"key": key})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    den.model
        .push(Turn::new().say_deltas(["Hello from ", "the Responses stand-in."]));
    let session = den
        .create_session_on(&den.token, "openai/gpt-5.1-codex-max", Some("say hello"))
        .await;
    let mut socket = den.connect(&session, 0).await;
    socket.until_turn_finished().await;
    assert_eq!(
        assistant_text(&socket.events),
        "Hello from the Responses stand-in."
    );
    let requests = den.model.requests();
    assert!(!requests.is_empty());
    for request in requests {
        assert_eq!(
            request.api,
            Api::Responses,
            "OpenCode's openai SDK calls /responses"
        );
        assert_eq!(request.credential.as_deref(), Some(key));
        assert_eq!(request.body["model"], "gpt-5.1-codex-max");
    }
}

#[tokio::test]
async fn a_spent_budget_stops_the_next_turn_with_a_clear_message_and_no_retries() {
    // The admin's default cap is far above one turn; alice then sets a lower one of her own
    // that any metered request at Sonnet's price spends.
    let den = Den::start_with(
        "[[providers]]\nname = \"anthropic\"\nbase_url = \"{model_url}\"\n\
         [models]\nmonthly_budget_usd = 1.0\n",
    )
    .await;
    let (status, _) = den
        .api(
            Method::PUT,
            "/api/provider-keys/anthropic",
            Some(json!({"key": ALICE_KEY})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    den.model.push(Turn::text("Spent."));
    let session = den
        .create_session_on(&den.token, SONNET, Some("first"))
        .await;
    let mut socket = den.connect(&session, 0).await;
    socket.until_turn_finished().await;
    let spent = den.model.requests().len();
    assert!(spent >= 1, "the first request ran within the budget");

    let (status, refused) = den
        .api(Method::PUT, "/api/budget", Some(json!({"monthlyUsd": 2.0})))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "above the admin's cap: {refused}"
    );
    let (status, budget) = den
        .api(
            Method::PUT,
            "/api/budget",
            Some(json!({"monthlyUsd": 0.0000001})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{budget}");
    assert!(budget["spentUsd"].as_f64().unwrap() > 0.0000001, "{budget}");

    let already = socket.events.len();
    den.prompt(&session, "second").await;
    socket.until_turn_finished().await;
    let second_turn = serde_json::to_string(&socket.events[already..]).unwrap();
    assert!(
        second_turn.contains("monthly model budget you set for yourself is used up"),
        "the transcript says why: {second_turn}"
    );
    // OpenCode's retries show as `provider_retry` errors in den's transcript.
    assert!(
        !second_turn.contains("provider_retry"),
        "OpenCode did not retry: {second_turn}"
    );
    assert_eq!(
        den.model.requests().len(),
        spent,
        "nothing more reached the provider"
    );
}
