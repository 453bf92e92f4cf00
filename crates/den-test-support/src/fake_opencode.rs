//! A stand-in for OpenCode's HTTP API on a unix socket, for tests of den's session actor that
//! need neither a sandbox nor the real binary. It answers the calls den makes with OpenCode
//! 1.18.33's wire format and, for each prompt, replays a turn the real OpenCode streamed
//! (`den-opencode/tests/fixtures/live-events.jsonl`) or misbehaves as scripted.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

/// The conversation id the fake hands out (the one of the recorded turn).
pub const FAKE_AGENT_SESSION: &str = "ses_df2e96209ffewlNYjhnCfRGqM9";

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../den-opencode/tests/fixtures"
);

/// How the fake answers one prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeReply {
    /// Replays the recorded turn: busy, a text delta, a `write` tool call, idle.
    Recorded,
    /// Says it is busy, then nothing more (an agent that hangs).
    Silent,
    /// Says it is busy, then its event stream breaks; while no client listens the turn ends
    /// (idle, with the recorded conversation), so only reading the agent's state tells.
    EndsWhileDisconnected,
    /// Refuses the prompt with a 500.
    Refuse,
}

#[derive(Default)]
struct Script {
    replies: VecDeque<FakeReply>,
    prompts: Vec<String>,
    aborts: usize,
    busy: bool,
}

#[derive(Clone)]
struct Shared {
    script: Arc<Mutex<Script>>,
    events: broadcast::Sender<String>,
    /// Bumped to end every open event stream.
    cut: Arc<watch::Sender<u64>>,
}

impl Shared {
    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running fake OpenCode; stops when dropped.
pub struct FakeOpencode {
    socket: PathBuf,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for FakeOpencode {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeOpencode {
    /// Listens on a unix socket in a fresh temporary directory.
    ///
    /// # Panics
    /// When the socket cannot be bound.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let socket = dir.path().join("opencode.sock");
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind the fake's socket");
        let shared = Shared {
            script: Arc::default(),
            events: broadcast::channel(1024).0,
            cut: Arc::new(watch::channel(0).0),
        };
        let app = Router::new()
            .route("/global/health", get(health))
            .route("/event", get(events))
            .route("/session", post(create_session).get(list_sessions))
            .route("/session/status", get(statuses))
            .route("/session/{id}", get(session))
            .route("/session/{id}/prompt_async", post(prompt))
            .route("/session/{id}/abort", post(abort))
            .route("/session/{id}/message", get(messages))
            .route(
                "/permission/{id}/reply",
                post(|| async { axum::Json(true) }),
            )
            // Terminals: one echoing terminal, whatever is asked.
            .route("/pty", post(|| async { axum::Json(fake_pty()) }))
            .route(
                "/pty/{id}",
                axum::routing::put(|| async { axum::Json(fake_pty()) })
                    .delete(|| async { axum::Json(true) }),
            )
            .route("/pty/{id}/connect", get(pty_connect))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            socket,
            shared,
            server,
            _dir: dir,
        }
    }

    /// The socket den's OpenCode client connects to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// How the next prompts are answered, in order; after these, [`FakeReply::Recorded`].
    pub fn script(&self, replies: impl IntoIterator<Item = FakeReply>) {
        self.shared.script().replies.extend(replies);
    }

    /// The text of every prompt received so far.
    pub fn prompts(&self) -> Vec<String> {
        self.shared.script().prompts.clone()
    }

    /// How many stop requests arrived.
    pub fn aborts(&self) -> usize {
        self.shared.script().aborts
    }

    /// Ends the recorded turn now (for a turn answered [`FakeReply::Silent`]).
    pub fn finish_turn(&self) {
        for line in recorded_turn() {
            let _ = self.shared.events.send(line);
        }
        self.shared.script().busy = false;
    }
}

/// The recorded turn's events from `session.status: busy` to `session.idle`, as SSE data.
fn recorded_turn() -> Vec<String> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/live-events.jsonl"))
        .expect("the recorded OpenCode events");
    text.lines()
        .filter(|line| {
            let kind = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|event| event.get("type").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            !matches!(
                kind.as_str(),
                "server.connected" | "server.heartbeat" | "session.created"
            )
        })
        .map(str::to_owned)
        .collect()
}

