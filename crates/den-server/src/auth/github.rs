//! "Sign in with GitHub": OAuth 2 authorization code flow with state and PKCE.
//!
//! The state is stored server-side with its PKCE verifier and also set in a short-lived cookie,
//! so a callback is accepted only in the browser that started the flow. GitHub's URLs come from
//! the config, so tests run the whole flow against a local server that speaks GitHub's wire format.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde::Deserialize;

use crate::error::ApiError;
use crate::github_token::StoredToken;

/// GitHub sign-in settings. `Debug` hides the client secret.
#[derive(Clone)]
pub struct GithubConfig {
    pub client_id: String,
    pub client_secret: String,
    /// `https://github.com/login/oauth/authorize` in production.
    pub authorize_url: String,
    /// `https://github.com/login/oauth/access_token` in production.
    pub token_url: String,
    /// `https://api.github.com` in production.
    pub api_url: String,
    /// Scopes to ask for: reading the user and their repositories.
    pub scopes: Vec<String>,
    /// GitHub logins allowed to create a den account on first sign-in; `*` allows anyone.
    /// Users already linked can always sign in.
    pub allowed_logins: Vec<String>,
}

impl std::fmt::Debug for GithubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubConfig")
            .field("client_id", &self.client_id)
            .field("authorize_url", &self.authorize_url)
            .field("token_url", &self.token_url)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl GithubConfig {
    /// True when `login` may create an account.
    pub(crate) fn may_sign_up(&self, login: &str) -> bool {
        self.allowed_logins
            .iter()
            .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(login))
    }
}

/// Where to send the browser, and what to remember until it comes back.
pub(crate) struct Authorization {
    pub(crate) url: String,
    pub(crate) state: String,
    pub(crate) pkce_verifier: String,
}

/// The GitHub user behind an access token.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct GithubUser {
    pub(crate) id: i64,
    pub(crate) login: String,
}

fn oauth_error(what: &str, err: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("GitHub sign-in failed ({what}): {err}"))
}

/// Starts the flow.
pub(crate) fn authorize(
    config: &GithubConfig,
    redirect_url: &str,
) -> Result<Authorization, ApiError> {
    let client = BasicClient::new(ClientId::new(config.client_id.clone()))
        .set_auth_uri(
            AuthUrl::new(config.authorize_url.clone())
                .map_err(|e| oauth_error("authorize url", e))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(redirect_url.to_owned())
                .map_err(|e| oauth_error("redirect url", e))?,
        );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(config.scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge)
        .url();
    Ok(Authorization {
        url: url.to_string(),
        state: state.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
    })
}

/// Exchanges the code for an access token and asks GitHub who it belongs to.
pub(crate) async fn finish(
    config: GithubConfig,
    http: reqwest::Client,
    redirect_url: &str,
    code: String,
    pkce_verifier: String,
) -> Result<(GithubUser, StoredToken), ApiError> {
    let client = BasicClient::new(ClientId::new(config.client_id.clone()))
        .set_client_secret(ClientSecret::new(config.client_secret.clone()))
        .set_auth_uri(
            AuthUrl::new(config.authorize_url.clone())
                .map_err(|e| oauth_error("authorize url", e))?,
        )
        .set_token_uri(
            TokenUrl::new(config.token_url.clone()).map_err(|e| oauth_error("token url", e))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(redirect_url.to_owned())
                .map_err(|e| oauth_error("redirect url", e))?,
        );
    // An owning closure: oauth2's future must be Send for any lifetime, which a borrow is not.
    let send = {
        let http = http.clone();
        move |request: oauth2::HttpRequest| {
            let http = http.clone();
            async move { send(&http, request).await }
        }
    };
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
        .request_async(&send)
        .await
        .map_err(|e| oauth_error("token exchange", e))?;
    let access_token = token.access_token().secret().clone();
    // A GitHub App's user token expires (8 hours) and comes with a refresh token.
    let stored = StoredToken::issued(
        access_token.clone(),
        token.refresh_token().map(|r| r.secret().clone()),
        token.expires_in(),
    );
    let user = http
        .get(format!("{}/user", config.api_url.trim_end_matches('/')))
        .bearer_auth(&access_token)
        .header("accept", "application/vnd.github+json")
        .header("user-agent", "den")
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| oauth_error("user lookup", e))?
        .json::<GithubUser>()
        .await
        .map_err(|e| oauth_error("user lookup", e))?;
    Ok((user, stored))
}

/// oauth2's HTTP client, over den's reqwest client (which never follows redirects).
async fn send(
    http: &reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await?.to_vec();
    let mut out = oauth2::HttpResponse::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}
