//! The model gateway: how OpenCode inside a sandbox reaches a model provider.
//!
//! A sandbox cannot reach the host's addresses, so den serves this gateway on a host unix socket
//! that the sandbox sees as `127.0.0.1:GATEWAY_PORT`. OpenCode's provider entries point at
//! `/v1/<provider>` with the session's gateway token as their "API key". For each request the
//! gateway checks the token, allows only the path the provider's SDK uses and only the
//! session's model, then picks the key *now* (the owner's own, else the admin's shared key,
//! else none: a refusal), so a key deleted a moment ago is not used. The real key is added on
//! the way upstream; no provider key ever enters a sandbox.
//!
//! Refusals are 403s in the provider's own error envelope, worded so OpenCode does not retry
//! them (its retry rule matches 429, 5xx and words such as "rate limit" or "try again later")
//! and shows the message in the transcript.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use den_session::catalog::KeySource;
use den_session::catalog::Price;
use den_session::{Catalog, ProviderKind};
use den_store::NewUsage;
use den_store::{SessionRecord, Store, StoreError};
use futures::{Stream, StreamExt};
use tokio::net::UnixListener;
use zeroize::Zeroizing;

pub(crate) mod endpoint;
mod meter;
pub(crate) mod probe;

use meter::Meter;

use crate::auth::secret_token;
use crate::budget::{CapSetBy, Caps};
use crate::error::ApiError;

/// The largest request body forwarded (conversations with big tool outputs are large).
const MAX_BODY: usize = 32 * 1024 * 1024;
/// Request headers passed upstream; everything else (cookies, the gateway token) stays here.
const FORWARDED_HEADERS: &[&str] = &[
    "content-type",
    "accept",
    "anthropic-version",
    "anthropic-beta",
    "user-agent",
    "originator",
    "x-opencode-client",
    "x-opencode-project",
    "x-opencode-session",
    "x-opencode-request",
];

#[derive(Clone)]
struct Gateway {
    store: Store,
    catalog: Catalog,
    http: reqwest::Client,
    policy: GatewayPolicy,
}

/// What the admin allows through the gateway.
#[derive(Debug, Clone, Copy, Default)]
pub struct GatewayPolicy {
    /// Whether people's endpoints may be on loopback, private or link-local addresses.
    pub allow_private_endpoints: bool,
    /// den's default spending cap per person and calendar month (UTC), in US dollars; `None`
    /// for none. An admin's cap for a person replaces it; a person's own lower cap applies
    /// before it (`budget`).
    pub monthly_budget_usd: Option<f64>,
}