fn busy_event() -> String {
    json!({"type": "session.status", "properties": {"sessionID": FAKE_AGENT_SESSION, "status": {"type": "busy"}}})
        .to_string()
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("a recorded fixture");
    serde_json::from_str(&text).expect("fixture JSON")
}

fn fake_pty() -> Value {
    json!({"id": "pty_fake", "title": "fake", "command": "/bin/sh", "args": [],
        "cwd": "/workspace", "status": "running", "pid": 1})
}

/// A terminal that echoes every keystroke back as output, as a shell's line discipline does.
async fn pty_connect(upgrade: axum::extract::ws::WebSocketUpgrade) -> Response {
    use axum::extract::ws::Message;
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            if let Message::Text(text) = message
                && socket.send(Message::Text(text)).await.is_err()
            {
                break;
            }
        }
    })
}

async fn health() -> impl IntoResponse {
    axum::Json(json!({"healthy": true, "version": crate::OPENCODE_VERSION}))
}

async fn events(
    State(shared): State<Shared>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = shared.events.subscribe();
    let mut cut = shared.cut.subscribe();
    cut.borrow_and_update();
    let connected = json!({"type": "server.connected", "properties": {}}).to_string();
    let first = futures::stream::once(async move { Ok(Event::default().data(connected)) });
    let rest = futures::stream::unfold((receiver, cut), |(mut receiver, mut cut)| async move {
        tokio::select! {
            event = receiver.recv() => match event {
                Ok(data) => Some((Ok(Event::default().data(data)), (receiver, cut))),
                Err(_) => None,
            },
            _ = cut.changed() => None,
        }
    });
    Sse::new(futures::StreamExt::chain(first, rest))
}

async fn create_session() -> impl IntoResponse {
    axum::Json(fixture("live-session.json"))
}

async fn list_sessions() -> impl IntoResponse {
    axum::Json(json!([fixture("live-session.json")]))
}

async fn session(axum::extract::Path(id): axum::extract::Path<String>) -> Response {
    if id == FAKE_AGENT_SESSION {
        axum::Json(fixture("live-session.json")).into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn statuses(State(shared): State<Shared>) -> impl IntoResponse {
    if shared.script().busy {
        axum::Json(json!({FAKE_AGENT_SESSION: {"type": "busy"}}))
    } else {
        axum::Json(json!({}))
    }
}

async fn messages() -> impl IntoResponse {
    axum::Json(fixture("live-messages.json"))
}

async fn prompt(State(shared): State<Shared>, body: axum::Json<Value>) -> Response {
    let text = body
        .get("parts")
        .and_then(|parts| parts.get(0))
        .and_then(|part| part.get("text"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let reply = {
        let mut script = shared.script();
        script.prompts.push(text);
        let reply = script.replies.pop_front().unwrap_or(FakeReply::Recorded);
        script.busy = !matches!(reply, FakeReply::Refuse);
        reply
    };
    let events = shared.events.clone();
    match reply {
        FakeReply::Refuse => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        FakeReply::Recorded => {
            tokio::spawn(async move {
                for line in recorded_turn() {
                    let _ = events.send(line);
                }
            });
            // Idle by the time anyone asks.
            shared.script().busy = false;
        }
        FakeReply::Silent => {
            let _ = events.send(busy_event());
        }
        FakeReply::EndsWhileDisconnected => {
            let _ = events.send(busy_event());
            let cut = shared.cut.clone();
            let script = shared.script;
            tokio::spawn(async move {
                // The turn ends while no stream is connected: nothing of it is on the wire.
                script.lock().unwrap_or_else(PoisonError::into_inner).busy = false;
                cut.send_modify(|n| *n += 1);
            });
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn abort(State(shared): State<Shared>) -> impl IntoResponse {
    let was_busy = {
        let mut script = shared.script();
        script.aborts += 1;
        std::mem::replace(&mut script.busy, false)
    };
    if was_busy {
        let aborted = json!({"type": "session.error", "properties": {"sessionID": FAKE_AGENT_SESSION, "error": {"name": "MessageAbortedError", "data": {"message": "Aborted"}}}});
        let idle = json!({"type": "session.idle", "properties": {"sessionID": FAKE_AGENT_SESSION}});
        let _ = shared.events.send(aborted.to_string());
        let _ = shared.events.send(idle.to_string());
    }
    axum::Json(was_busy)
}
