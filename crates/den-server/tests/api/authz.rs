//! The authorization matrix: every route of the OpenAPI document, called as anonymous, as
//! another user and as the owner (by cookie and by bearer token). A route that is missing from
//! the matrix fails the test, so a new route cannot ship without its authorization rule.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, TestServer, TestUser};

/// How a route must answer.
pub(crate) enum Rule {
    /// Anyone may call it; `status` is what an anonymous call answers.
    Public { status: StatusCode },
    /// Needs sign-in; the caller sees only their own data.
    Own { status: StatusCode },
    /// Needs sign-in and names a resource of the owner: another user gets 404.
    Owned { status: StatusCode },
    /// Admins only: every other user (owner included) gets 403; `status` is an admin's answer.
    Admin { status: StatusCode },
    /// Between den nodes only (their shared secret): every person, admins included, and every
    /// anonymous call gets 401, and nothing changes.
    Node,
}

/// The owner's keys: no answer to anyone may contain them.
const OWNER_KEY: &str = "sk-ant-owner-secret-key-AAAA1111";
const OWNER_ENDPOINT_KEY: &str = "owner-endpoint-secret-BBBB2222";
/// Nothing listens there (port 1 on loopback; the server allows private endpoints), so testing
/// the owner's endpoint or key fails fast without leaving this machine.
const OWNER_ENDPOINT_URL: &str = "http://127.0.0.1:1/owner/v1";

/// The password of the throwaway users that sign out or change their password: not the owner's
/// or the other user's, so the other user's attempt to change a password with it fails.
const LEAVER_PASSWORD: &str = "the leaver's own password";

/// Ids of resources the owner has; fresh for each call, since some calls delete them.
pub(crate) struct Fixture {
    pub(crate) session: String,
    pub(crate) token: String,
    /// A share link of the session: its id and its token.
    pub(crate) share_link: String,
    pub(crate) share_token: String,
    /// The owner's user id.
    pub(crate) owner: String,
}