/// Serves the gateway on `listener` until `shutdown` completes. Unless the policy allows
/// private endpoints, a person's endpoint is re-checked at every request, so a name that
/// resolves to a private address later is refused then too, and the request goes to the very
/// addresses that were checked (`endpoint`).
pub async fn serve_gateway(
    listener: UnixListener,
    store: Store,
    catalog: Catalog,
    policy: GatewayPolicy,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(std::io::Error::other)?;
    let gateway = Gateway {
        store,
        catalog,
        http,
        policy,
    };
    let app = Router::new()
        .route("/v1/{provider}/{*rest}", axum::routing::any(forward))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(gateway);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Where a request goes and with which key.
struct Upstream {
    kind: ProviderKind,
    base_url: String,
    /// The client for a person's endpoint, pinned to its checked addresses; `None` for den's
    /// and the admin's providers (the admin's configuration is trusted).
    pinned: Option<reqwest::Client>,
    key: Option<Zeroizing<String>>,
    /// The model's declared price, for metering.
    price: Option<Price>,
}

/// A refusal OpenCode shows and does not retry: 403, in the provider's envelope.
fn refuse(kind: ProviderKind, path: &str, message: &str) -> Response {
    let body = if kind.key_in_x_api_key(path) {
        serde_json::json!({"type": "error", "error": {"type": "permission_error", "message": message}})
    } else {
        serde_json::json!({"error": {"message": message, "type": "permission_error", "param": null, "code": "den_refused"}})
    };
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

async fn forward(
    State(gateway): State<Gateway>,
    Path((provider, rest)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let token = gateway_token(&headers).ok_or(ApiError::Unauthorized)?;
    let session = match gateway
        .store
        .session_by_gateway_token(&secret_token::hash(token))
        .await
    {
        Ok(session) => session,
        Err(StoreError::NotFound) => return Err(ApiError::Unauthorized),
        Err(err) => return Err(err.into()),
    };
    let kind = match gateway.catalog.provider(&provider) {
        Some(known) => known.kind,
        None => ProviderKind::OpenAiCompatible,
    };
    if method != Method::POST || !kind.allows_path(&rest) {
        return Ok(refuse(
            kind,
            &rest,
            &format!("den: this sandbox may not call {rest} of provider {provider}"),
        ));
    }
    let requested = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|body| body["model"].as_str().map(str::to_owned))
        .unwrap_or_default();
    if session.model != format!("{provider}/{requested}") {
        return Ok(refuse(
            kind,
            &rest,
            &format!("den: this session may use only the model {}", session.model),
        ));
    }
    if let Some(refusal) = over_budget(&gateway, session.owner_id).await? {
        return Ok(refuse(kind, &rest, refusal));
    }
    let upstream = match upstream(&gateway, &session, &provider, &requested).await? {
        Ok(upstream) => upstream,
        Err(message) => return Ok(refuse(kind, &rest, &message)),
    };
    let url = format!("{}/{rest}", upstream.base_url.trim_end_matches('/'));
    // Ask for the stream as it is: a compressed one could not be relayed chunk by chunk.
    let mut request = upstream
        .pinned
        .as_ref()
        .unwrap_or(&gateway.http)
        .post(url)
        .header("accept-encoding", "identity")
        .body(body);
    for name in FORWARDED_HEADERS {
        if let Some(value) = headers.get(*name) {
            request = request.header(*name, value);
        }
    }
    if let Some(key) = &upstream.key {
        request = if upstream.kind.key_in_x_api_key(&rest) {
            request.header("x-api-key", key.as_str())
        } else {
            request.bearer_auth(key.as_str())
        };
    }
    let response = request.send().await.map_err(|err| {
        // Without the URL: a person's endpoint address is theirs to know.
        ApiError::Unavailable(format!(
            "the provider {provider} did not answer: {}",
            err.without_url()
        ))
    })?;
    let metered = MeterContext {
        store: gateway.store.clone(),
        owner_id: session.owner_id,
        session_id: session.id,
        model: session.model.clone(),
        price: upstream.price,
    };
    Ok(relay(response, metered))
}

/// The refusal for an owner whose monthly budget is spent, if it is. Worded without numbers or
/// retry words: OpenCode ends the turn and shows it.
async fn over_budget(
    gateway: &Gateway,
    owner_id: uuid::Uuid,
) -> Result<Option<&'static str>, ApiError> {
    let caps = Caps::of(&gateway.store, owner_id, gateway.policy.monthly_budget_usd).await?;
    let Some((cap, set_by)) = caps.applying() else {
        return Ok(None);
    };
    let spent = gateway
        .store
        .usage_since(owner_id, crate::budget::month_start())
        .await?
        .cost_usd;
    if spent < cap {
        return Ok(None);
    }
    Ok(Some(match set_by {
        CapSetBy::Admin => "den: your monthly model budget is used up; an admin can raise it",
        CapSetBy::Person => {
            "den: the monthly model budget you set for yourself is used up; you can raise it in den's settings (Budget)"
        }
    }))
}

/// Where a metered request's usage is recorded.
struct MeterContext {
    store: Store,
    owner_id: uuid::Uuid,
    session_id: uuid::Uuid,
    model: String,
    price: Option<Price>,
}

impl MeterContext {
    /// Records what the stream reported; called when it ends, before the client sees the end,
    /// so the usage is stored by the time the turn is over.
    async fn record(&self, meter: &Meter) {
        let Some(usage) = meter.usage() else { return };
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let row = NewUsage {
            owner_id: self.owner_id,
            session_id: self.session_id,
            model: &self.model,
            input_tokens: count(usage.input),
            output_tokens: count(usage.output),
            reasoning_tokens: count(usage.reasoning),
            cache_read_tokens: count(usage.cache_read),
            cache_write_tokens: count(usage.cache_write),
            cost_usd: usage.cost(self.price),
        };
        if let Err(err) = self.store.record_usage(row).await {
            tracing::warn!(error = %err, session = %self.session_id, "cannot record model usage");
        }
    }
}

/// The provider's upstream and the key to use now, or a refusal message for the transcript.
async fn upstream(
    gateway: &Gateway,
    session: &SessionRecord,
    provider: &str,
    model: &str,
) -> Result<Result<Upstream, String>, ApiError> {
    let store = &gateway.store;
    if let Some(name) = provider.strip_prefix(den_session::catalog::ENDPOINT_PREFIX) {
        let endpoint = match store.model_endpoint(session.owner_id, name).await {
            Ok(endpoint) => endpoint,
            Err(StoreError::NotFound) => {
                return Ok(Err(format!(
                    "den: you have no model endpoint named {name} any more; add it in den's settings"
                )));
            }
            Err(err) => return Err(err.into()),
        };
        if !endpoint.models.iter().any(|m| m == model) {
            return Ok(Err(format!(
                "den: your endpoint {name} does not list the model {model}"
            )));
        }
        let checked =
            match endpoint::check(&endpoint.base_url, gateway.policy.allow_private_endpoints)
                .await
                .and_then(|checked| Ok((checked.base_url(), checked.client()?)))
            {
                Ok(checked) => checked,
                Err(reason) => {
                    return Ok(Err(format!(
                        "den: your endpoint {name} cannot be used: {reason}"
                    )));
                }
            };
        let key = store
            .endpoint_key(session.owner_id, name)
            .await?
            .map(|key| Zeroizing::new(String::from_utf8_lossy(&key).into_owned()));
        return Ok(Ok(Upstream {
            kind: ProviderKind::OpenAiCompatible,
            base_url: checked.0,
            pinned: Some(checked.1),
            key,
            price: None,
        }));
    }
    let Some(config) = gateway.catalog.provider(provider) else {
        return Ok(Err(format!("den: there is no provider {provider}")));
    };
    let Some(spec) = config.model(model) else {
        return Ok(Err(format!(
            "den: the provider {} offers no model {model} here",
            config.display_name
        )));
    };
    let owner = store.user_by_id(session.owner_id).await?;
    let resolved = gateway
        .catalog
        .key_for(store, &owner, config, model)
        .await
        .map_err(ApiError::internal)?;
    match resolved {
        Some(resolved) => Ok(Ok(Upstream {
            kind: config.kind,
            base_url: config.base_url.clone(),
            pinned: None,
            key: (resolved.source != KeySource::NotNeeded).then_some(resolved.key),
            price: spec.price,
        })),
        None => Ok(Err(format!(
            "den: no key for provider {}. Add your {} key in den's settings (Providers).",
            config.display_name, config.display_name
        ))),
    }
}

/// The upstream response, streamed through as it arrives.
/// Usage is read from the stream as it passes and recorded when it ends (an aborted stream is
/// not metered).
fn relay(upstream: reqwest::Response, metered: MeterContext) -> Response {
    let status =
        StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = upstream.headers().get("content-type").cloned();
    let inner: std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>> =
        Box::pin(upstream.bytes_stream());
    let state = (inner, Meter::default(), Some(metered));
    let body = futures::stream::unfold(state, |(mut inner, mut meter, mut metered)| async move {
        match inner.next().await {
            Some(Ok(bytes)) => {
                meter.feed(&bytes);
                Some((Ok(bytes), (inner, meter, metered)))
            }
            Some(Err(err)) => Some((Err(err), (inner, meter, metered))),
            None => {
                if let Some(metered) = metered.take() {
                    metered.record(&meter).await;
                }
                None
            }
        }
    });
    let mut response = (status, Body::from_stream(body)).into_response();
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(HeaderName::from_static("content-type"), content_type);
    }
    response
}

/// The token OpenCode sends: `Authorization: Bearer` (OpenAI format) or `x-api-key` (Anthropic).
fn gateway_token(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}
