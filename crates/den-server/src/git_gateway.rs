//! The git gateway: how git inside a sandbox fetches from and pushes to the session's real
//! remote without ever holding the person's token.
//!
//! Like the model gateway, it is served on a host unix socket that the sandbox sees as
//! `127.0.0.1:GIT_GATEWAY_PORT`; the session's checkout has it as `origin`, and the sandbox's
//! git sends the session's gateway token as its Basic password. The gateway maps the token to
//! the session, forwards git's smart-HTTP calls to the session's repository URL and adds the
//! person's credential for that host there. Pushes are read before they are forwarded: only
//! the session's own branch may change (den-git's `receive_pack` reads the ref updates and
//! applies the push rules; this route checks the token and forwards); a refused push is answered with
//! git's report-status, which the agent's `git push` prints as `[remote rejected] (reason)`.
//! No git runs on the host.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use den_git::receive_pack;
use den_session::EgressPolicy;
use den_store::{SessionRecord, Store, StoreError};
use futures::{Stream, StreamExt};
use tokio::net::UnixListener;

use crate::auth::secret_token;

/// The largest push or fetch negotiation forwarded (counted as it streams through).
const MAX_BODY: usize = 512 * 1024 * 1024;
/// The most a push's command list may take before its pack (den reads it before forwarding).
const MAX_COMMANDS: usize = 1024 * 1024;
/// Request headers passed upstream; everything else (the gateway token above all) stays here.
const FORWARDED_HEADERS: &[&str] = &[
    "content-type",
    "accept",
    "accept-encoding",
    "content-encoding",
    "git-protocol",
    "user-agent",
];

#[derive(Clone)]
struct GitGateway {
    store: Store,
    /// The sandbox's egress rules: the gateway fetches on a sandbox's behalf, so it reaches only
    /// what a sandbox could (plus the admin's allow-list), never den's host or private networks.
    egress: Arc<EgressPolicy>,
    /// The person's GitHub token for GitHub's host, when they stored no credential for it.
    github: Option<crate::GithubCredentials>,
}

/// Serves the git gateway on `listener` until `shutdown` completes.
pub async fn serve_git_gateway(
    listener: UnixListener,
    store: Store,
    egress: EgressPolicy,
    github: Option<crate::GithubCredentials>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .fallback(forward)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(GitGateway {
            store,
            egress: Arc::new(egress),
            github,
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// `head` (what was read already) and the rest of the client's body, as one stream to the
/// remote that fails once it passed [`MAX_BODY`] bytes.
fn capped_body(head: Vec<u8>, rest: axum::body::BodyDataStream) -> reqwest::Body {
    let mut sent = 0usize;
    let chunks = futures::stream::once(async move { Ok::<Bytes, axum::Error>(Bytes::from(head)) })
        .chain(rest)
        .map(move |chunk| {
            let chunk = chunk.map_err(std::io::Error::other)?;
            sent = sent.saturating_add(chunk.len());
            if sent > MAX_BODY {
                return Err(std::io::Error::other(
                    "the request is larger than den forwards",
                ));
            }
            Ok(chunk)
        });
    reqwest::Body::wrap_stream(chunks)
}

/// A plain-text answer git shows the agent (`fatal: …` or `remote: …`).
fn answer(status: StatusCode, message: &str) -> Response {
    (status, format!("{message}\n")).into_response()
}

fn unauthorized() -> Response {
    let mut response = answer(
        StatusCode::UNAUTHORIZED,
        "den's git gateway needs the session's token",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"den\""),
    );
    response
}

/// The smart-HTTP endpoints git uses, after the repository part of the path.
fn smart_http_suffix(method: &Method, uri: &Uri) -> Option<&'static str> {
    let path = uri.path();
    let query = uri.query().unwrap_or_default();
    match *method {
        Method::GET if path.ends_with("/info/refs") => match query {
            "service=git-upload-pack" => Some("info/refs?service=git-upload-pack"),
            "service=git-receive-pack" => Some("info/refs?service=git-receive-pack"),
            _ => None,
        },
        Method::POST if path.ends_with("/git-upload-pack") => Some("git-upload-pack"),
        Method::POST if path.ends_with("/git-receive-pack") => Some("git-receive-pack"),
        _ => None,
    }
}

/// The session whose gateway token the request carries (as its Basic password).
async fn session_of(gateway: &GitGateway, headers: &HeaderMap) -> Result<SessionRecord, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| t.split_once(':').map(|(_, password)| password.to_owned()))
        .filter(|t| !t.is_empty())
        .ok_or_else(unauthorized)?;
    match gateway
        .store
        .session_by_gateway_token(&secret_token::hash(&token))
        .await
    {
        Ok(record) => Ok(record),
        Err(StoreError::NotFound) => Err(unauthorized()),
        Err(err) => {
            tracing::error!(error = %err, "git gateway cannot look the session up");
            Err(answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "den cannot serve git right now",
            ))
        }
    }
}