pub(crate) fn rule(method: &Method, path: &str) -> Rule {
    use StatusCode as S;
    match (method.as_str(), path) {
        (
            "GET",
            "/healthz" | "/readyz" | "/metrics" | "/api/openapi.json" | "/api/auth/options",
        ) => Rule::Public { status: S::OK },
        // Without the CSRF header a browser form cannot send, sign-in is refused.
        ("POST", "/api/auth/login") => Rule::Public {
            status: S::FORBIDDEN,
        },
        // An unknown link sends the browser to the sign-in page, which explains.
        ("GET", "/api/auth/link/{token}") => Rule::Public {
            status: S::SEE_OTHER,
        },
        // Not configured in this server, so they do not exist.
        ("GET", "/api/auth/github/start" | "/api/auth/github/callback") => Rule::Public {
            status: S::NOT_FOUND,
        },
        ("POST", "/api/auth/logout") => Rule::Own {
            status: S::NO_CONTENT,
        },
        // Sets the caller's own password (the body's `current` is the throwaway users').
        ("PUT", "/api/auth/password") => Rule::Own {
            status: S::NO_CONTENT,
        },
        ("GET", "/api/auth/me" | "/api/tokens" | "/api/sessions") => Rule::Own { status: S::OK },
        ("POST", "/api/tokens" | "/api/sessions") => Rule::Own { status: S::CREATED },
        ("DELETE", "/api/tokens/{id}" | "/api/git-credentials/{host}") => Rule::Owned {
            status: S::NO_CONTENT,
        },
        // This server allows no local root: the owner hears the path is not allowed.
        ("GET", "/api/repositories/branches") => Rule::Own {
            status: S::BAD_REQUEST,
        },
        // Without [github] settings the owner gets the (empty) local list.
        ("GET", "/api/git-credentials" | "/api/repositories") => Rule::Own { status: S::OK },
        ("PUT", "/api/git-credentials/{host}") => Rule::Own {
            status: S::NO_CONTENT,
        },
        ("GET" | "PATCH", "/api/sessions/{id}") => Rule::Owned { status: S::OK },
        ("DELETE", "/api/sessions/{id}") => Rule::Owned {
            status: S::NO_CONTENT,
        },
        ("GET", "/api/sessions/stream") => Rule::Own { status: S::OK },
        ("GET", "/api/sessions/{id}/events" | "/api/sessions/{id}/diff") => {
            Rule::Owned { status: S::OK }
        }
        ("GET", "/api/sessions/{id}/ws") => Rule::Owned {
            status: S::SWITCHING_PROTOCOLS,
        },
        // The fixture's session never ran: there is no sandbox for a shell.
        ("GET", "/api/sessions/{id}/terminal") => Rule::Owned {
            status: S::CONFLICT,
        },
        ("POST", "/api/sessions/{id}/prompt") => Rule::Owned {
            status: S::ACCEPTED,
        },
        (
            "POST",
            "/api/sessions/{id}/abort" | "/api/sessions/{id}/pause" | "/api/sessions/{id}/resume",
        ) => Rule::Owned {
            status: S::NO_CONTENT,
        },
        // The caller's own GitHub connection (this server has no GitHub settings: connecting
        // is a 404, and the owner holds no GitHub token to forget).
        ("GET", "/api/github") => Rule::Own { status: S::OK },
        ("POST", "/api/github/connect") | ("DELETE", "/api/github") => Rule::Own {
            status: S::NOT_FOUND,
        },
        // This server has no GitHub settings: the owner hears so.
        ("GET" | "POST", "/api/sessions/{id}/pull-request") => Rule::Owned {
            status: S::CONFLICT,
        },
        // The fixture's session never ran: there is no sandbox to push from.
        ("POST", "/api/sessions/{id}/push") => Rule::Owned {
            status: S::CONFLICT,
        },
        ("DELETE", "/api/sessions/{id}/queue") => Rule::Owned {
            status: S::NO_CONTENT,
        },
        // Nothing is queued in the fixture: the owner hears the item is not in the queue.
        ("DELETE" | "PUT", "/api/sessions/{id}/queue/{item}") => Rule::Owned {
            status: S::CONFLICT,
        },
        // Nothing waits in the fixture's session: the owner hears there is no such ask.
        ("POST", "/api/sessions/{id}/asks/{ask}") => Rule::Owned {
            status: S::NOT_FOUND,
        },
        ("PUT", "/api/sessions/{id}/approval-mode") => Rule::Owned { status: S::OK },
        (
            "GET",
            "/api/models"
            | "/api/provider-keys"
            | "/api/model-endpoints"
            | "/api/usage"
            | "/api/budget",
        ) => Rule::Own { status: S::OK },
        // The caller's own cap (this server has no admin cap, so any amount is lower).
        ("PUT", "/api/budget") => Rule::Own { status: S::OK },
        // Keys and endpoints are named within the caller's own: another user's PUT sets theirs.
        ("PUT", "/api/provider-keys/{provider}" | "/api/model-endpoints/{name}") => {
            Rule::Own { status: S::OK }
        }
        // The caller's own key or endpoint of that name is tried (the owner's, nothing
        // listening, is reported unreachable); another user's call tries theirs, if any.
        ("POST", "/api/provider-keys/{provider}/test" | "/api/model-endpoints/{name}/test") => {
            Rule::Own { status: S::OK }
        }
        ("DELETE", "/api/provider-keys/{provider}" | "/api/model-endpoints/{name}") => {
            Rule::Owned {
                status: S::NO_CONTENT,
            }
        }
        // The fixture's session never finished a turn: there is no snapshot to fork yet.
        ("POST", "/api/sessions/{id}/fork") => Rule::Owned {
            status: S::CONFLICT,
        },
        ("POST", "/api/sessions/{id}/shares") => Rule::Owned { status: S::CREATED },
        ("GET", "/api/sessions/{id}/shares") => Rule::Owned { status: S::OK },
        ("DELETE", "/api/sessions/{id}/shares/{link}") => Rule::Owned {
            status: S::NO_CONTENT,
        },
        // Anyone holding a share link's token reads that session's transcript, and only that
        // (tests/api/share_links.rs: every other route refuses the token).
        ("GET", "/api/shared/{token}" | "/api/shared/{token}/events") => {
            Rule::Public { status: S::OK }
        }
        ("GET" | "PUT", "/api/admin/budgets" | "/api/admin/budgets/{username}") => {
            Rule::Admin { status: S::OK }
        }
        ("POST", "/api/internal/sessions/{id}/command") => Rule::Node,
        _ => panic!("{method} {path} is missing from the authorization matrix: add its rule"),
    }
}

