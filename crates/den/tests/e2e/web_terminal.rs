//! The session terminal (`GET /api/sessions/{id}/terminal`): a real shell in the real sandbox,
//! through OpenCode's PTY, over den's WebSocket.

use std::time::Duration;

use den_protocol::events::{ServerMessage, SessionEvent};
use den_protocol::sessions::SessionStatus;
use den_protocol::terminal::TerminalServerMessage;
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{Den, WITHIN};

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A terminal client: what it sent and everything the shell printed so far.
struct TerminalSocket {
    stream: Stream,
    output: String,
}

/// Opens a terminal as `token`'s user; the HTTP status when den refuses.
async fn open(
    den: &Den,
    token: &str,
    session: &str,
    query: &str,
    origin: Option<&str>,
) -> Result<TerminalSocket, StatusCode> {
    let url = format!(
        "{}/api/sessions/{session}/terminal{query}",
        den.base.replacen("http://", "ws://", 1)
    );
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    if let Some(origin) = origin {
        headers.insert("origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((stream, _)) => Ok(TerminalSocket {
            stream,
            output: String::new(),
        }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(StatusCode::from_u16(response.status().as_u16()).unwrap())
        }
        Err(other) => panic!("the terminal handshake failed: {other}"),
    }
}

impl TerminalSocket {
    async fn send(&mut self, message: Value) {
        self.stream
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    async fn type_line(&mut self, line: &str) {
        self.send(json!({"type": "input", "data": format!("{line}\r")}))
            .await;
    }

    /// The next message from den (pings skipped).
    async fn next(&mut self, deadline: tokio::time::Instant) -> TerminalServerMessage {
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("no terminal message in time");
            match message.expect("terminal closed").unwrap() {
                Message::Text(text) => {
                    let message: TerminalServerMessage = serde_json::from_str(&text).unwrap();
                    if let TerminalServerMessage::Output { data } = &message {
                        self.output.push_str(data);
                    }
                    return message;
                }
                Message::Close(frame) => panic!("terminal closed: {frame:?}"),
                _ => {}
            }
        }
    }

    /// Reads output until it contains `needle` (after what was read before); returns the new
    /// output.
    async fn until_output(&mut self, needle: &str) -> String {
        let start = self.output.len();
        let deadline = tokio::time::Instant::now() + WITHIN;
        while !self.output[start..].contains(needle) {
            self.next(deadline).await;
        }
        self.output[start..].to_owned()
    }

    /// Reads until den refuses a message; returns its code.
    async fn next_refusal(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            if let TerminalServerMessage::Refused { code, .. } = self.next(deadline).await {
                return code;
            }
        }
    }

    /// Reads to the end of the connection; the close frame's code, if den sent one.
    async fn read_to_close(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("the terminal did not close in time");
            match message {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }
}

