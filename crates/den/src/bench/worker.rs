//! The `events` suite's WebSocket clients, run as a separate process (`den bench --ws-worker
//! URL --ws-clients N`, the token in `DENBENCH_TOKEN`) so that den's own memory can be read
//! apart from theirs. Each client follows one turn: it notes when it first saw each marker in
//! a `text_delta` event and stops at `turn_finished`.
//!
//! Output on stdout: `ready` once all clients are connected, then one JSON line
//! `{"closed": n, "received": [[marker, ns], ...], "cpu_ms": t}` (every client's pairs; the
//! worker's CPU time after all connected).

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

use super::den::{WITHIN, connect, raise_fd_limit};
use super::model::{markers, now_ns};

pub(crate) const TOKEN_ENV: &str = "DENBENCH_TOKEN";

/// What one client saw.
#[derive(Default)]
struct Seen {
    received: Vec<(u64, u64)>,
    closed: bool,
}

pub(crate) async fn run(url: &str, clients: usize) -> anyhow::Result<ExitCode> {
    raise_fd_limit();
    let token = std::env::var(TOKEN_ENV).with_context(|| format!("{TOKEN_ENV} is not set"))?;
    let sockets: Vec<_> = futures::stream::iter(0..clients)
        .map(|_| {
            let token = token.clone();
            async move {
                let mut last = None;
                for _ in 0..5 {
                    match connect(url, &token).await {
                        Ok(socket) => return Ok(socket),
                        Err(err) => last = Some(err),
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(last.unwrap_or_else(|| anyhow::anyhow!("cannot connect")))
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut tasks = Vec::with_capacity(clients);
    for socket in sockets {
        let socket = socket.context("connecting a WebSocket client")?;
        tasks.push(tokio::spawn(follow(socket)));
    }
    let mut stdout = tokio::io::stdout();
    let connected_cpu = super::den::cpu_ms("self").unwrap_or(0.0);
    stdout.write_all(b"ready\n").await?;
    stdout.flush().await?;

    let mut received = Vec::new();
    let mut closed = 0;
    for task in tasks {
        let seen = tokio::time::timeout(WITHIN, task)
            .await
            .context("a client did not see the turn finish in time")??;
        received.extend(seen.received.into_iter().map(|(m, at)| [m, at]));
        closed += usize::from(seen.closed);
    }
    let cpu = super::den::cpu_ms("self").unwrap_or(0.0) - connected_cpu;
    let out = serde_json::json!({ "closed": closed, "received": received, "cpu_ms": cpu });
    stdout.write_all(format!("{out}\n").as_bytes()).await?;
    stdout.flush().await?;
    Ok(ExitCode::SUCCESS)
}

async fn follow(mut socket: super::den::Socket) -> Seen {
    let mut seen = Seen::default();
    let mut markers_seen = HashSet::new();
    while let Some(message) = socket.next().await {
        let at = now_ns();
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(_)) | Err(_) => {
                seen.closed = true;
                return seen;
            }
            Ok(_) => continue,
        };
        if text.contains("\"type\":\"text_delta\"") {
            for marker in markers(&text) {
                if markers_seen.insert(marker) {
                    seen.received.push((marker, at));
                }
            }
        } else if text.contains("\"type\":\"turn_finished\"") {
            let _ = socket.close(None).await;
            return seen;
        }
    }
    seen.closed = true;
    seen
}