/// The concrete path and a valid body for a call; sessions are made on `repository`, the
/// server's local one (nothing here may reach the internet).
pub(crate) fn call_for(
    method: &Method,
    path: &str,
    fixture: &Fixture,
    repository: &str,
) -> (String, Option<Value>) {
    let concrete = match path {
        "/api/tokens/{id}" => path.replace("{id}", &fixture.token),
        path if path.starts_with("/api/sessions/{id}")
            || path.starts_with("/api/internal/sessions/{id}") =>
        {
            path.replace("{id}", &fixture.session)
                .replace("{item}", "not-queued")
                .replace("{link}", &fixture.share_link)
                .replace("{ask}", "per_not_asked")
        }
        path if path.starts_with("/api/shared/{token}") => {
            path.replace("{token}", &fixture.share_token)
        }
        "/api/auth/link/{token}" => path.replace("{token}", "not-a-real-link"),
        "/api/provider-keys/{provider}" | "/api/provider-keys/{provider}/test" => {
            path.replace("{provider}", "anthropic")
        }
        "/api/model-endpoints/{name}" | "/api/model-endpoints/{name}/test" => {
            path.replace("{name}", "home")
        }
        "/api/git-credentials/{host}" => path.replace("{host}", "git.example.com"),
        "/api/admin/budgets/{username}" => path.replace("{username}", "owner"),
        "/api/repositories/branches" => format!("{path}?repository=/srv/not-a-root/repo"),
        other => other.to_owned(),
    };
    let body = match (method.as_str(), path) {
        ("POST", "/api/auth/login") => {
            Some(json!({"username": "nobody", "password": "wrong password"}))
        }
        ("PUT", "/api/auth/password") => {
            Some(json!({"current": LEAVER_PASSWORD, "new": LEAVER_PASSWORD}))
        }
        ("POST", "/api/tokens") => Some(json!({"name": "matrix"})),
        ("POST", "/api/sessions") => Some(json!({"repository": repository})),
        ("PATCH", "/api/sessions/{id}") => Some(json!({"title": "renamed"})),
        ("PUT", "/api/git-credentials/{host}") => {
            Some(json!({"username": "x-access-token", "token": "ghp_new"}))
        }
        ("POST", "/api/sessions/{id}/prompt") => Some(json!({"text": "hello"})),
        ("POST", "/api/sessions/{id}/fork" | "/api/sessions/{id}/shares") => Some(json!({})),
        ("POST", "/api/sessions/{id}/push") => Some(json!({"message": "work"})),
        ("POST", "/api/sessions/{id}/pull-request") => Some(json!({"title": "work"})),
        ("PUT", "/api/sessions/{id}/queue/{item}") => Some(json!({"text": "edited"})),
        ("POST", "/api/sessions/{id}/asks/{ask}") => Some(json!({"reply": "once"})),
        ("PUT", "/api/sessions/{id}/approval-mode") => Some(json!({"mode": "ask"})),
        // A person cannot pass for a node, even naming the session's real owner.
        ("POST", "/api/internal/sessions/{id}/command") => {
            Some(json!({"ownerId": fixture.owner, "command": {"type": "prompt", "text": "forged"}}))
        }
        ("PUT", "/api/budget" | "/api/admin/budgets/{username}") => Some(json!({"monthlyUsd": 5})),
        ("PUT", "/api/provider-keys/{provider}") => {
            Some(json!({"key": "sk-ant-caller-key-0000000000"}))
        }
        ("PUT", "/api/model-endpoints/{name}") => Some(
            json!({"baseUrl": "https://93.184.216.34/v1", "models": ["m"], "key": "endpoint-caller-key-00000000"}),
        ),
        _ => None,
    };
    (concrete, body)
}

