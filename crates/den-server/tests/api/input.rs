//! Bad input on every body-taking route: a clear 4xx JSON error, and nothing changes.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, TestServer, TestUser, assert_error};

/// Everything a user could observe of their data.
async fn observable(server: &TestServer, user: &TestUser) -> Value {
    let (_, sessions) = server
        .call(Method::GET, "/api/sessions", Auth::Bearer(user), None)
        .await;
    let (_, tokens) = server
        .call(Method::GET, "/api/tokens", Auth::Bearer(user), None)
        .await;
    // Using a token updates its lastUsedAt, which is not a change the request made.
    let tokens: Vec<Value> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| json!([t["id"], t["name"], t["prefix"]]))
        .collect();
    json!({"sessions": sessions, "tokens": tokens, "users": server.store.count_users().await.unwrap()})
}

/// Bodies to send, each with the error code it must get.
type BadBodies<'a> = Vec<(String, &'a str)>;

/// Sends a raw body and expects a 4xx error with `code`.
async fn refuse(
    server: &TestServer,
    user: &TestUser,
    method: Method,
    path: &str,
    body: &str,
    status: StatusCode,
    code: &str,
) {
    let response = server
        .request(method.clone(), path, Auth::Bearer(user))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let (got, json) = crate::support::read(response).await;
    assert_error(got, &json, status, code);
    let _ = (method, path);
}