/// The host (lowercase, with a port when it has one) of an http(s) repository URL.
fn host_of(repository: &str) -> Option<String> {
    let rest = repository
        .strip_prefix("https://")
        .or_else(|| repository.strip_prefix("http://"))?;
    let authority = rest.split('/').next().filter(|a| !a.is_empty())?;
    Some(authority.to_ascii_lowercase())
}

async fn forward(
    State(gateway): State<GitGateway>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(suffix) = smart_http_suffix(&method, &uri) else {
        return answer(
            StatusCode::NOT_FOUND,
            "den's git gateway serves only git fetch and push",
        );
    };
    let session = match session_of(&gateway, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Some(host) = host_of(&session.repository) else {
        return answer(
            StatusCode::NOT_FOUND,
            "this session's repository is not on a git host den can reach",
        );
    };
    // The body streams through (a push's pack can be large); only a push's command list, which
    // comes first, is read before anything is forwarded.
    let mut stream = body.into_data_stream();
    let mut head = Vec::new();
    if suffix == "git-receive-pack" {
        loop {
            match receive_pack::command_list(&head) {
                receive_pack::CommandList::Complete => break,
                receive_pack::CommandList::Invalid => {
                    return answer(StatusCode::BAD_REQUEST, "den cannot read this push");
                }
                receive_pack::CommandList::Incomplete if head.len() > MAX_COMMANDS => {
                    return answer(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "this push names too many refs",
                    );
                }
                receive_pack::CommandList::Incomplete => {}
            }
            match stream.next().await {
                Some(Ok(chunk)) => head.extend_from_slice(&chunk),
                Some(Err(_)) | None => {
                    return answer(StatusCode::BAD_REQUEST, "den cannot read this push");
                }
            }
        }
        let Some(request) = receive_pack::parse(&head) else {
            return answer(StatusCode::BAD_REQUEST, "den cannot read this push");
        };
        let reasons: Vec<Option<String>> = request
            .commands
            .iter()
            .map(|c| receive_pack::refusal(c, &session.work_branch))
            .collect();
        if reasons.iter().any(Option::is_some) {
            tracing::info!(session.id = %session.id, "git gateway refused a push");
            return (
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    "application/x-git-receive-pack-result",
                )],
                receive_pack::refusal_report(&request, &reasons),
            )
                .into_response();
        }
    }
    let url = format!("{}/{suffix}", session.repository.trim_end_matches('/'));
    let http = match pinned_client(&gateway.egress, &session.repository).await {
        Ok(http) => http,
        Err(refusal) => {
            tracing::warn!(session.id = %session.id, %refusal, "git gateway: remote refused by the egress rules");
            return answer(StatusCode::FORBIDDEN, &refusal);
        }
    };
    let mut upstream = http.request(method, url).body(capped_body(head, stream));
    for name in FORWARDED_HEADERS {
        if let Some(value) = headers.get(*name) {
            upstream = upstream.header(*name, value);
        }
    }
    match gateway.store.git_credential(session.owner_id, &host).await {
        Ok(Some(credential)) => {
            upstream = upstream.basic_auth(&credential.username, Some(credential.token.as_str()));
        }
        Ok(None) => {
            let from_github = match &gateway.github {
                Some(github) => github.for_host(session.owner_id, &host).await,
                None => Ok(None),
            };
            match from_github {
                Ok(Some((username, token))) => {
                    upstream = upstream.basic_auth(&username, Some(token.as_str()));
                }
                Ok(None) => {}
                // The agent reads this: it says what the person must do, not a cryptic 401.
                Err(message) => return answer(StatusCode::FORBIDDEN, &message),
            }
        }
        Err(err) => {
            tracing::error!(error = %err, "git gateway cannot open the person's credential");
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "den cannot serve git right now",
            );
        }
    }
    let response = match upstream.send().await {
        Ok(response) => response,
        Err(err) => {
            tracing::warn!(error = %err, %host, "git gateway: the remote did not answer");
            return answer(
                StatusCode::BAD_GATEWAY,
                &format!("den could not reach {host}"),
            );
        }
    };
    if response.status() == reqwest::StatusCode::UNAUTHORIZED {
        // Relaying the 401 would make git ask the agent for a password it cannot have.
        return answer(
            StatusCode::FORBIDDEN,
            &format!(
                "{host} refused den's credential (or den has none): add one for {host} in den's settings"
            ),
        );
    }
    relay(response)
}

