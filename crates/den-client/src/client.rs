//! The REST calls of den's public API.

use std::time::Duration;

use den_protocol::auth::{CreateTokenRequest, CreatedToken, LoginRequest, User};
use den_protocol::changes::{
    PullRequest, PullRequestRequest, PushRequest, PushResult, SessionDiff,
};
use den_protocol::error::ErrorBody;
use den_protocol::events::{PromptAccepted, PromptRequest};
use den_protocol::sessions::{CreateSessionRequest, Session, SessionPage};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;
use uuid::Uuid;

use crate::error::ClientError;
use crate::events::EventStream;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a plain request may take. Event streams have no such limit (they last as long as
/// the session's turn); they have an idle limit instead.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A signed-in client of one den.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// Checks and normalises a den's base URL (`http(s)://host[:port][/prefix]`).
pub(crate) fn parse_base(url: &str) -> Result<Url, ClientError> {
    let mut parsed = Url::parse(url.trim()).map_err(|_| ClientError::BadUrl(url.to_owned()))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none()
        || parsed.query().is_some()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return Err(ClientError::BadUrl(url.to_owned()));
    }
    if !parsed.path().ends_with('/') {
        let path = format!("{}/", parsed.path());
        parsed.set_path(&path);
    }
    Ok(parsed)
}

