//! Live sessions: the WebSocket, the SSE event stream, the session list stream, and the
//! REST commands (prompt, abort, pause, resume, queue edits).
//!
//! Each connection replays the stored events after the client's last sequence number, then
//! forwards live ones: no gap, no duplicate (see `den_session::EventSubscription`). A client too
//! slow to take events is disconnected with a resumable close instead of slowing the session.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use den_protocol::error::ErrorBody;
use den_protocol::events::{ClientMessage, PromptAccepted, PromptRequest, ServerMessage};
use den_session::{
    CommandOutcome, Delivery, EncodedEvent, EventSubscription, SessionCommand, SessionHandle,
};
use futures::{SinkExt, Stream, StreamExt};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, check_origin};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, IdPath};
use crate::validate;
use crate::{AppState, CLOSE_RESTARTING, CLOSE_RESUMABLE};

/// The socket's read buffer to start with; it grows for a larger message. Clients send little,
/// and tungstenite zeroes the whole buffer on every read: its 128 KiB default cost each of a
/// thousand clients 128 KiB of memory and den a large share of its CPU.
const READ_BUFFER: usize = 4096;
/// The most messages written to a WebSocket at once.
const MAX_BATCH: usize = 256;
/// The largest message a client may send (a prompt fits; the session enforces its own limit).
const MAX_CLIENT_MESSAGE: usize = 512 * 1024;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(websocket))
        .routes(routes!(events))
        .routes(routes!(list_stream))
        .routes(routes!(prompt))
        .routes(routes!(abort))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(clear_queue))
        .routes(routes!(dequeue, edit_queued))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct AfterQuery {
    /// The last sequence number the client has (0 or absent: from the start).
    after: Option<i64>,
}

/// The caller's session. Ownership is checked first, so another user's session is a 404 even
/// on a den that cannot run sessions.
pub(super) async fn session_of(
    state: &AppState,
    caller: &Caller,
    id: uuid::Uuid,
) -> Result<SessionHandle, ApiError> {
    // The manager checks ownership itself; without one, check it here before saying 503.
    if state.session_manager().is_none() {
        state.store().session_of(caller.user.id, id).await?;
    }
    Ok(state.sessions()?.session(caller.user.id, id).await?)
}

/// The session's events and commands over a WebSocket (see docs/protocol.md).
#[utoipa::path(get, path = "/api/sessions/{id}/ws", tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "the session's id"), AfterQuery),
    responses((status = 101, description = "WebSocket: ServerMessage out, ClientMessage in"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn websocket(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiQuery(query): ApiQuery<AfterQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    // Browsers send the cookie with cross-site WebSocket handshakes too: refuse foreign origins.
    check_origin(&headers, &state)?;
    let session = session_of(&state, &caller, id).await?;
    let after = query.after.unwrap_or(0);
    let slow_client = state.config().slow_client;
    let stopping = state.sessions()?.stopping();
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| {
            let prompter = Prompter {
                state,
                user: caller.user,
            };
            serve_socket(socket, session, prompter, after, slow_client, stopping)
        })
        .into_response())
}

async fn serve_socket(
    socket: WebSocket,
    session: SessionHandle,
    prompter: Prompter,
    after: i64,
    slow_client: Duration,
    stopping: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stopping);
    let (mut sink, mut stream) = socket.split();
    let (replies, mut outgoing) = tokio::sync::mpsc::channel::<ServerMessage>(16);
    let mut subscription = session.subscribe(after);
    let mut reader = tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let text = match message {
                Message::Text(text) => text.to_string(),
                Message::Binary(_) => {
                    let _ = replies
                        .send(refused("invalid_message", "messages are JSON text"))
                        .await;
                    continue;
                }
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => continue,
            };
            let reply = match serde_json::from_str::<ClientMessage>(&text) {
                Ok(command) => run_command(&session, &prompter, command).await,
                Err(err) => Some(refused("invalid_message", &err.to_string())),
            };
            if let Some(reply) = reply
                && replies.send(reply).await.is_err()
            {
                break;
            }
        }
    });
    let mut keepalive = tokio::time::interval(Duration::from_secs(30));
    loop {
        let message = tokio::select! {
            // Events first: what the session said before den stopped reaches the client
            // before the close.
            biased;
            delivery = subscription.next() => match delivery {
                Some(Ok(Delivery::Event(event))) => event_frame(&event),
                Some(Ok(Delivery::CaughtUp { seq })) => text_frame(&ServerMessage::Live { seq }),
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "event subscription failed");
                    break;
                }
                // The session's live feed ended (den stopping, or the session deleted).
                None => {
                    close_restarting(&mut sink).await;
                    break;
                }
            },
            Some(reply) = outgoing.recv() => text_frame(&reply),
            _ = keepalive.tick() => Some(Message::Ping(Vec::new().into())),
            // The client closed or went away: stop now, not at the next event or ping.
            _ = &mut reader => break,
            // den is stopping: tell the client, which reconnects to the next den.
            () = &mut stopping => {
                close_restarting(&mut sink).await;
                break;
            }
        };
        let Some(message) = message else {
            continue;
        };
        // Whatever else is already here goes out in the same write: a client catching up
        // costs den one write per batch, not one per event.
        let send = async {
            sink.feed(message).await?;
            for _ in 1..MAX_BATCH {
                let Some(event) = subscription.next_ready() else {
                    break;
                };
                if let Some(frame) = event_frame(&event) {
                    sink.feed(frame).await?;
                }
            }
            sink.flush().await
        };
        match tokio::time::timeout(slow_client, send).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break,
            Err(_) => {
                // Frames still in the socket's buffer never reach the client, so only it
                // knows where to resume: with the last sequence number it received.
                metrics::counter!("den_ws_slow_client_closes_total").increment(1);
                let frame = CloseFrame {
                    code: CLOSE_RESUMABLE,
                    reason: "too slow; reconnect with after=<the last seq received>".into(),
                };
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    sink.send(Message::Close(Some(frame))),
                )
                .await;
                break;
            }
        }
    }
    reader.abort();
}

