//! Read-only share links. The owner creates, lists and revokes a session's links; anyone
//! holding a link's token sees that session's transcript and its live stream, and nothing else:
//! the token opens only the two `/api/shared/{token}` routes (it is neither an API token nor a
//! browser session), which send no command anywhere. A revoked or expired link answers 404,
//! like one that never existed, and revoking ends every open viewer at once.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use den_protocol::error::ErrorBody;
use den_protocol::events::SessionEvent;
use den_protocol::sharing::{CreateShareLinkRequest, CreatedShareLink, ShareLink, SharedSession};
use den_session::{Delivery, EventSubscription};
use den_store::{NewShareLink, ShareLinkRecord, StoreError};
use futures::Stream;
use tokio::sync::broadcast;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::auth::secret_token;
use crate::error::ApiError;
use crate::extract::{ApiJson, IdPath};

/// The prefix of share tokens, so one is recognisable (and never mistaken for an API token).
const SHARE_TOKEN_PREFIX: &str = "dsh_";
/// How often an open viewer checks that its link still works: a revocation made by another
/// den of the same database reaches it this way.
const RECHECK: Duration = Duration::from_secs(15);

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
        .routes(routes!(shared_session))
        .routes(routes!(shared_events))
}

/// Creates a read-only link to the session (optionally expiring). The token is in this answer
/// only; den keeps its hash.
#[utoipa::path(post, path = "/api/sessions/{id}/shares", operation_id = "create_share_link", tag = "sessions", request_body = CreateShareLinkRequest,
    params(("id" = Uuid, Path, description = "the session's id")),
    responses((status = 201, body = CreatedShareLink), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiJson(request): ApiJson<CreateShareLinkRequest>,
) -> Result<(StatusCode, Json<CreatedShareLink>), ApiError> {
    if let Some(at) = request.expires_at
        && at <= chrono::Utc::now()
    {
        return Err(ApiError::bad_request("expiresAt must be in the future"));
    }
    let token = format!("{SHARE_TOKEN_PREFIX}{}", secret_token::generate()?);
    let record = state
        .store()
        .create_share_link(NewShareLink {
            id: Uuid::now_v7(),
            session_id: id,
            owner_id: caller.user.id,
            token_hash: &secret_token::hash(&token),
            expires_at: request.expires_at,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedShareLink {
            link: record.to_protocol(),
            token,
        }),
    ))
}

/// The session's share links, newest first, revoked and expired ones included (no tokens).
#[utoipa::path(get, path = "/api/sessions/{id}/shares", operation_id = "list_share_links", tag = "sessions",
    params(("id" = Uuid, Path, description = "the session's id")),
    responses((status = 200, body = Vec<ShareLink>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<Json<Vec<ShareLink>>, ApiError> {
    state.store().session_of(caller.user.id, id).await?;
    let links = state.store().share_links_of(caller.user.id, id).await?;
    Ok(Json(
        links.iter().map(ShareLinkRecord::to_protocol).collect(),
    ))
}

/// Revokes a share link: it answers 404 from now on, and its open viewers are closed.
#[utoipa::path(delete, path = "/api/sessions/{id}/shares/{link}", operation_id = "revoke_share_link", tag = "sessions",
    params(("id" = Uuid, Path, description = "the session's id"), ("link" = Uuid, Path, description = "the link's id")),
    responses((status = 204, description = "revoked"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, link)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let parse = |text: &str, what: &str| {
        text.parse::<Uuid>()
            .map_err(|_| ApiError::bad_request(format!("{what} must be a UUID")))
    };
    let (id, link) = (parse(&id, "id")?, parse(&link, "link")?);
    state
        .store()
        .revoke_share_link(caller.user.id, id, link)
        .await?;
    // No viewer open is fine.
    let _ = state.share_revocations().send(link);
    Ok(StatusCode::NO_CONTENT)
}

/// The link's working record; anything else (malformed, unknown, revoked, expired) is a 404.
async fn live_link(state: &AppState, token: &str) -> Result<ShareLinkRecord, ApiError> {
    if !token.starts_with(SHARE_TOKEN_PREFIX) || token.len() > 100 {
        return Err(ApiError::NotFound);
    }
    match state
        .store()
        .live_share_link(&secret_token::hash(token))
        .await
    {
        Ok(link) => Ok(link),
        Err(StoreError::NotFound) => Err(ApiError::NotFound),
        Err(err) => Err(err.into()),
    }
}

/// The shared session's title and status (nothing of its owner, repository or branches).
#[utoipa::path(get, path = "/api/shared/{token}", operation_id = "get_shared_session", tag = "sessions",
    params(("token" = String, Path, description = "the share link's token")),
    responses((status = 200, body = SharedSession), (status = 404, body = ErrorBody)),
)]
async fn shared_session(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<SharedSession>, ApiError> {
    let link = live_link(&state, &token).await?;
    let record = state
        .store()
        .session_of(link.owner_id, link.session_id)
        .await?;
    Ok(Json(SharedSession {
        status: record.status()?,
        title: record.title,
        created_at: record.created_at,
    }))
}

/// The shared session's transcript events as Server-Sent Events, like
/// `/api/sessions/{id}/events` but only the transcript's kinds (no progress details, usage,
/// queue, diff or unmapped agent events), so sequence numbers have gaps. Ends when the link is
/// revoked or expires.
#[utoipa::path(get, path = "/api/shared/{token}/events", operation_id = "shared_session_events", tag = "sessions",
    params(("token" = String, Path, description = "the share link's token"),
        ("after" = Option<i64>, Query, description = "the last sequence number the viewer has")),
    responses((status = 200, description = "text/event-stream of SequencedEvent", content_type = "text/event-stream"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
)]
async fn shared_events(
    State(state): State<AppState>,
    Path(token): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let after = resume_point(query.as_deref(), &headers)?;
    let link = live_link(&state, &token).await?;
    let manager = state.sessions()?;
    let session = manager.session(link.owner_id, link.session_id).await?;
    // Subscribed before the link is checked again, so a revocation in between is not missed.
    let revocations = state.share_revocations().subscribe();
    let viewer = Viewer {
        subscription: session.subscribe(after),
        revocations,
        state: state.clone(),
        token_hash: secret_token::hash(&token),
        link_id: link.id,
        expires: expiry_instant(link.expires_at),
        recheck: tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK),
        stopping: Box::pin(manager.stopping()),
    };
    Ok(
        Sse::new(futures::stream::unfold(viewer, Viewer::next_frame))
            .keep_alive(KeepAlive::default()),
    )
}

