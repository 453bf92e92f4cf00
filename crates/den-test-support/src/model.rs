//! A scripted model server: speaks the OpenAI chat-completions, OpenAI Responses and Anthropic
//! messages streaming formats on `127.0.0.1`, replays queued [`Turn`]s, and records every
//! request with the key it carried.
//!
//! Each agent request (one that offers tools) takes the next turn from the queue. OpenCode's
//! side requests (the session title, summaries) are answered with a fixed short text and do
//! not consume turns, so scripts only describe the conversation itself.

mod script;
mod wire;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use script::{Gate, ProviderError, Turn};
use wire::Frame;

/// What OpenCode answers side requests with; also the title it gives sessions.
pub const SIDE_REPLY: &str = "Scripted session";

/// Which API a request used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// OpenAI chat completions (`/v1/chat/completions`).
    OpenAi,
    Anthropic,
    /// OpenAI's Responses API (`/v1/responses`).
    Responses,
}

/// Why OpenCode called the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// A conversation step: the request offers tools. Consumes a scripted turn.
    Agent,
    /// OpenCode asking for a session title.
    Title,
    /// Any other request without tools (summaries and the like).
    Other,
}

#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub api: Api,
    pub kind: RequestKind,
    /// OpenCode's session id, from its `x-session-id` header.
    pub session_id: Option<String>,
    /// The key the request carried: `x-api-key`, or the `Authorization: Bearer` token.
    pub credential: Option<String>,
    pub body: Value,
}

impl RecordedRequest {
    /// Every text in the request (system prompt, messages, tool calls and results), joined
    /// by newlines, for asserting what the model was shown.
    pub fn transcript(&self) -> String {
        let mut texts = Vec::new();
        collect_strings(&self.body["system"], &mut texts);
        collect_strings(&self.body["messages"], &mut texts);
        texts.join("\n")
    }

    /// The `messages` array as sent.
    pub fn messages(&self) -> &[Value] {
        self.body["messages"].as_array().map_or(&[], Vec::as_slice)
    }
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|item| collect_strings(item, out)),
        Value::Object(fields) => fields
            .values()
            .for_each(|field| collect_strings(field, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

struct Shared {
    turns: Mutex<VecDeque<Turn>>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Bumped on every recorded request, so tests can wait for one without polling.
    recorded: watch::Sender<usize>,
    /// The only key accepted, once set: any other gets the provider's 401.
    required_key: Mutex<Option<String>>,
}

/// A running scripted model. Dropping it stops the server.
pub struct ScriptedModel {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl ScriptedModel {
    /// Starts the server on an ephemeral loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            turns: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            recorded: watch::channel(0).0,
            required_key: Mutex::new(None),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(openai))
            .route("/v1/messages", post(anthropic))
            .route("/v1/responses", post(responses))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "scripted model server stopped");
            }
        });
        Ok(Self {
            addr,
            shared,
            server,
        })
    }

    /// Base URL for an OpenAI-compatible or Anthropic provider entry (both live under `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues the reply to the next agent request.
    pub fn push(&self, turn: Turn) {
        lock(&self.shared.turns).push_back(turn);
    }

    /// From now on, answers a request carrying any other key with a 401 in the provider's own
    /// error envelope (as the real providers do), without taking a turn.
    pub fn require_key(&self, key: &str) {
        *lock(&self.shared.required_key) = Some(key.to_owned());
    }

    pub fn remaining_turns(&self) -> usize {
        lock(&self.shared.turns).len()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The agent requests received so far (those that consumed turns).
    pub fn agent_requests(&self) -> Vec<RecordedRequest> {
        let requests = lock(&self.shared.requests);
        requests
            .iter()
            .filter(|request| request.kind == RequestKind::Agent)
            .cloned()
            .collect()
    }

    /// Waits until at least `count` requests of any kind have arrived.
    pub async fn wait_for_requests(&self, count: usize) {
        let mut recorded = self.shared.recorded.subscribe();
        // The sender lives in `self.shared`, so the channel cannot close while we wait.
        let _ = recorded.wait_for(|seen| *seen >= count).await;
    }
}