/// Starts the session's sandbox without a prompt and waits until it runs.
async fn run_sandbox(den: &Den, session: &str) {
    let mut socket = den.connect(session, 0).await;
    // Past the history first: an earlier start's `running` must not count.
    while !matches!(socket.next().await, ServerMessage::Live { .. }) {}
    let (status, body) = den
        .api(
            Method::POST,
            &format!("/api/sessions/{session}/resume"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    socket
        .until(|e| {
            matches!(
                e,
                SessionEvent::Status {
                    status: SessionStatus::Running,
                    ..
                }
            )
        })
        .await;
    socket.close().await;
}

/// `stty size` in the terminal: "rows cols". The command line's own echo never matches (the
/// marker is split by quotes there).
async fn stty_size(terminal: &mut TerminalSocket) -> String {
    terminal.type_line(r#"echo "S""Z=$(stty size)=Z""S""#).await;
    let output = terminal.until_output("=ZS").await;
    let start = output.rfind("SZ=").expect("stty answered") + "SZ=".len();
    let end = start + output[start..].find("=ZS").unwrap();
    output[start..end].to_owned()
}

#[tokio::test]
async fn a_terminal_echoes_resizes_runs_beside_another_refuses_bad_messages_and_closes_on_pause() {
    let den = Den::start().await;
    let session = den.create_session(None).await;
    run_sandbox(&den, &session).await;

    let mut first = open(&den, &den.token, &session, "?cols=80&rows=24", None)
        .await
        .expect("the owner opens a terminal");
    first.type_line("echo den-$((40 + 2))").await;
    first.until_output("den-42").await;
    assert_eq!(stty_size(&mut first).await, "24 80");

    first
        .send(json!({"type": "resize", "cols": 100, "rows": 40}))
        .await;
    assert_eq!(stty_size(&mut first).await, "40 100");

    // Bad messages are refused and change nothing.
    first
        .stream
        .send(Message::Text("echo not json".into()))
        .await
        .unwrap();
    assert_eq!(first.next_refusal().await, "invalid_message");
    first
        .send(json!({"type": "resize", "cols": 0, "rows": 5000}))
        .await;
    assert_eq!(first.next_refusal().await, "invalid_size");
    assert_eq!(stty_size(&mut first).await, "40 100");

    // The shell is the sandbox's: its user, and OpenCode's own credentials are blank.
    first
        .type_line("echo who=[$(id -u)] pw=[$OPENCODE_SERVER_PASSWORD]")
        .await;
    let answer = first.until_output("pw=[]").await;
    assert!(answer.contains("who=[1000]"), "{answer}");

    // A second terminal of the same session is a shell of its own.
    let mut second = open(&den, &den.token, &session, "", None)
        .await
        .expect("a second terminal");
    first.type_line("export MARK=first-only").await;
    second.type_line("echo mark=[${MARK:-unset}]").await;
    second.until_output("mark=[unset]").await;

    let (status, body) = den
        .api(
            Method::POST,
            &format!("/api/sessions/{session}/pause"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(first.read_to_close().await, Some(1001));
    assert_eq!(second.read_to_close().await, Some(1001));
    // A paused session has no shell to open.
    assert_eq!(
        open(&den, &den.token, &session, "", None).await.err(),
        Some(StatusCode::CONFLICT)
    );

    // Resumed, its terminal ends when the session is deleted.
    run_sandbox(&den, &session).await;
    let mut third = open(&den, &den.token, &session, "", None)
        .await
        .expect("a terminal after the resume");
    third.type_line("echo back-$((2 + 3))").await;
    third.until_output("back-5").await;
    let (status, body) = den
        .api(Method::DELETE, &format!("/api/sessions/{session}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(third.read_to_close().await, Some(1001));
}

#[tokio::test]
async fn another_users_terminal_is_not_found_foreign_origins_and_bad_sizes_are_refused_and_den_stopping_closes_it()
 {
    let mut den = Den::start().await;
    let session = den.create_session(None).await;
    run_sandbox(&den, &session).await;
    den.add_user("mallory").await;
    let mallory = den.sign_in("mallory").await;

    let refused = |result: Result<TerminalSocket, StatusCode>| result.err();
    assert_eq!(
        refused(open(&den, &mallory, &session, "", None).await),
        Some(StatusCode::NOT_FOUND)
    );
    assert_eq!(
        refused(open(&den, &den.token, &session, "", Some("https://evil.example")).await),
        Some(StatusCode::FORBIDDEN)
    );
    for query in [
        "?cols=0&rows=24",
        "?cols=80",
        "?cols=80&rows=1001",
        "?cols=x&rows=1",
    ] {
        assert_eq!(
            refused(open(&den, &den.token, &session, query, None).await),
            Some(StatusCode::BAD_REQUEST),
            "{query}"
        );
    }
    // None of that left a shell behind: the owner's terminal is the only one.
    let mut terminal = open(&den, &den.token, &session, "", Some(&den.base))
        .await
        .expect("the owner, from den's own origin");
    terminal.type_line("echo ready-$((1 + 1))").await;
    terminal.until_output("ready-2").await;

    let status = den.terminate(Duration::from_secs(40)).await;
    assert!(status.success(), "den exits cleanly: {status:?}");
    assert_eq!(terminal.read_to_close().await, Some(1012));
}