/// `Last-Event-ID` over `?after=`, as on the owner's stream.
fn resume_point(query: Option<&str>, headers: &HeaderMap) -> Result<i64, ApiError> {
    if let Some(value) = headers.get("last-event-id") {
        return value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<i64>().ok())
            .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be a sequence number"));
    }
    let mut after = 0;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("after", value)) => {
                after = value
                    .parse()
                    .map_err(|_| ApiError::bad_request("after must be a sequence number"))?
            }
            _ => return Err(ApiError::bad_request("the only parameter is after")),
        }
    }
    Ok(after)
}

fn expiry_instant(at: Option<chrono::DateTime<chrono::Utc>>) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    match at {
        Some(at) => now + (at - chrono::Utc::now()).to_std().unwrap_or_default(),
        // Effectively never; the periodic check still sees a revocation.
        None => now + Duration::from_secs(10 * 365 * 24 * 3600),
    }
}

/// Whether a viewer sees events of this kind: only what the transcript shows. An allow-list,
/// so a kind added later stays private until someone decides otherwise.
fn shared_kind(event: &SessionEvent) -> bool {
    matches!(
        event,
        SessionEvent::Status { .. }
            | SessionEvent::Renamed { .. }
            | SessionEvent::TurnStarted { .. }
            | SessionEvent::TurnFinished { .. }
            | SessionEvent::Message { .. }
            | SessionEvent::TextDelta { .. }
            | SessionEvent::ReasoningDelta { .. }
            | SessionEvent::PartText { .. }
            | SessionEvent::Tool(_)
            | SessionEvent::Todos { .. }
            | SessionEvent::Error { .. }
    )
}

/// One open viewer of a share link.
struct Viewer {
    subscription: EventSubscription,
    revocations: broadcast::Receiver<Uuid>,
    state: AppState,
    token_hash: String,
    link_id: Uuid,
    expires: tokio::time::Instant,
    recheck: tokio::time::Interval,
    stopping: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

impl Viewer {
    /// The next SSE frame, or `None` when the viewer must end.
    async fn next_frame(mut self) -> Option<(Result<SseEvent, Infallible>, Self)> {
        loop {
            tokio::select! {
                delivery = self.subscription.next() => match delivery? {
                    Ok(Delivery::Event(event)) if shared_kind(&event.event().event) => {
                        let frame = SseEvent::default()
                            .id(event.seq().to_string())
                            .event("event")
                            .data(String::from_utf8_lossy(event.json()));
                        return Some((Ok(frame), self));
                    }
                    Ok(Delivery::Event(_)) => {}
                    Ok(Delivery::CaughtUp { seq }) => {
                        let frame = SseEvent::default().event("live").data(seq.to_string());
                        return Some((Ok(frame), self));
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "a share viewer's subscription failed");
                        return None;
                    }
                },
                revoked = self.revocations.recv() => match revoked {
                    Ok(id) if id == self.link_id => return None,
                    Ok(_) => {}
                    // Missed some: ask the store.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if !still_works(&self.state, &self.token_hash, self.link_id).await {
                            return None;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                () = tokio::time::sleep_until(self.expires) => return None,
                _ = self.recheck.tick() => {
                    if !still_works(&self.state, &self.token_hash, self.link_id).await {
                        return None;
                    }
                }
                () = &mut self.stopping => return None,
            }
        }
    }
}

/// Whether the viewer's link still works (asked of the store).
async fn still_works(state: &AppState, token_hash: &str, link_id: Uuid) -> bool {
    match state.store().live_share_link(token_hash).await {
        Ok(link) => link.id == link_id,
        Err(StoreError::NotFound) => false,
        // A database hiccup does not end the viewer; the next check decides.
        Err(err) => {
            tracing::warn!(error = %err, "cannot check a share link");
            true
        }
    }
}
