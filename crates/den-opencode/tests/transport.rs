//! The client's transport against small fake servers: unix sockets, basic auth, error
//! mapping, readiness probing past hung requests, and event stream reconnection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use den_opencode::{Event, OpencodeClient, OpencodeConfig, OpencodeError, PromptRequest, Target};
use futures::StreamExt;
use tokio::time::Instant;

/// `opencode:secret`, base64-encoded.
const BASIC_AUTH: &str = "Basic b3BlbmNvZGU6c2VjcmV0";
const WITHIN: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Fake {
    health_calls: AtomicUsize,
    /// Health requests before this many are left hanging, like OpenCode during its start.
    hang_first: usize,
    event_connections: AtomicUsize,
}

async fn health(State(fake): State<Arc<Fake>>, headers: HeaderMap) -> Response {
    let call = fake.health_calls.fetch_add(1, Ordering::SeqCst);
    if call < fake.hang_first {
        std::future::pending::<()>().await;
    }
    if headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        != Some(BASIC_AUTH)
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    axum::Json(serde_json::json!({"healthy": true, "version": "1.18.33"})).into_response()
}

/// The first connection sends two events and closes; later ones send one more and stay open.
async fn events(State(fake): State<Arc<Fake>>) -> Response {
    let connection = fake.event_connections.fetch_add(1, Ordering::SeqCst);
    let mut text = String::from(
        "data: {\"id\":\"evt_1\",\"type\":\"server.connected\",\"properties\":{}}\n\n",
    );
    if connection == 0 {
        text.push_str(": keep-alive comment\n\n");
        text.push_str("data: {\"type\":\"session.status\",\"properties\":{\"sessionID\":\"ses_1\",\"status\":{\"type\":\"busy\"}}}\n\n");
        return Response::new(Body::from(text));
    }
    text.push_str("data: {\"type\":\"session.idle\",\"properties\":{\"sessionID\":\"ses_1\"}}\n\n");
    let open_forever = futures::stream::once(async move { Ok::<_, std::io::Error>(text) })
        .chain(futures::stream::pending());
    Response::new(Body::from_stream(open_forever))
}

async fn prompt(axum::Json(body): axum::Json<serde_json::Value>) -> Response {
    let text_part = serde_json::json!([{"type": "text", "text": "hi"}]);
    if body["parts"] == text_part && body["model"]["providerID"] == "p" {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (StatusCode::BAD_REQUEST, body.to_string()).into_response()
    }
}

fn app(fake: Arc<Fake>) -> Router {
    Router::new()
        .route("/global/health", get(health))
        .route("/event", get(events))
        .route("/session/{id}/prompt_async", post(prompt))
        .route(
            "/session/{id}",
            get(|| async {
                let body = r#"{"name":"NotFoundError","data":{"message":"Session not found"}}"#;
                (StatusCode::NOT_FOUND, body)
            }),
        )
        .with_state(fake)
}

async fn serve_unix(fake: Fake) -> anyhow::Result<(tempfile::TempDir, OpencodeClient)> {
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("opencode.sock");
    let listener = tokio::net::UnixListener::bind(&socket)?;
    tokio::spawn(async move { axum::serve(listener, app(Arc::new(fake))).await });
    let mut config = OpencodeConfig::new(Target::Unix(socket)).with_password("secret");
    config.probe_timeout = Duration::from_millis(200);
    config.reconnect_backoff = vec![Duration::from_millis(10)];
    Ok((dir, OpencodeClient::new(config)?))
}

#[tokio::test]
async fn calls_go_through_a_unix_socket_with_basic_auth() -> anyhow::Result<()> {
    let (_dir, client) = serve_unix(Fake::default()).await?;
    let health = client.health().await?;
    assert_eq!(health.version, "1.18.33");

    let model = Some(den_opencode::ModelRef {
        provider_id: "p".into(),
        model_id: "m".into(),
    });
    client
        .prompt_async("ses_1", &PromptRequest::text("hi", model))
        .await?;

    let error = client.session("ses_missing").await.expect_err("404");
    assert!(error.is_not_found(), "{error:?}");
    assert!(format!("{error}").contains("Session not found"));
    Ok(())
}

#[tokio::test]
async fn a_missing_password_is_rejected_by_the_server() -> anyhow::Result<()> {
    let (dir, _client) = serve_unix(Fake::default()).await?;
    let client = OpencodeClient::new(OpencodeConfig::new(Target::Unix(
        dir.path().join("opencode.sock"),
    )))?;
    let error = client.health().await.expect_err("401");
    assert!(
        matches!(error, OpencodeError::Status { status: 401, .. }),
        "{error:?}"
    );
    Ok(())
}

#[tokio::test]
async fn wait_ready_retries_past_requests_that_never_answer() -> anyhow::Result<()> {
    let fake = Fake {
        hang_first: 2,
        ..Fake::default()
    };
    let (_dir, client) = serve_unix(fake).await?;
    let health = client.wait_ready(Instant::now() + WITHIN).await?;
    assert!(health.healthy);
    Ok(())
}

#[tokio::test]
async fn wait_ready_gives_up_at_the_deadline() -> anyhow::Result<()> {
    let fake = Fake {
        hang_first: usize::MAX,
        ..Fake::default()
    };
    let (_dir, client) = serve_unix(fake).await?;
    let started = Instant::now();
    let error = client
        .wait_ready(started + Duration::from_millis(700))
        .await
        .expect_err("never ready");
    let OpencodeError::NotReady { last, .. } = &error else {
        panic!("{error:?}");
    };
    assert!(matches!(**last, OpencodeError::Timeout { .. }), "{last:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    Ok(())
}

#[tokio::test]
async fn the_event_stream_reports_a_break_and_reconnects() -> anyhow::Result<()> {
    let (_dir, client) = serve_unix(Fake::default()).await?;
    let mut events = client.subscribe().await?;
    let mut next = async || {
        tokio::time::timeout(WITHIN, events.next())
            .await
            .expect("an item in time")
            .expect("the stream goes on")
    };
    assert_eq!(next().await?.event, Event::ServerConnected {});
    assert_eq!(next().await?.id, None);
    let error = next().await.expect_err("the first connection closes");
    assert!(matches!(error, OpencodeError::StreamEnded), "{error:?}");
    assert_eq!(next().await?.event, Event::ServerConnected {});
    let idle = next().await?.event;
    assert_eq!(
        idle,
        Event::SessionIdle {
            session_id: "ses_1".into()
        }
    );
    assert_eq!(idle.session_id(), Some("ses_1"));
    Ok(())
}

#[test]
fn bad_base_urls_are_rejected() {
    for url in [
        "not a url",
        "ftp://host",
        "http://user:pw@host",
        "http://host/?q=1",
    ] {
        let error =
            OpencodeClient::new(OpencodeConfig::new(Target::Tcp(url.into()))).expect_err(url);
        assert!(
            matches!(error, OpencodeError::InvalidBaseUrl { .. }),
            "{url}: {error:?}"
        );
    }
    let config = OpencodeConfig::new(Target::Tcp("http://h".into())).with_password("hunter2");
    assert!(!format!("{config:?}").contains("hunter2"));
}