impl Client {
    /// A client of the den at `base_url` using the API token `token`.
    pub fn new(base_url: &str, token: &str) -> Result<Self, ClientError> {
        let base = parse_base(base_url)?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("den-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ClientError::Network {
                url: base.to_string(),
                source,
            })?;
        Ok(Self {
            http,
            base,
            token: token.to_owned(),
        })
    }

    /// The den's base URL, as given (with a trailing slash).
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    fn url(&self, path: &str) -> Url {
        // `path` is always one of this module's own constants or a formatted UUID.
        self.base
            .join(path.trim_start_matches('/'))
            .unwrap_or_else(|_| self.base.clone())
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_with_query(method, path, &[])
    }

    pub(crate) fn request_with_query(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
    ) -> RequestBuilder {
        let mut url = self.url(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.http.request(method, url).bearer_auth(&self.token)
    }

    pub(crate) async fn send(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Network {
                url: self.base.to_string(),
                source,
            })?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.refusal(response).await)
    }

    async fn refusal(&self, response: Response) -> ClientError {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => (body.error.code, body.error.message),
            Err(_) => (
                status.as_str().to_owned(),
                status.canonical_reason().unwrap_or("error").to_owned(),
            ),
        };
        match status {
            StatusCode::UNAUTHORIZED => ClientError::Unauthorized {
                url: self.base.to_string(),
                message,
            },
            StatusCode::NOT_FOUND => ClientError::NotFound { message },
            _ => ClientError::Refused {
                status: status.as_u16(),
                code,
                message,
            },
        }
    }

    async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, ClientError> {
        let response = self.send(request.timeout(REQUEST_TIMEOUT)).await?;
        let text = response
            .text()
            .await
            .map_err(|source| ClientError::Network {
                url: self.base.to_string(),
                source,
            })?;
        serde_json::from_str(&text).map_err(|err| ClientError::Protocol(err.to_string()))
    }

    async fn no_content(&self, request: RequestBuilder) -> Result<(), ClientError> {
        self.send(request.timeout(REQUEST_TIMEOUT)).await?;
        Ok(())
    }

    /// Signs in with a username and password, as the web page does, and makes an API token
    /// named `token_name` with that sign-in; the browser-style session is ended right after,
    /// so only the token remains. The client keeps using its own token; the new one is
    /// returned.
    pub async fn token_from_password(
        &self,
        username: &str,
        password: &str,
        token_name: &str,
    ) -> Result<CreatedToken, ClientError> {
        let login = self
            .http
            .post(self.url("/api/auth/login"))
            // den's check against cross-site cookie requests (a browser cannot send it).
            .header("x-den-csrf", "1")
            .json(&LoginRequest {
                username: username.to_owned(),
                password: password.to_owned(),
            })
            .timeout(REQUEST_TIMEOUT);
        let response = match self.send(login).await {
            Ok(response) => response,
            Err(ClientError::Unauthorized { message, .. }) => {
                return Err(ClientError::SignInRefused(message));
            }
            Err(ClientError::Refused {
                status: 429,
                message,
                ..
            }) => {
                return Err(ClientError::SignInRefused(message));
            }
            Err(err) => return Err(err),
        };
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            // Over https den names it `__Host-den_session`.
            .find(|value| {
                value.starts_with("den_session=") || value.starts_with("__Host-den_session=")
            })
            .and_then(|value| value.split(';').next())
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Protocol("the sign-in set no session cookie".to_owned()))?;
        let with_cookie = |method: Method, path: &str| {
            self.http
                .request(method, self.url(path))
                .header("cookie", &cookie)
                .header("x-den-csrf", "1")
                .timeout(REQUEST_TIMEOUT)
        };
        let created = self
            .send(
                with_cookie(Method::POST, "/api/tokens").json(&CreateTokenRequest {
                    name: token_name.to_owned(),
                }),
            )
            .await;
        // Ends the sign-in whatever happened: only the token is meant to outlive this call.
        let _ = self
            .send(with_cookie(Method::POST, "/api/auth/logout"))
            .await;
        let text = created?
            .text()
            .await
            .map_err(|source| ClientError::Network {
                url: self.base.to_string(),
                source,
            })?;
        serde_json::from_str(&text).map_err(|err| ClientError::Protocol(err.to_string()))
    }

    /// `GET /api/auth/me`: who the token belongs to (also how `den login` checks a token).
    pub async fn me(&self) -> Result<User, ClientError> {
        self.json(self.request(Method::GET, "/api/auth/me")).await
    }

    /// Every session of the caller, newest activity first (all pages).
    pub async fn sessions(&self) -> Result<Vec<Session>, ClientError> {
        let mut sessions = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("limit", "100")];
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.as_str()));
            }
            let request = self.request_with_query(Method::GET, "/api/sessions", &query);
            let page: SessionPage = self.json(request).await?;
            sessions.extend(page.sessions);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(sessions),
            }
        }
    }

    pub async fn session(&self, id: Uuid) -> Result<Session, ClientError> {
        self.json(self.request(Method::GET, &format!("/api/sessions/{id}")))
            .await
    }

    pub async fn create_session(
        &self,
        request: &CreateSessionRequest,
    ) -> Result<Session, ClientError> {
        self.json(self.request(Method::POST, "/api/sessions").json(request))
            .await
    }

    pub async fn prompt(
        &self,
        id: Uuid,
        request: &PromptRequest,
    ) -> Result<PromptAccepted, ClientError> {
        self.json(
            self.request(Method::POST, &format!("/api/sessions/{id}/prompt"))
                .json(request),
        )
        .await
    }

    /// Stops the running turn.
    pub async fn abort(&self, id: Uuid) -> Result<(), ClientError> {
        self.no_content(self.request(Method::POST, &format!("/api/sessions/{id}/abort")))
            .await
    }

    pub async fn pause(&self, id: Uuid) -> Result<(), ClientError> {
        self.no_content(self.request(Method::POST, &format!("/api/sessions/{id}/pause")))
            .await
    }

    pub async fn resume(&self, id: Uuid) -> Result<(), ClientError> {
        self.no_content(self.request(Method::POST, &format!("/api/sessions/{id}/resume")))
            .await
    }

    pub async fn delete(&self, id: Uuid) -> Result<(), ClientError> {
        self.no_content(self.request(Method::DELETE, &format!("/api/sessions/{id}")))
            .await
    }

    pub async fn diff(&self, id: Uuid) -> Result<SessionDiff, ClientError> {
        self.json(self.request(Method::GET, &format!("/api/sessions/{id}/diff")))
            .await
    }

    pub async fn push(&self, id: Uuid, request: &PushRequest) -> Result<PushResult, ClientError> {
        self.json(
            self.request(Method::POST, &format!("/api/sessions/{id}/push"))
                .json(request),
        )
        .await
    }

    /// Opens the session's pull request (or returns the open one) from its pushed branch.
    pub async fn open_pull_request(
        &self,
        id: Uuid,
        request: &PullRequestRequest,
    ) -> Result<PullRequest, ClientError> {
        self.json(
            self.request(Method::POST, &format!("/api/sessions/{id}/pull-request"))
                .json(request),
        )
        .await
    }

    /// The session's events after `after` (0: from the start), then live ones; resumes by
    /// itself across dropped connections.
    pub async fn events(&self, id: Uuid, after: i64) -> Result<EventStream, ClientError> {
        EventStream::open(self.clone(), id, after).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked_and_end_with_a_slash() {
        assert_eq!(
            parse_base("http://127.0.0.1:8787").unwrap().as_str(),
            "http://127.0.0.1:8787/"
        );
        assert_eq!(
            parse_base("https://den.example/prefix").unwrap().as_str(),
            "https://den.example/prefix/"
        );
        for bad in [
            "127.0.0.1:8787",
            "ftp://den.example",
            "http://user:pw@den.example",
            "http://den.example/?x=1",
            "",
        ] {
            assert!(
                matches!(parse_base(bad), Err(ClientError::BadUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        let client = Client::new("http://127.0.0.1:1", "den_secret_token").unwrap();
        assert!(!format!("{client:?}").contains("den_secret_token"));
    }
}