#[tokio::test]
async fn every_body_taking_route_refuses_bad_input_and_changes_nothing() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    let (_, session) = server
        .call(
            Method::POST,
            "/api/sessions",
            Auth::Bearer(&user),
            Some(json!({"repository": "https://example.com/a/b.git"})),
        )
        .await;
    let session_path = format!("/api/sessions/{}", session["id"].as_str().unwrap());
    let before = observable(&server, &user).await;
    let huge = "x".repeat(300 * 1024);
    let long = "x".repeat(201);

    let routes: [(Method, &str, BadBodies<'_>); 3] = [
        (
            Method::POST,
            "/api/sessions",
            vec![
                (json!({"repository": ""}).to_string(), "invalid_request"),
                (json!({"repository": 42}).to_string(), "invalid_request"),
                (
                    json!({"repository": "https://example.com/a/b", "colour": "red"}).to_string(),
                    "invalid_request",
                ),
                (
                    json!({"repository": "https://example.com/a/b", "title": "   "}).to_string(),
                    "invalid_request",
                ),
                (
                    json!({"repository": "https://example.com/a/b", "title": long}).to_string(),
                    "invalid_request",
                ),
                (
                    json!({"repository": "https://example.com/a/b", "model": "no-slash"})
                        .to_string(),
                    "invalid_request",
                ),
                (
                    json!({"repository": "https://example.com/a/b", "baseBranch": "../x"})
                        .to_string(),
                    "invalid_request",
                ),
                (
                    json!({"repository": "https://u:p@example.com/a/b"}).to_string(),
                    "invalid_request",
                ),
                (json!({"repository": "/etc"}).to_string(), "invalid_request"),
                // Nothing git could take for an option, and only well-formed URLs.
                (
                    json!({"repository": "https://--upload-pack=touch${IFS}/tmp/x/x"}).to_string(),
                    "invalid_request",
                ),
                (
                    json!({"repository": "https://example.invalid/x --upload-pack=touch /tmp/x"})
                        .to_string(),
                    "invalid_request",
                ),
                (
                    json!({"repository": "https://example.com/a\nb"}).to_string(),
                    "invalid_request",
                ),
                (
                    json!({"repository": "https://-x.example.com/a"}).to_string(),
                    "invalid_request",
                ),
                (
                    json!({"repository": "https://[::1/a"}).to_string(),
                    "invalid_request",
                ),
                (
                    json!({"repository": "https://example.com/a?x=1"}).to_string(),
                    "invalid_request",
                ),
                (json!({}).to_string(), "invalid_request"),
            ],
        ),
        (
            Method::PATCH,
            &session_path,
            vec![
                (json!({"title": ""}).to_string(), "invalid_request"),
                (json!({"title": long}).to_string(), "invalid_request"),
                (json!({"title": null}).to_string(), "invalid_request"),
                (
                    json!({"title": "ok", "status": "running"}).to_string(),
                    "invalid_request",
                ),
            ],
        ),
        (
            Method::POST,
            "/api/tokens",
            vec![
                (json!({"name": ""}).to_string(), "invalid_request"),
                (
                    json!({"name": "x".repeat(101)}).to_string(),
                    "invalid_request",
                ),
                (json!({"name": ["a"]}).to_string(), "invalid_request"),
                (
                    json!({"name": "ok", "scope": "all"}).to_string(),
                    "invalid_request",
                ),
            ],
        ),
    ];
    for (method, path, cases) in routes {
        for (body, code) in cases {
            refuse(
                &server,
                &user,
                method.clone(),
                path,
                &body,
                StatusCode::BAD_REQUEST,
                code,
            )
            .await;
        }
        refuse(
            &server,
            &user,
            method.clone(),
            path,
            "{not json",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        refuse(
            &server,
            &user,
            method.clone(),
            path,
            "",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        let oversize = json!({"repository": huge, "title": huge, "name": huge}).to_string();
        refuse(
            &server,
            &user,
            method.clone(),
            path,
            &oversize,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        )
        .await;
        // A body without the JSON content type.
        let response = server
            .request(method.clone(), path, Auth::Bearer(&user))
            .body("{}")
            .send()
            .await
            .unwrap();
        let (status, json) = crate::support::read(response).await;
        assert_error(status, &json, StatusCode::BAD_REQUEST, "invalid_request");
    }

    // Login's bad input.
    for body in [
        "{not json",
        r#"{"username":"alice"}"#,
        r#"{"username":"alice","password":"x","extra":1}"#,
    ] {
        let response = server
            .http()
            .post(format!("{}/api/auth/login", server.base))
            .header(den_server::CSRF_HEADER, "1")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, json) = crate::support::read(response).await;
        assert_error(status, &json, StatusCode::BAD_REQUEST, "invalid_request");
    }

    assert_eq!(
        observable(&server, &user).await,
        before,
        "bad input changed something"
    );
}

#[tokio::test]
async fn bad_ids_and_queries_are_refused_clearly() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    let (status, body) = server
        .call(
            Method::GET,
            "/api/sessions/not-a-uuid",
            Auth::Bearer(&user),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, body) = server
        .call(
            Method::GET,
            "/api/sessions/0190c7a1-0000-7000-8000-000000000000",
            Auth::Bearer(&user),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    for query in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "cursor=garbage",
        "sort=asc",
    ] {
        let (status, body) = server
            .call(
                Method::GET,
                &format!("/api/sessions?{query}"),
                Auth::Bearer(&user),
                None,
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

#[tokio::test]
async fn sessions_page_newest_activity_first() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    for n in 0..5 {
        let body = json!({"repository": "https://example.com/a/b.git", "title": format!("s{n}")});
        let (status, created) = server
            .call(
                Method::POST,
                "/api/sessions",
                Auth::Bearer(&user),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(created["status"], "idle");
        assert_eq!(created["model"], "opencode/big-pickle");
        assert!(created["workBranch"].as_str().unwrap().starts_with("den/"));
    }
    let (_, first) = server
        .call(
            Method::GET,
            "/api/sessions?limit=2",
            Auth::Bearer(&user),
            None,
        )
        .await;
    let titles = |page: &Value| {
        page["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["title"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(titles(&first), ["s4", "s3"]);
    let cursor = first["nextCursor"].as_str().unwrap();
    let (_, second) = server
        .call(
            Method::GET,
            &format!("/api/sessions?limit=10&cursor={cursor}"),
            Auth::Bearer(&user),
            None,
        )
        .await;
    assert_eq!(titles(&second), ["s2", "s1", "s0"]);
    assert!(second["nextCursor"].is_null());
}

#[tokio::test]
async fn bad_prompts_and_queue_edits_are_refused_and_start_nothing() {
    let server = TestServer::start_live().await;
    let user = server.user("alice").await;
    let (_, session) = server
        .call(
            Method::POST,
            "/api/sessions",
            Auth::Bearer(&user),
            Some(json!({"repository": server.repository.as_deref().unwrap()})),
        )
        .await;
    let path = format!("/api/sessions/{}/prompt", session["id"].as_str().unwrap());
    let huge = "x".repeat(150_000);
    for (body, status, code) in [
        (
            json!({"text": ""}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"text": "   "}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"text": huge}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"text": 5}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"text": "hi", "model": "x/y"}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "{not json".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ] {
        refuse(&server, &user, Method::POST, &path, &body, status, code).await;
        // Replacing a queued prompt's text checks the text the same way.
        let edit = path.replace("/prompt", "/queue/some-item");
        refuse(&server, &user, Method::PUT, &edit, &body, status, code).await;
    }
    // A first prompt that is refused creates no session.
    let before = observable(&server, &user).await;
    let create = json!({"repository": "https://example.com/a/b.git", "prompt": "   "}).to_string();
    refuse(
        &server,
        &user,
        Method::POST,
        "/api/sessions",
        &create,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert_eq!(observable(&server, &user).await, before);
    let (_, record) = server
        .call(
            Method::GET,
            &format!("/api/sessions/{}", session["id"].as_str().unwrap()),
            Auth::Bearer(&user),
            None,
        )
        .await;
    assert_eq!(record["status"], "idle", "a refused prompt started nothing");
    server.stop().await;
}

/// What a repository URL alone says about its host is checked at creation: an address or name
/// the sandbox could not reach is refused with a 400 that says why, creates nothing, and sends
/// nothing to the target. An admin's allow-list lets an internal server through.
#[tokio::test]
async fn repository_hosts_a_sandbox_cannot_reach_are_refused_at_creation() {
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    target.set_nonblocking(true).unwrap();
    let port = target.local_addr().unwrap().port();
    // An internal server the admin allowed, on another port of the same address.
    let internal = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let internal_port = internal.local_addr().unwrap().port();
    let allowed: den_session::AllowedHost = format!("127.0.0.1:{internal_port}").parse().unwrap();
    let server = TestServer::start_with(|config| {
        config.repository_egress.allowed_hosts = vec![allowed];
    })
    .await;
    let user = server.user("alice").await;
    let before = observable(&server, &user).await;
    let own_address = den_sandbox::egress::this_host_addresses()
        .into_iter()
        .find(|a| a.is_ipv4() && !a.is_loopback())
        .map(|a| format!("http://{a}:{port}/x.git"));
    let mut refused = vec![
        format!("http://127.0.0.1:{port}/x.git"),
        format!("http://127.0.0.2:{port}/x.git"),
        format!("http://localhost:{port}/x.git"),
        format!("http://LocalHost.:{port}/x.git"),
        format!("http://2130706433:{port}/x.git"),
        format!("http://0x7f.0.0.1:{port}/x.git"),
        format!("http://0177.0.0.1:{port}/x.git"),
        format!("http://[::1]:{port}/x.git"),
        format!("http://[::ffff:127.0.0.1]:{port}/x.git"),
        "https://10.1.2.3/x.git".to_owned(),
        "https://172.16.5.4/x.git".to_owned(),
        "https://192.168.1.1/x.git".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "https://[fd12::1]/x.git".to_owned(),
        "https://[fe80::1]/x.git".to_owned(),
    ];
    refused.extend(own_address);
    for repository in refused {
        let (status, body) = server
            .call(
                Method::POST,
                "/api/sessions",
                Auth::Bearer(&user),
                Some(json!({ "repository": repository })),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("sandboxes cannot reach it") || message.contains("names this machine"),
            "{repository}: {message}"
        );
    }
    assert_eq!(
        observable(&server, &user).await,
        before,
        "a refusal created something"
    );
    assert!(
        matches!(target.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the target was contacted"
    );
    // The allow-listed host:port itself is accepted.
    let (status, body) = server
        .call(
            Method::POST,
            "/api/sessions",
            Auth::Bearer(&user),
            Some(json!({ "repository": format!("http://2130706433:{internal_port}/x.git") })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["repository"],
        format!("http://127.0.0.1:{internal_port}/x.git"),
        "the URL is stored as git will get it"
    );
}

/// What a person could observe of their keys, endpoints and sessions.
async fn models_observable(server: &TestServer, user: &TestUser) -> Value {
    let mut seen = Vec::new();
    for path in [
        "/api/provider-keys",
        "/api/model-endpoints",
        "/api/models",
        "/api/sessions",
    ] {
        let (_, body) = server
            .call(Method::GET, path, Auth::Bearer(user), None)
            .await;
        seen.push(body);
    }
    Value::Array(seen)
}

#[tokio::test]
async fn provider_keys_and_endpoints_refuse_bad_input_and_change_nothing() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    for (path, body) in [
        (
            "/api/provider-keys/openai",
            json!({"key": "sk-original-openai-key-0000"}),
        ),
        (
            "/api/model-endpoints/home",
            json!({"baseUrl": "https://93.184.216.34/v1", "models": ["m"], "key": "original-endpoint-key"}),
        ),
    ] {
        let (status, answer) = server
            .call(Method::PUT, path, Auth::Bearer(&user), Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let before = models_observable(&server, &user).await;
    let oversize = "k".repeat(1025);
    let endpoint = |base_url: &str| json!({"baseUrl": base_url, "models": ["m"]}).to_string();
    let cases: Vec<(Method, &str, String, StatusCode, &str)> = vec![
        (Method::PUT, "/api/provider-keys/mistral", json!({"key": "sk-some-key-000000"}).to_string(), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/provider-keys/openai", json!({"key": oversize}).to_string(), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/provider-keys/openai", json!({"key": ""}).to_string(), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/provider-keys/openai", json!({"key": "two words"}).to_string(), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/provider-keys/openai", json!({"key": "sk-x", "scope": 1}).to_string(), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/provider-keys/openai", "{not json".to_owned(), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::DELETE, "/api/provider-keys/mistral", String::new(), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/model-endpoints/home", endpoint("ftp://93.184.216.34/v1"), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/model-endpoints/home", endpoint("file:///etc/passwd"), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/model-endpoints/home", endpoint("not a url"), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/model-endpoints/home", endpoint("http://127.0.0.1:8787/v1"), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/model-endpoints/home", endpoint("http://localhost:11434/v1"), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/model-endpoints/home", endpoint("http://10.0.0.5/v1"), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/model-endpoints/home", endpoint("http://192.168.1.20/v1"), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/model-endpoints/home", endpoint("http://169.254.169.254/latest"), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/model-endpoints/home", endpoint("http://[::1]:8000/v1"), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/model-endpoints/home", endpoint("https://user:pw@93.184.216.34/v1"), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/model-endpoints/home", json!({"baseUrl": "https://93.184.216.34/v1", "models": []}).to_string(), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/model-endpoints/home", json!({"baseUrl": "https://93.184.216.34/v1", "models": ["has space"]}).to_string(), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/model-endpoints/home", json!({"baseUrl": "https://93.184.216.34/v1", "models": ["m"], "key": oversize}).to_string(), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::PUT, "/api/model-endpoints/Bad_Name", endpoint("https://93.184.216.34/v1"), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::POST, "/api/sessions", json!({"repository": "https://example.com/a/b.git", "model": "nosuch/model"}).to_string(), StatusCode::BAD_REQUEST, "invalid_request"),
        (Method::POST, "/api/sessions", json!({"repository": "https://example.com/a/b.git", "model": "anthropic/claude-opus-4-5-20251101"}).to_string(), StatusCode::FORBIDDEN, "forbidden"),
    ];
    for (method, path, body, status, code) in cases {
        refuse(&server, &user, method, path, &body, status, code).await;
    }
    assert_eq!(
        models_observable(&server, &user).await,
        before,
        "a refusal changed something"
    );
}

#[tokio::test]
async fn a_session_that_never_ran_has_no_changes_and_bad_diff_ids_are_refused() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    let (_, session) = server
        .call(
            Method::POST,
            "/api/sessions",
            Auth::Bearer(&user),
            Some(serde_json::json!({"repository": "https://example.com/o/r.git"})),
        )
        .await;
    let path = format!("/api/sessions/{}/diff", session["id"].as_str().unwrap());
    let (status, diff) = server
        .call(Method::GET, &path, Auth::Bearer(&user), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{diff}");
    assert_eq!(diff["source"], "unchanged");
    assert_eq!(diff["files"], serde_json::json!([]));
    assert_eq!(diff["summary"]["files"], 0);
    let (status, body) = server
        .call(
            Method::GET,
            "/api/sessions/not-a-uuid/diff",
            Auth::Bearer(&user),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, body) = server
        .call(
            Method::GET,
            "/api/sessions/0190c7a1-0000-7000-8000-000000000000/diff",
            Auth::Bearer(&user),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn bad_push_requests_are_refused_clearly() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    let (_, session) = server
        .call(
            Method::POST,
            "/api/sessions",
            Auth::Bearer(&user),
            Some(serde_json::json!({"repository": "https://example.com/o/r.git"})),
        )
        .await;
    let path = format!("/api/sessions/{}/push", session["id"].as_str().unwrap());
    let long = "m".repeat(10_001);
    for body in [
        serde_json::json!({"message": "   "}),
        serde_json::json!({"message": long}),
        serde_json::json!({"message": 42}),
        serde_json::json!({"branch": "main"}),
    ] {
        let (status, reply) = server
            .call(Method::POST, &path, Auth::Bearer(&user), Some(body))
            .await;
        assert_error(status, &reply, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let (status, reply) = server
        .call(
            Method::POST,
            "/api/sessions/0190c7a1-0000-7000-8000-000000000000/push",
            Auth::Bearer(&user),
            Some(serde_json::json!({})),
        )
        .await;
    assert_error(status, &reply, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn bad_pull_request_bodies_are_refused_clearly() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    let (_, session) = server
        .call(
            Method::POST,
            "/api/sessions",
            Auth::Bearer(&user),
            Some(serde_json::json!({"repository": "https://github.com/o/r.git"})),
        )
        .await;
    let path = format!(
        "/api/sessions/{}/pull-request",
        session["id"].as_str().unwrap()
    );
    for body in [
        serde_json::json!({"title": "  "}),
        serde_json::json!({"title": "t".repeat(300)}),
        serde_json::json!({"body": "b".repeat(70_000)}),
        serde_json::json!({"draft": "yes"}),
        serde_json::json!({"head": "main"}),
    ] {
        let (status, reply) = server
            .call(Method::POST, &path, Auth::Bearer(&user), Some(body))
            .await;
        assert_error(status, &reply, StatusCode::BAD_REQUEST, "invalid_request");
    }
    // Without GitHub settings, den says so instead of failing obscurely.
    let (status, reply) = server
        .call(
            Method::POST,
            &path,
            Auth::Bearer(&user),
            Some(serde_json::json!({})),
        )
        .await;
    assert_error(status, &reply, StatusCode::CONFLICT, "conflict");
    assert!(
        reply.to_string().contains("not connected to GitHub"),
        "{reply}"
    );
}

#[tokio::test]
async fn bad_password_changes_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    // A second browser, which a successful change would sign out.
    let other_browser = server.login("alice", crate::support::PASSWORD).await;
    let other_cookie = crate::support::session_cookie(&other_browser).unwrap();
    let current = crate::support::PASSWORD;
    let cases = [
        (
            json!({"current": current, "new": "short"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"current": current, "new": "x".repeat(1025)}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"new": "a long new password"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"current": null, "new": "a long new password"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"current": "not the password", "new": "a long new password"}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            json!({"current": current, "new": "a long new password", "confirm": "a long new password"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"current": current}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"current": current, "new": 12345678}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (body, status, code) in cases {
        for auth in [Auth::Cookie(&user), Auth::Bearer(&user)] {
            let (got, reply) = server
                .call(Method::PUT, "/api/auth/password", auth, Some(body.clone()))
                .await;
            assert_error(got, &reply, status, code);
            assert!(!reply.to_string().contains(current), "{reply}");
        }
    }
    refuse(
        &server,
        &user,
        Method::PUT,
        "/api/auth/password",
        "{not json",
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;

    // Nothing changed: the old password signs in, the other browser is still signed in.
    assert_eq!(
        server.login("alice", current).await.status(),
        StatusCode::OK
    );
    let (status, _) = server
        .call(
            Method::GET,
            "/api/auth/me",
            Auth::Cookie(&TestUser {
                cookie: other_cookie,
                token: String::new(),
            }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server.login("alice", "a long new password").await.status(),
        StatusCode::UNAUTHORIZED
    );
}