async fn fixture(server: &TestServer, owner: &TestUser) -> Fixture {
    let (_, session) = server
        .call(
            Method::POST,
            "/api/sessions",
            Auth::Bearer(owner),
            Some(json!({"repository": server.repository.as_deref().unwrap()})),
        )
        .await;
    let (_, token) = server
        .call(
            Method::POST,
            "/api/tokens",
            Auth::Bearer(owner),
            Some(json!({"name": "victim"})),
        )
        .await;
    // A provider key and an endpoint (re-set each time: some calls delete them).
    for (path, body) in [
        ("/api/provider-keys/anthropic", json!({"key": OWNER_KEY})),
        (
            "/api/model-endpoints/home",
            json!({"baseUrl": OWNER_ENDPOINT_URL, "models": ["m"], "key": OWNER_ENDPOINT_KEY}),
        ),
    ] {
        let (status, _) = server
            .call(Method::PUT, path, Auth::Bearer(owner), Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (status, _) = server
        .call(
            Method::PUT,
            "/api/git-credentials/git.example.com",
            Auth::Bearer(owner),
            Some(json!({"username": "x-access-token", "token": "ghp_fixture"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let session_id = session["id"].as_str().unwrap().to_owned();
    let (status, share) = server
        .call(
            Method::POST,
            &format!("/api/sessions/{session_id}/shares"),
            Auth::Bearer(owner),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{share}");
    let (_, me) = server
        .call(Method::GET, "/api/auth/me", Auth::Bearer(owner), None)
        .await;
    Fixture {
        session: session_id,
        token: token["info"]["id"].as_str().unwrap().to_owned(),
        share_link: share["link"]["id"].as_str().unwrap().to_owned(),
        share_token: share["token"].as_str().unwrap().to_owned(),
        owner: me["id"].as_str().unwrap().to_owned(),
    }
}

fn is_stream(path: &str) -> bool {
    path.ends_with("/stream")
        || path.ends_with("/events")
        || path.ends_with("/ws")
        || path.ends_with("/terminal")
}

pub(crate) fn routes() -> Vec<(Method, String)> {
    let doc = serde_json::to_value(den_server::routes::openapi()).unwrap();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if let Ok(method) = method.to_uppercase().parse::<Method>() {
                routes.push((method, path.clone()));
            }
        }
    }
    assert!(
        routes.len() >= 15,
        "the document lists too few routes: {routes:?}"
    );
    routes
}

#[tokio::test]
async fn every_route_answers_anonymous_other_user_and_owner_as_its_rule_says() {
    // Live sessions on, with real sandboxes, so the live routes answer as they do in use.
    let server = TestServer::start_live_with(|config| {
        config.allow_private_endpoints = true;
        config.catalog = den_session::Catalog::new(vec![den_session::AdminProvider {
            name: "anthropic".to_owned(),
            kind: None,
            base_url: Some("http://127.0.0.1:1/v1".to_owned()),
            models: Vec::new(),
            api_key: None,
            shared: false,
        }])
        .unwrap();
    })
    .await;
    let repository = server.repository.as_deref().unwrap();
    let owner = server.user("owner").await;
    let other = server.user("other").await;
    let admin = server.admin("root").await;
    let mut throwaway = 0;

    for (method, path) in routes() {
        let rule = rule(&method, &path);
        let fixture = fixture(&server, &owner).await;
        let (concrete, body) = call_for(&method, &path, &fixture, repository);
        let context = format!("{method} {path}");

        let status = server
            .exercise(method.clone(), &concrete, Auth::Anonymous, body.clone())
            .await;
        match rule {
            Rule::Public { status: expected } => {
                assert_eq!(status, expected, "anonymous {context}")
            }
            Rule::Own { .. } | Rule::Owned { .. } | Rule::Admin { .. } | Rule::Node => {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "anonymous {context}")
            }
        }

        if let Rule::Node = rule {
            for user in [&owner, &other, &admin] {
                for auth in [Auth::Cookie(user), Auth::Bearer(user)] {
                    let status = server
                        .exercise(method.clone(), &concrete, auth, body.clone())
                        .await;
                    assert_eq!(
                        status,
                        StatusCode::UNAUTHORIZED,
                        "a person calling {context}"
                    );
                }
            }
            let session_path = format!("/api/sessions/{}", fixture.session);
            let (_, session) = server
                .call(Method::GET, &session_path, Auth::Bearer(&owner), None)
                .await;
            assert_eq!(
                session["status"], "idle",
                "a forged command started nothing"
            );
        }

        if let Rule::Admin { status: expected } = rule {
            for user in [&owner, &other] {
                for auth in [Auth::Cookie(user), Auth::Bearer(user)] {
                    let status = server
                        .exercise(method.clone(), &concrete, auth, body.clone())
                        .await;
                    assert_eq!(status, StatusCode::FORBIDDEN, "non-admin {context}");
                }
            }
            for auth in [Auth::Cookie(&admin), Auth::Bearer(&admin)] {
                let (status, answer) = server
                    .call(method.clone(), &concrete, auth, body.clone())
                    .await;
                assert_eq!(status, expected, "admin {context}: {answer}");
                for secret in [OWNER_KEY, OWNER_ENDPOINT_KEY, OWNER_ENDPOINT_URL] {
                    assert!(
                        !answer.to_string().contains(secret),
                        "{secret} via {context}"
                    );
                }
            }
        }

        if let Rule::Owned { .. } = rule {
            for auth in [Auth::Cookie(&other), Auth::Bearer(&other)] {
                let status = server
                    .exercise(method.clone(), &concrete, auth, body.clone())
                    .await;
                assert_eq!(status, StatusCode::NOT_FOUND, "other user {context}");
            }
            // The attempts changed nothing of the owner's.
            let session_path = format!("/api/sessions/{}", fixture.session);
            let (status, session) = server
                .call(Method::GET, &session_path, Auth::Bearer(&owner), None)
                .await;
            assert_eq!(
                (status, session["title"].as_str()),
                (StatusCode::OK, Some("r")),
                "after {context}"
            );
            let (_, tokens) = server
                .call(Method::GET, "/api/tokens", Auth::Bearer(&owner), None)
                .await;
            assert!(
                tokens.to_string().contains(&fixture.token),
                "after {context}"
            );
            let (_, keys) = server
                .call(
                    Method::GET,
                    "/api/provider-keys",
                    Auth::Bearer(&owner),
                    None,
                )
                .await;
            let anthropic_set = keys
                .as_array()
                .unwrap()
                .iter()
                .any(|key| key["provider"] == "anthropic" && key["set"] == true);
            assert!(anthropic_set, "after {context}");
            let (_, endpoints) = server
                .call(
                    Method::GET,
                    "/api/model-endpoints",
                    Auth::Bearer(&owner),
                    None,
                )
                .await;
            assert!(
                endpoints.to_string().contains(OWNER_ENDPOINT_URL),
                "after {context}"
            );
        }
        if let Rule::Own { .. } = rule
            && !is_stream(&path)
        {
            let (_, listing) = server
                .call(
                    method.clone(),
                    &concrete,
                    Auth::Bearer(&other),
                    body.clone(),
                )
                .await;
            assert!(
                !listing.to_string().contains(&fixture.session),
                "other user sees owner's session via {context}"
            );
            assert!(
                !listing.to_string().contains(&fixture.token),
                "other user sees owner's token via {context}"
            );
            for owners in [OWNER_KEY, OWNER_ENDPOINT_KEY, OWNER_ENDPOINT_URL, "…1111"] {
                assert!(
                    !listing.to_string().contains(owners),
                    "other user sees the owner's {owners} via {context}"
                );
            }
        }

        if let Rule::Own { status: expected } | Rule::Owned { status: expected } = rule {
            // Cookie first, then bearer on a fresh fixture, so deletes have something to delete.
            // Signing out ends the caller's browser session, and a password change the other
            // ones, so they run as throwaway users.
            let signs_out = path == "/api/auth/logout" || path == "/api/auth/password";
            let cookie_user = if signs_out {
                throwaway += 1;
                server
                    .user_with_password(&format!("leaver{throwaway}"), LEAVER_PASSWORD)
                    .await
            } else {
                owner.clone()
            };
            let status = server
                .exercise(
                    method.clone(),
                    &concrete,
                    Auth::Cookie(&cookie_user),
                    body.clone(),
                )
                .await;
            assert_eq!(status, expected, "owner by cookie {context}");
            let fixture = self::fixture(&server, &owner).await;
            let (concrete, body) = call_for(&method, &path, &fixture, repository);
            let bearer_user = if signs_out {
                throwaway += 1;
                server
                    .user_with_password(&format!("leaver{throwaway}"), LEAVER_PASSWORD)
                    .await
            } else {
                owner.clone()
            };
            let status = server
                .exercise(method.clone(), &concrete, Auth::Bearer(&bearer_user), body)
                .await;
            assert_eq!(status, expected, "owner by bearer {context}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_revoked_token_stops_working_at_once() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    let (status, _) = server
        .call(Method::GET, "/api/auth/me", Auth::Bearer(&user), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, tokens) = server
        .call(Method::GET, "/api/tokens", Auth::Cookie(&user), None)
        .await;
    let id = tokens[0]["id"].as_str().unwrap().to_owned();
    assert!(
        tokens.to_string().contains("den_") && !tokens.to_string().contains(&user.token),
        "list must not show the token"
    );
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/tokens/{id}"),
            Auth::Cookie(&user),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server
        .call(Method::GET, "/api/auth/me", Auth::Bearer(&user), None)
        .await;
    crate::support::assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn the_openapi_document_lists_only_routes_that_exist() {
    let server = TestServer::start().await;
    for (method, path) in routes() {
        let concrete = path
            .replace("{id}", "00000000-0000-7000-8000-000000000000")
            .replace("{token}", "x");
        let response = server
            .request(method.clone(), &concrete, Auth::Anonymous)
            .send()
            .await
            .unwrap();
        assert_ne!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        let unknown_route = response.status() == StatusCode::NOT_FOUND
            && !path.contains("github")
            && !path.contains('{');
        assert!(
            !unknown_route,
            "{method} {path} is documented but not routed"
        );
    }
    let (status, body) = server
        .call(Method::GET, "/api/no-such-route", Auth::Anonymous, None)
        .await;
    crate::support::assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[test]
fn every_operation_has_a_unique_operation_id() {
    let doc = serde_json::to_value(den_server::routes::openapi()).unwrap();
    let mut ids = Vec::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            if let Some(id) = operation.get("operationId").and_then(|id| id.as_str()) {
                ids.push(id.to_owned());
            }
        }
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "duplicate operationIds: {ids:?}");
}