/// A client that reaches `repository`'s host only at the addresses the egress rules resolved
/// and checked (pinned, so a second lookup cannot rebind the name), following no redirect.
async fn pinned_client(egress: &EgressPolicy, repository: &str) -> Result<reqwest::Client, String> {
    let url =
        url::Url::parse(repository).map_err(|_| "the repository URL is not valid".to_owned())?;
    let host = url
        .host_str()
        .ok_or_else(|| "the repository URL has no host".to_owned())?
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses = egress
        .resolve(&host, port)
        .await
        .map_err(|refusal| refusal.to_string())?;
    let pinned: Vec<SocketAddr> = addresses
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    crate::gateway::endpoint::pinned_client(Some(&host), &pinned)
        .map_err(|err| format!("den cannot make a client for the remote: {err}"))
}

/// The upstream response, streamed through as it arrives.
fn relay(upstream: reqwest::Response) -> Response {
    let status =
        StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    for name in [
        header::CONTENT_TYPE,
        header::CACHE_CONTROL,
        header::CONTENT_ENCODING,
    ] {
        if let Some(value) = upstream.headers().get(name.as_str())
            && let Ok(value) = HeaderValue::from_bytes(value.as_bytes())
        {
            headers.insert(name, value);
        }
    }
    let body: std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>> =
        Box::pin(upstream.bytes_stream());
    let mut response = (status, Body::from_stream(body)).into_response();
    response.headers_mut().extend(headers);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_smart_http_calls_pass() {
        let get = |u: &str| smart_http_suffix(&Method::GET, &u.parse().unwrap());
        let post = |u: &str| smart_http_suffix(&Method::POST, &u.parse().unwrap());
        assert_eq!(
            get("/repo.git/info/refs?service=git-upload-pack"),
            Some("info/refs?service=git-upload-pack")
        );
        assert_eq!(post("/repo.git/git-receive-pack"), Some("git-receive-pack"));
        assert_eq!(get("/repo.git/info/refs?service=other"), None);
        assert_eq!(get("/repo.git/HEAD"), None);
        assert_eq!(get("/repo.git/objects/info/packs"), None);
        assert_eq!(post("/repo.git/info/refs?service=git-upload-pack"), None);
    }

    #[test]
    fn hosts_come_from_http_urls_only() {
        assert_eq!(
            host_of("https://GitHub.com/acme/widgets.git").as_deref(),
            Some("github.com")
        );
        assert_eq!(
            host_of("http://127.0.0.1:8080/a.git").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(host_of("/srv/repos/a"), None);
    }
}
