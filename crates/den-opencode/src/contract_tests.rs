//! Checks the client against the pinned OpenAPI document: every (method, path) it calls, every
//! field it sends, and every field it reads.
//!
//! Sent fields come from serializing the real request types with every option set. Read fields
//! come from deserializing fixtures (recorded from a live OpenCode 1.18.33, plus hand-written
//! ones for events a scripted run does not produce) into the typed values and serializing them
//! back: response types never skip fields, so every field a type reads appears in its output.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Value, json};

use crate::endpoints::{self, ALL, Endpoint, Method};
use crate::event::{Event, EventEnvelope, KNOWN_EVENT_TYPES};
use crate::message::{Message, MessageWithParts, Part};
use crate::pty::{CreatePty, Pty, PtySize, ResizePty};
use crate::session::{
    CreateSession, FileDiff, Health, ModelRef, PermissionAction, PermissionReply,
    PermissionReplyRequest, PermissionRule, PromptRequest, QuestionReplyRequest, Session,
};

/// Event types OpenCode sends that its OpenAPI document does not list.
const UNDOCUMENTED_EVENTS: &[&str] = &["server.heartbeat"];

fn spec() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("openapi/openapi-{}.json", crate::PINNED_VERSION));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    serde_json::from_str(&text).expect("spec is JSON")
}

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

fn operation(spec: &Value, endpoint: Endpoint) -> &Value {
    let method = match endpoint.method {
        Method::Get => "get",
        Method::Post => "post",
        Method::Put => "put",
        Method::Delete => "delete",
    };
    &spec["paths"][endpoint.path][method]
}

fn request_schema(spec: &Value, endpoint: Endpoint) -> &Value {
    &operation(spec, endpoint)["requestBody"]["content"]["application/json"]["schema"]
}

fn response_schema(spec: &Value, endpoint: Endpoint) -> &Value {
    &operation(spec, endpoint)["responses"]["200"]["content"]["application/json"]["schema"]
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            resolve(spec, &spec["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// Collects every place where `value` has a field, enum value or scalar type that `schema`
/// does not allow. `null` stands for an absent optional field and matches anything.
fn violations(spec: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    if value.is_null() {
        return;
    }
    if let Some(branches) = schema.get("anyOf").or(schema.get("oneOf")) {
        let mut best: Option<Vec<String>> = None;
        for branch in branches.as_array().into_iter().flatten() {
            let mut found = Vec::new();
            violations(spec, branch, value, at, &mut found);
            if found.is_empty() {
                return;
            }
            if best.as_ref().is_none_or(|best| found.len() < best.len()) {
                best = Some(found);
            }
        }
        out.extend(best.unwrap_or_else(|| vec![format!("{at}: anyOf without branches")]));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        out.push(format!("{at}: {value} not in {allowed:?}"));
    }
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            for (key, field) in fields {
                let here = format!("{at}.{key}");
                match (properties.and_then(|props| props.get(key)), additional) {
                    (Some(field_schema), _) => violations(spec, field_schema, field, &here, out),
                    (None, Some(extra)) if extra.is_object() => {
                        violations(spec, extra, field, &here, out);
                    }
                    (None, Some(Value::Bool(true))) => {}
                    // A bare `{"type": "object"}` is a free-form map.
                    (None, None) if properties.is_none() => {}
                    (None, _) => out.push(format!("{here}: not in the schema")),
                }
            }
            expect_type(schema, "object", at, out);
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    violations(spec, item_schema, item, &format!("{at}[{index}]"), out);
                }
            }
            expect_type(schema, "array", at, out);
        }
        Value::String(_) => expect_type(schema, "string", at, out),
        Value::Bool(_) => expect_type(schema, "boolean", at, out),
        Value::Number(_) => {
            if !matches!(schema_type(schema), None | Some("number" | "integer")) {
                out.push(format!("{at}: number where the schema has {schema}"));
            }
        }
        Value::Null => {}
    }
}

fn schema_type(schema: &Value) -> Option<&str> {
    schema.get("type").and_then(Value::as_str)
}

fn expect_type(schema: &Value, expected: &str, at: &str, out: &mut Vec<String>) {
    if let Some(actual) = schema_type(schema)
        && actual != expected
    {
        out.push(format!("{at}: {expected} where the schema has {actual}"));
    }
}

fn assert_matches(spec: &Value, schema: &Value, value: &impl Serialize, what: &str) {
    assert!(!schema.is_null(), "{what}: no schema in the spec");
    let value = serde_json::to_value(value).expect("serializable");
    let mut out = Vec::new();
    violations(spec, schema, &value, what, &mut out);
    assert!(
        out.is_empty(),
        "{what} does not match the spec:\n{}",
        out.join("\n")
    );
}