/// Tells the client den is going away and where to pick up.
async fn close_restarting(sink: &mut futures::stream::SplitSink<WebSocket, Message>) {
    let frame = CloseFrame {
        code: CLOSE_RESTARTING,
        reason: "den is restarting; reconnect with after=<the last seq received>".into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        sink.send(Message::Close(Some(frame))),
    )
    .await;
}

/// The WebSocket message of an event, encoded once for all of the session's clients.
fn event_frame(event: &EncodedEvent) -> Option<Message> {
    match Utf8Bytes::try_from(event.frame().clone()) {
        Ok(text) => Some(Message::Text(text)),
        Err(err) => {
            tracing::error!(error = %err, seq = event.seq(), "an encoded event is not UTF-8");
            None
        }
    }
}

fn text_frame(message: &ServerMessage) -> Option<Message> {
    serde_json::to_string(message)
        .ok()
        .map(|text| Message::Text(text.into()))
}

fn refused(code: &str, message: &str) -> ServerMessage {
    ServerMessage::Refused {
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

/// Who sends prompts over a socket, for checking the model a prompt asks for.
struct Prompter {
    state: AppState,
    user: den_store::UserRecord,
}

/// Refuses, before anything changes, a prompt's model that is malformed (400), unknown (400) or
/// locked for the caller (403); the same rule for REST and the WebSocket.
async fn check_prompt_model(
    state: &AppState,
    user: &den_store::UserRecord,
    model: Option<&str>,
) -> Result<(), ApiError> {
    let Some(model) = model else { return Ok(()) };
    validate::model(model).map_err(ApiError::BadRequest)?;
    super::models::ensure_usable(state, user, model).await
}

/// Runs one client command; the reply (if any) goes back on the same socket.
async fn run_command(
    session: &SessionHandle,
    prompter: &Prompter,
    command: ClientMessage,
) -> Option<ServerMessage> {
    if let ClientMessage::Prompt { model, .. } = &command
        && let Err(api) =
            check_prompt_model(&prompter.state, &prompter.user, model.as_deref()).await
    {
        return Some(refused(api.code(), &api.to_string()));
    }
    let Some(command) = SessionCommand::from_client(command, &prompter.user.username) else {
        return Some(ServerMessage::Pong);
    };
    match session.dispatch(command).await {
        Ok(_) => None,
        Err(err) => {
            let api = ApiError::from(err);
            Some(refused(api.code(), &api.to_string()))
        }
    }
}

/// The session's events as Server-Sent Events (`id:` is the sequence number; `Last-Event-ID`
/// is honoured over `after`).
#[utoipa::path(get, path = "/api/sessions/{id}/events", tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "the session's id"), AfterQuery),
    responses((status = 200, description = "text/event-stream of SequencedEvent", content_type = "text/event-stream"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn events(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiQuery(query): ApiQuery<AfterQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let last_event_id = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<i64>().ok())
                .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be a sequence number"))?,
        ),
        None => None,
    };
    let after = last_event_id.or(query.after).unwrap_or(0);
    let session = session_of(&state, &caller, id).await?;
    // den stopping ends the stream once the session said its last (its live feed closes);
    // the client reconnects with `Last-Event-ID`.
    let stream = futures::stream::unfold(
        session.subscribe(after),
        |mut subscription: EventSubscription| async move {
            let sse = match subscription.next().await? {
                Ok(Delivery::Event(event)) => SseEvent::default()
                    .id(event.seq().to_string())
                    .event("event")
                    .data(String::from_utf8_lossy(event.json())),
                Ok(Delivery::CaughtUp { seq }) => {
                    SseEvent::default().event("live").data(seq.to_string())
                }
                Err(err) => {
                    tracing::warn!(error = %err, "event subscription failed");
                    return None;
                }
            };
            Some((Ok(sse), subscription))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Changes of the caller's session list as Server-Sent Events (`SessionListUpdate`).
#[utoipa::path(get, path = "/api/sessions/stream", tag = "sessions",
    responses((status = 200, description = "text/event-stream of SessionListUpdate", content_type = "text/event-stream"),
        (status = 401, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn list_stream(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let manager = state.sessions()?;
    let changes = manager.list_changes();
    let stopping = manager.stopping();
    let owner = caller.user.id;
    let stream = futures::stream::unfold(changes, move |mut changes| async move {
        loop {
            match changes.recv().await {
                Ok(change) if change.owner_id == owner => {
                    let data = serde_json::to_string(&change.update).unwrap_or_default();
                    return Some((Ok(SseEvent::default().event("session").data(data)), changes));
                }
                Ok(_) => {}
                // Missed changes: tell the client to reload its list.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    return Some((Ok(SseEvent::default().event("resync").data("{}")), changes));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .take_until(stopping);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Sends a prompt: it runs now, or waits behind the running turn. A paused, idle or errored
/// session is resumed first.
#[utoipa::path(post, path = "/api/sessions/{id}/prompt", tag = "sessions", request_body = PromptRequest,
    params(("id" = uuid::Uuid, Path, description = "the session's id")),
    responses((status = 202, body = PromptAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn prompt(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiJson(request): ApiJson<PromptRequest>,
) -> Result<(StatusCode, Json<PromptAccepted>), ApiError> {
    if let Some(model) = &request.model {
        validate::model(model).map_err(ApiError::BadRequest)?;
    }
    let session = session_of(&state, &caller, id).await?;
    check_prompt_model(&state, &caller.user, request.model.as_deref()).await?;
    let command = SessionCommand::Prompt {
        text: request.text,
        model: request.model,
    };
    match session.dispatch(command).await? {
        CommandOutcome::Prompt(accepted) => Ok((StatusCode::ACCEPTED, Json(accepted))),
        CommandOutcome::Done => Err(ApiError::internal(std::io::Error::other(
            "a prompt was answered without its acceptance",
        ))),
    }
}

macro_rules! command_route {
    ($name:ident, $path:literal, $doc:literal, $command:expr) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "sessions",
            params(("id" = uuid::Uuid, Path, description = "the session's id")),
            responses((status = 204, description = "done"), (status = 401, body = ErrorBody),
                (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)),
            security(("cookie" = []), ("bearer" = [])))]
        async fn $name(State(state): State<AppState>, caller: Caller, IdPath(id): IdPath) -> Result<StatusCode, ApiError> {
            session_of(&state, &caller, id).await?.dispatch($command).await?;
            Ok(StatusCode::NO_CONTENT)
        }
    };
}

command_route!(
    abort,
    "/api/sessions/{id}/abort",
    "Stops the running turn.",
    SessionCommand::Abort
);
command_route!(
    pause,
    "/api/sessions/{id}/pause",
    "Snapshots and stops the session's sandbox.",
    SessionCommand::Pause
);
command_route!(
    resume,
    "/api/sessions/{id}/resume",
    "Restores the last snapshot and starts the agent.",
    SessionCommand::Resume
);

/// Removes every queued prompt.
#[utoipa::path(delete, path = "/api/sessions/{id}/queue", tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "the session's id")),
    responses((status = 204, description = "cleared"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn clear_queue(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    session_of(&state, &caller, id)
        .await?
        .dispatch(SessionCommand::ClearQueue)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes one queued prompt.
#[utoipa::path(delete, path = "/api/sessions/{id}/queue/{item}", tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "the session's id"), ("item" = String, Path, description = "the queued prompt's id")),
    responses((status = 204, description = "removed"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn dequeue(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path((id, item)): axum::extract::Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = id
        .parse()
        .map_err(|_| ApiError::bad_request("id must be a UUID"))?;
    session_of(&state, &caller, id)
        .await?
        .dispatch(SessionCommand::Dequeue { id: item })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the text of a queued prompt (one that has not started yet).
#[utoipa::path(put, path = "/api/sessions/{id}/queue/{item}", tag = "sessions", request_body = PromptRequest,
    params(("id" = uuid::Uuid, Path, description = "the session's id"), ("item" = String, Path, description = "the queued prompt's id")),
    responses((status = 204, description = "replaced"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn edit_queued(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path((id, item)): axum::extract::Path<(String, String)>,
    ApiJson(request): ApiJson<PromptRequest>,
) -> Result<StatusCode, ApiError> {
    let id = id
        .parse()
        .map_err(|_| ApiError::bad_request("id must be a UUID"))?;
    if request.model.is_some() {
        return Err(ApiError::bad_request(
            "a queued prompt's model cannot be changed: remove it and send it again",
        ));
    }
    let command = SessionCommand::EditQueued {
        id: item,
        text: request.text,
    };
    session_of(&state, &caller, id)
        .await?
        .dispatch(command)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
