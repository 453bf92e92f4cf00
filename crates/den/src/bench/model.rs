//! A local model for the benchmarks: an OpenAI-compatible chat-completions endpoint that
//! streams numbered deltas (`tok-000042 `) at a fixed pace and records when it wrote each one,
//! so a client that sees a marker knows how long the event took to reach it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The provider and model names den is configured with.
pub(crate) const PROVIDER: &str = "bench";
pub(crate) const MODEL: &str = "bench-model";

/// Nanoseconds on the wall clock: comparable between the bench's processes (the WebSocket
/// clients run in another one). A clock step during a run would skew it; slewing is harmless.
pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Finds the markers in `text`: every `tok-` followed by six digits.
pub(crate) fn markers(text: &str) -> impl Iterator<Item = u64> + '_ {
    text.match_indices("tok-").filter_map(|(at, _)| {
        let digits = text.get(at + 4..at + 10)?;
        digits.parse().ok()
    })
}

struct Shared {
    /// Deltas per agent reply, and the pause before each.
    deltas: AtomicUsize,
    gap_us: AtomicU64,
    next_marker: AtomicU64,
    /// When each marker was written.
    sent: Mutex<HashMap<u64, u64>>,
}

#[derive(Clone)]
pub(crate) struct BenchModel {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for BenchModel {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl BenchModel {
    pub(crate) async fn start(deltas: usize, gap: Duration) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            deltas: AtomicUsize::new(deltas),
            gap_us: AtomicU64::new(gap.as_micros() as u64),
            next_marker: AtomicU64::new(0),
            sent: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::warn!(error = %err, "the bench model stopped");
            }
        });
        Ok(Self {
            addr,
            shared,
            task: Arc::new(task),
        })
    }

    /// The provider's base URL (OpenAI-compatible, under `/v1`).
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// When each marker was written, as [`now_ns`].
    pub(crate) fn sent(&self) -> HashMap<u64, u64> {
        self.shared
            .sent
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }
}

fn chunk(delta: &Value, finish: &Value) -> Bytes {
    let body = json!({
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    Bytes::from(format!("data: {body}\n\n"))
}

fn closing() -> [Bytes; 2] {
    let usage = json!({
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
        "choices": [],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    });
    [
        chunk(&json!({}), &json!("stop")),
        Bytes::from(format!("data: {usage}\n\ndata: [DONE]\n\n")),
    ]
}

async fn completions(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let offers_tools = body["tools"].as_array().is_some_and(|t| !t.is_empty());
    let streaming = body["stream"].as_bool().unwrap_or(false);
    if !offers_tools && !streaming {
        // A title or summary request: a short fixed answer.
        let reply = json!({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Bench session"},
                "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
        });
        return axum::Json(reply).into_response();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        let _ = tx
            .send(Ok(chunk(
                &json!({"role": "assistant", "content": ""}),
                &Value::Null,
            )))
            .await;
        if offers_tools {
            let count = shared.deltas.load(Ordering::Relaxed);
            let gap = Duration::from_micros(shared.gap_us.load(Ordering::Relaxed));
            let mut tick = tokio::time::interval(gap);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for _ in 0..count {
                tick.tick().await;
                let marker = shared.next_marker.fetch_add(1, Ordering::Relaxed);
                let piece = chunk(
                    &json!({"content": format!("tok-{marker:06} ")}),
                    &Value::Null,
                );
                let at = now_ns();
                if tx.send(Ok(piece)).await.is_err() {
                    return;
                }
                shared
                    .sent
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner())
                    .insert(marker, at);
            }
        } else {
            let _ = tx
                .send(Ok(chunk(
                    &json!({"content": "Bench session"}),
                    &Value::Null,
                )))
                .await;
        }
        for piece in closing() {
            let _ = tx.send(Ok(piece)).await;
        }
    });
    let stream = tokio_stream_from(rx);
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, Infallible>>,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