#[test]
fn every_endpoint_exists_with_its_operation_id() {
    let spec = spec();
    for (_, endpoint) in ALL {
        let operation = operation(&spec, *endpoint);
        assert!(
            operation.is_object(),
            "{:?} {} is not in the spec",
            endpoint.method,
            endpoint.path
        );
        assert_eq!(operation["operationId"], endpoint.operation, "{endpoint:?}");
    }
}

#[test]
fn the_client_calls_no_endpoint_outside_the_checked_list() {
    let source = [include_str!("client.rs"), include_str!("pty.rs")].concat();
    let used: BTreeSet<&str> = source
        .split("endpoints::")
        .skip(1)
        .map(|rest| {
            let end = rest
                .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|name| !name.is_empty())
        .collect();
    assert!(used.len() >= 10, "found only {used:?}");
    let listed: BTreeSet<&str> = ALL.iter().map(|(name, _)| *name).collect();
    assert_eq!(used, listed);
}

#[test]
fn request_bodies_match_the_spec() {
    let spec = spec();
    let create = CreateSession {
        title: Some("title".into()),
        permission: Some(vec![PermissionRule {
            permission: "bash".into(),
            pattern: "*".into(),
            action: PermissionAction::Ask,
        }]),
    };
    assert_matches(
        &spec,
        request_schema(&spec, endpoints::SESSION_CREATE),
        &create,
        "create",
    );

    let mut prompt = PromptRequest::text(
        "hello",
        Some(ModelRef {
            provider_id: "p".into(),
            model_id: "m".into(),
        }),
    );
    prompt.message_id = Some("msg_1".into());
    prompt.agent = Some("build".into());
    let schema = request_schema(&spec, endpoints::SESSION_PROMPT_ASYNC);
    assert_matches(&spec, schema, &prompt, "prompt_async");

    for reply in [
        PermissionReply::Once,
        PermissionReply::Always,
        PermissionReply::Reject,
    ] {
        let body = PermissionReplyRequest {
            reply,
            message: Some("because"),
        };
        let schema = request_schema(&spec, endpoints::PERMISSION_REPLY);
        assert_matches(&spec, schema, &body, "permission reply");
    }
    let create_pty = CreatePty {
        title: Some("den".into()),
        env: [("OPENCODE_SERVER_PASSWORD".to_owned(), String::new())].into(),
    };
    assert_matches(
        &spec,
        request_schema(&spec, endpoints::PTY_CREATE),
        &create_pty,
        "pty create",
    );
    let resize = ResizePty {
        size: PtySize {
            rows: 40,
            cols: 100,
        },
    };
    assert_matches(
        &spec,
        request_schema(&spec, endpoints::PTY_UPDATE),
        &resize,
        "pty resize",
    );
    let answers = vec![vec!["A".to_owned()]];
    let body = QuestionReplyRequest { answers: &answers };
    assert_matches(
        &spec,
        request_schema(&spec, endpoints::QUESTION_REPLY),
        &body,
        "question",
    );
}

#[test]
fn response_types_read_only_fields_the_spec_has() {
    let spec = spec();
    let health = Health {
        healthy: true,
        version: "1.18.33".into(),
    };
    assert_matches(
        &spec,
        response_schema(&spec, endpoints::HEALTH),
        &health,
        "health",
    );

    let session: Session = serde_json::from_str(&fixture("live-session.json")).expect("session");
    let schema = response_schema(&spec, endpoints::SESSION_GET);
    assert_matches(&spec, schema, &session, "session.get");
    assert_matches(
        &spec,
        response_schema(&spec, endpoints::SESSION_CREATE),
        &session,
        "create",
    );

    let sessions: Vec<Session> =
        serde_json::from_str(&fixture("live-sessions.json")).expect("list");
    assert!(!sessions.is_empty());
    assert_matches(
        &spec,
        response_schema(&spec, endpoints::SESSION_LIST),
        &sessions,
        "list",
    );

    let messages: Vec<MessageWithParts> =
        serde_json::from_str(&fixture("live-messages.json")).expect("messages");
    for message in &messages {
        assert!(
            !matches!(message.info, Message::Other(_)),
            "untyped {:?}",
            message.info
        );
        for part in &message.parts {
            assert!(!matches!(part, Part::Other(_)), "untyped part {part:?}");
        }
    }
    let schema = response_schema(&spec, endpoints::SESSION_MESSAGES);
    assert_matches(&spec, schema, &messages, "messages");

    let diff = vec![FileDiff {
        file: Some("a".into()),
        patch: Some("+a".into()),
        additions: 1.0,
        deletions: 0.0,
        status: Some("added".into()),
    }];
    assert_matches(
        &spec,
        response_schema(&spec, endpoints::SESSION_DIFF),
        &diff,
        "diff",
    );

    // Recorded from the pinned binary's `POST /pty`.
    let pty: Pty = serde_json::from_value(json!({
        "id": "pty_23cc68f9c001MX5ktFF1GWvypS", "title": "Terminal vypS", "command": "/bin/bash",
        "args": ["-l"], "cwd": "/workspace", "status": "running", "pid": 3469
    }))
    .expect("pty");
    for endpoint in [endpoints::PTY_CREATE, endpoints::PTY_UPDATE] {
        assert_matches(
            &spec,
            response_schema(&spec, endpoint),
            &pty,
            endpoint.operation,
        );
    }

    for endpoint in [
        endpoints::PTY_REMOVE,
        endpoints::SESSION_ABORT,
        endpoints::PERMISSION_REPLY,
        endpoints::QUESTION_REPLY,
        endpoints::QUESTION_REJECT,
    ] {
        assert_matches(
            &spec,
            response_schema(&spec, endpoint),
            &true,
            endpoint.operation,
        );
    }
    let accepted = &operation(&spec, endpoints::SESSION_PROMPT_ASYNC)["responses"]["204"];
    assert!(accepted.is_object(), "prompt_async no longer answers 204");
}

#[test]
fn typed_events_match_the_spec_and_cover_every_known_type() {
    let spec = spec();
    let event_schema = json!({"$ref": "#/components/schemas/Event"});
    let documented: BTreeSet<String> = spec["components"]["schemas"]["Event"]["anyOf"]
        .as_array()
        .expect("Event is a union")
        .iter()
        .map(|branch| resolve(&spec, branch)["properties"]["type"]["enum"][0].to_string())
        .map(|quoted| quoted.trim_matches('"').to_owned())
        .collect();
    let mut covered = BTreeSet::new();
    let lines = fixture("live-events.jsonl") + &fixture("hand-events.jsonl");
    for line in lines.lines().filter(|line| !line.trim().is_empty()) {
        let envelope: EventEnvelope = serde_json::from_str(line).expect("event JSON");
        let kind = envelope.event.kind().to_owned();
        if let Event::Unknown { kind, .. } = &envelope.event {
            assert!(
                !KNOWN_EVENT_TYPES.contains(&kind.as_str()),
                "a {kind} event did not parse into its variant: {line}"
            );
            continue;
        }
        if let Event::MessagePartUpdated { part, .. } = &envelope.event {
            assert!(!matches!(part, Part::Other(_)), "untyped part in {line}");
        }
        if let Event::MessageUpdated { info, .. } = &envelope.event {
            assert!(
                !matches!(info, Message::Other(_)),
                "untyped message in {line}"
            );
        }
        covered.insert(kind.clone());
        if UNDOCUMENTED_EVENTS.contains(&kind.as_str()) {
            assert!(!documented.contains(&kind), "{kind} is documented now");
            continue;
        }
        assert!(documented.contains(&kind), "{kind} is not in the spec");
        assert_matches(&spec, &event_schema, &envelope, &kind);
    }
    let known: BTreeSet<String> = KNOWN_EVENT_TYPES
        .iter()
        .map(|kind| kind.to_string())
        .collect();
    assert_eq!(
        covered, known,
        "every typed event needs a fixture, and only those"
    );
}

#[test]
fn unknown_and_malformed_events_are_kept() {
    let envelope: EventEnvelope =
        serde_json::from_str(r#"{"id":"evt_1","type":"brand.new","properties":{"a":1}}"#)
            .expect("parses");
    assert_eq!(
        envelope.event,
        Event::Unknown {
            kind: "brand.new".into(),
            properties: json!({"a": 1})
        }
    );
    // A known type with a payload den cannot read is kept raw rather than dropped.
    let envelope: EventEnvelope =
        serde_json::from_str(r#"{"type":"session.idle","properties":{"sessionID":7}}"#)
            .expect("parses");
    assert_eq!(envelope.event.kind(), "session.idle");
    assert!(matches!(envelope.event, Event::Unknown { .. }));
    assert_eq!(envelope.id, None);
}

#[test]
fn the_checker_flags_unknown_fields_enums_and_types() {
    let spec = spec();
    let schema = request_schema(&spec, endpoints::SESSION_PROMPT_ASYNC);
    let mut out = Vec::new();
    let bad = json!({"parts": [{"type": "txt", "text": 1}], "modelId": "x"});
    violations(&spec, schema, &bad, "prompt", &mut out);
    let joined = out.join("\n");
    assert!(
        joined.contains("prompt.modelId: not in the schema"),
        "{joined}"
    );
    assert!(joined.contains("prompt.parts[0]"), "{joined}");
}