impl Drop for ScriptedModel {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The lock guards plain data with no invariants spanning calls, so a poisoned lock (a test
/// panicked while holding it) is still safe to use.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn classify(body: &Value) -> RequestKind {
    let offers_tools = body["tools"]
        .as_array()
        .is_some_and(|tools| !tools.is_empty());
    if offers_tools {
        return RequestKind::Agent;
    }
    let mut texts = Vec::new();
    collect_strings(&body["system"], &mut texts);
    collect_strings(&body["messages"], &mut texts);
    // The Responses API's shape.
    collect_strings(&body["instructions"], &mut texts);
    collect_strings(&body["input"], &mut texts);
    if texts.iter().any(|text| text.contains("title generator")) {
        RequestKind::Title
    } else {
        RequestKind::Other
    }
}

/// Records the request and picks the turn that answers it.
fn take_turn(shared: &Shared, api: Api, headers: &HeaderMap, body: Value) -> Turn {
    let kind = classify(&body);
    let session_id = headers
        .get("x-session-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let credential = headers
        .get("x-api-key")
        .or_else(|| headers.get("authorization"))
        .and_then(|value| value.to_str().ok())
        .map(|value| value.strip_prefix("Bearer ").unwrap_or(value).to_owned());
    let wrong_key = lock(&shared.required_key)
        .as_ref()
        .is_some_and(|required| credential.as_ref() != Some(required));
    let turn = match kind {
        _ if wrong_key => Turn::error(
            401,
            match api {
                Api::Anthropic => "invalid x-api-key",
                Api::OpenAi | Api::Responses => "Incorrect API key provided",
            },
        ),
        RequestKind::Agent => lock(&shared.turns).pop_front().unwrap_or_else(|| {
            tracing::warn!("scripted model has no turn left; answering with a fixed text");
            Turn::text("(the scripted model has no turn left)")
        }),
        RequestKind::Title | RequestKind::Other => Turn::text(SIDE_REPLY),
    };
    let count = {
        let mut requests = lock(&shared.requests);
        requests.push(RecordedRequest {
            api,
            kind,
            session_id,
            credential,
            body,
        });
        requests.len()
    };
    shared.recorded.send_replace(count);
    turn
}

async fn openai(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "body is not JSON").into_response();
    };
    let model = body["model"].as_str().unwrap_or("scripted").to_owned();
    let turn = take_turn(&shared, Api::OpenAi, &headers, body);
    if let Some(failure) = &turn.failure {
        return error_response(
            failure,
            wire::openai_error(&failure.message, failure.status),
        );
    }
    stream(wire::openai_frames(&turn, &model), &turn)
}

async fn anthropic(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "body is not JSON").into_response();
    };
    let model = body["model"].as_str().unwrap_or("scripted").to_owned();
    let turn = take_turn(&shared, Api::Anthropic, &headers, body);
    if let Some(failure) = &turn.failure {
        return error_response(
            failure,
            wire::anthropic_error(&failure.message, failure.status),
        );
    }
    stream(wire::anthropic_frames(&turn, &model), &turn)
}

async fn responses(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "body is not JSON").into_response();
    };
    let model = body["model"].as_str().unwrap_or("scripted").to_owned();
    let turn = take_turn(&shared, Api::Responses, &headers, body);
    if let Some(failure) = &turn.failure {
        return error_response(
            failure,
            wire::openai_error(&failure.message, failure.status),
        );
    }
    stream(wire::responses_frames(&turn, &model), &turn)
}

fn error_response(failure: &ProviderError, body: Value) -> Response {
    let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

/// Streams the frames, pausing `chunk_delay` before each and waiting at holds.
fn stream(frames: Vec<Frame>, turn: &Turn) -> Response {
    let delay = turn.chunk_delay;
    let frames: VecDeque<Frame> = frames.into();
    let body = futures::stream::unfold(frames, move |mut frames| async move {
        loop {
            match frames.pop_front()? {
                Frame::Hold(gate) => gate.pass().await,
                Frame::Data(text) => {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    return Some((Ok::<_, Infallible>(text), frames));
                }
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
