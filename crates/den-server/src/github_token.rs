//! A person's GitHub token (from "Sign in with GitHub" or "Connect GitHub"), ready to use.
//!
//! An OAuth App's token does not expire. A GitHub App's user-to-server token lives 8 hours and
//! comes with a refresh token that works once: den refreshes on the server a few minutes before
//! expiry, one refresh at a time per person (a per-person lock, so two requests at once never
//! both spend the refresh token), and stores the new pair sealed. A refresh GitHub refuses
//! (GitHub answers with status 200 and an `error` field) marks the person as needing to
//! reconnect, and every use of the token then says "reconnect GitHub".

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

use den_store::Store;

use crate::AppState;
use crate::auth::github::GithubConfig;
use crate::error::ApiError;
use crate::github_api::RECONNECT;

/// The secret's purpose in the store.
pub(crate) const GITHUB_TOKEN_PURPOSE: &str = "github:token";

/// A token this close to its expiry is refreshed before use.
const REFRESH_MARGIN_MINUTES: i64 = 5;

/// What is sealed under [`GITHUB_TOKEN_PURPOSE`]. Tokens stored before refresh existed are the
/// bare access token, which [`StoredToken::parse`] still reads.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredToken {
    pub(crate) access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<String>,
    /// When the access token stops working (`None`: it does not expire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<DateTime<Utc>>,
    /// GitHub refused a refresh: the person must connect GitHub again.
    #[serde(default)]
    pub(crate) needs_reconnect: bool,
}

impl Drop for StoredToken {
    fn drop(&mut self) {
        self.access_token.zeroize();
        if let Some(refresh) = &mut self.refresh_token {
            refresh.zeroize();
        }
    }
}

impl StoredToken {
    /// The token GitHub handed out just now (`expires_in` seconds of life, when it expires).
    pub(crate) fn issued(
        access_token: String,
        refresh_token: Option<String>,
        expires_in: Option<std::time::Duration>,
    ) -> Self {
        Self {
            access_token,
            refresh_token,
            expires_at: expires_in
                .and_then(|d| Duration::from_std(d).ok())
                .map(|d| Utc::now() + d),
            needs_reconnect: false,
        }
    }

    fn parse(bytes: &[u8]) -> Self {
        serde_json::from_slice(bytes).unwrap_or_else(|_| Self {
            access_token: String::from_utf8_lossy(bytes).into_owned(),
            refresh_token: None,
            expires_at: None,
            needs_reconnect: false,
        })
    }

    pub(crate) fn sealable(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(serde_json::to_vec(self).unwrap_or_default())
    }

    fn due(&self) -> bool {
        self.expires_at
            .is_some_and(|at| at - Duration::minutes(REFRESH_MARGIN_MINUTES) <= Utc::now())
    }
}

/// One lock per person, so their refreshes run one at a time across everything in this process
/// that uses the token (the API, the git gateway, den's clone). Entries stay for the life of
/// the process (one small entry per person who used GitHub).
static REFRESH_LOCKS: std::sync::LazyLock<RefreshLocks> =
    std::sync::LazyLock::new(RefreshLocks::default);

#[derive(Default)]
struct RefreshLocks {
    locks: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

impl RefreshLocks {
    fn of(&self, user: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(user)
            .or_default()
            .clone()
    }
}

/// What den holds for the person, as stored (nothing refreshed).
pub(crate) async fn stored_token(
    state: &AppState,
    user: Uuid,
) -> Result<Option<StoredToken>, ApiError> {
    read(state.store(), user).await
}

async fn read(store: &Store, user: Uuid) -> Result<Option<StoredToken>, ApiError> {
    match store.secret(user, GITHUB_TOKEN_PURPOSE).await {
        Ok(bytes) => Ok(Some(StoredToken::parse(&bytes))),
        Err(den_store::StoreError::NotFound) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The person's GitHub access token, refreshed first when it is about to expire. `Ok(None)`:
/// they never connected GitHub (or this den has no GitHub). A link GitHub no longer honours is
/// a 409 saying to reconnect.
pub(crate) async fn github_token(
    state: &AppState,
    user: Uuid,
) -> Result<Option<Zeroizing<String>>, ApiError> {
    let Some(config) = state.config().github.as_ref() else {
        return Ok(None);
    };
    token_for(state.store(), config, state.http(), user).await
}

async fn token_for(
    store: &Store,
    config: &GithubConfig,
    http: &reqwest::Client,
    user: Uuid,
) -> Result<Option<Zeroizing<String>>, ApiError> {
    let Some(stored) = read(store, user).await? else {
        return Ok(None);
    };
    if stored.needs_reconnect {
        return Err(ApiError::Conflict(RECONNECT.to_owned()));
    }
    if !stored.due() {
        return Ok(Some(Zeroizing::new(stored.access_token.clone())));
    }
    drop(stored);
    // One refresh at a time for this person; whoever waited reads what the first one stored.
    let lock = REFRESH_LOCKS.of(user);
    let _guard = lock.lock().await;
    let Some(stored) = read(store, user).await? else {
        return Ok(None);
    };
    if stored.needs_reconnect {
        return Err(ApiError::Conflict(RECONNECT.to_owned()));
    }
    if !stored.due() {
        return Ok(Some(Zeroizing::new(stored.access_token.clone())));
    }
    let Some(refresh_token) = stored.refresh_token.as_deref() else {
        // An expiring token without a way to renew it: only a new sign-in helps.
        mark_needs_reconnect(store, user, &stored).await?;
        return Err(ApiError::Conflict(RECONNECT.to_owned()));
    };
    match refresh(http, config, refresh_token).await? {
        Some(fresh) => {
            store
                .put_secret(user, GITHUB_TOKEN_PURPOSE, &fresh.sealable())
                .await?;
            tracing::info!(user.id = %user, "refreshed the person's GitHub token");
            Ok(Some(Zeroizing::new(fresh.access_token.clone())))
        }
        None => {
            mark_needs_reconnect(store, user, &stored).await?;
            Err(ApiError::Conflict(RECONNECT.to_owned()))
        }
    }
}

/// The person's GitHub token as a git credential for GitHub's git host, for den's clone and
/// the git gateway when the person stored no credential for the host. Plugged into the session
/// layer by the binary.
#[derive(Clone)]
pub struct GithubCredentials {
    store: Store,
    config: GithubConfig,
    http: reqwest::Client,
}

impl GithubCredentials {
    pub fn new(store: Store, config: GithubConfig) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .unwrap_or_default();
        Self {
            store,
            config,
            http,
        }
    }

    /// GitHub's git host for this den: `github.com` for `api.github.com`, else the API's own
    /// host (GitHub Enterprise serves git and the API on one host).
    fn git_host(&self) -> Option<String> {
        let url = url::Url::parse(&self.config.api_url).ok()?;
        let host = url.host_str()?.to_ascii_lowercase();
        if host == "api.github.com" {
            return Some("github.com".to_owned());
        }
        Some(match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        })
    }

    /// `x-access-token` + the person's token when `host` is GitHub's; `Err` with what to tell
    /// the person when GitHub no longer accepts den's access.
    pub(crate) async fn for_host(
        &self,
        user: Uuid,
        host: &str,
    ) -> Result<Option<(String, Zeroizing<String>)>, String> {
        if self.git_host().as_deref() != Some(host) {
            return Ok(None);
        }
        match token_for(&self.store, &self.config, &self.http, user).await {
            Ok(token) => Ok(token.map(|t| ("x-access-token".to_owned(), t))),
            Err(ApiError::Conflict(message)) => Err(message),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the person's GitHub token");
                Err("den cannot use your GitHub access right now".to_owned())
            }
        }
    }
}

impl den_session::CredentialSource for GithubCredentials {
    fn credential<'a>(
        &'a self,
        owner: Uuid,
        host: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Option<den_session::HttpAuth>, String>> {
        Box::pin(async move {
            Ok(self
                .for_host(owner, host)
                .await?
                .map(|(username, token)| den_session::HttpAuth {
                    username,
                    password: token.to_string(),
                }))
        })
    }
}

async fn mark_needs_reconnect(
    store: &Store,
    user: Uuid,
    stored: &StoredToken,
) -> Result<(), ApiError> {
    tracing::warn!(user.id = %user, "GitHub refused to refresh the person's token: they must reconnect");
    let broken = StoredToken {
        access_token: stored.access_token.clone(),
        refresh_token: None,
        expires_at: stored.expires_at,
        needs_reconnect: true,
    };
    store
        .put_secret(user, GITHUB_TOKEN_PURPOSE, &broken.sealable())
        .await?;
    Ok(())
}

#[derive(Deserialize)]
struct RefreshAnswer {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
}

/// `POST <token_url>` with `grant_type=refresh_token`. `Ok(None)`: GitHub refused (its `error`
/// field, which it sends with status 200, or a refusing status); an unreachable GitHub is a 503
/// (the refresh token was not spent, so a later try may work).
async fn refresh(
    http: &reqwest::Client,
    config: &GithubConfig,
    refresh_token: &str,
) -> Result<Option<StoredToken>, ApiError> {
    let response = http
        .post(&config.token_url)
        .header("accept", "application/json")
        .header("user-agent", "den")
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", config.client_id.as_str()),
            ("client_secret", config.client_secret.as_str()),
        ])
        .send()
        .await
        .map_err(|err| ApiError::Unavailable(format!("GitHub did not answer: {err}")))?;
    if response.status().is_server_error() {
        return Err(ApiError::Unavailable(format!(
            "GitHub could not refresh the token now ({})",
            response.status()
        )));
    }
    let ok = response.status().is_success();
    let answer: Option<RefreshAnswer> = response.json().await.ok();
    match answer {
        Some(RefreshAnswer {
            access_token: Some(access_token),
            refresh_token,
            expires_in,
            error: None,
        }) if ok => Ok(Some(StoredToken::issued(
            access_token,
            refresh_token,
            expires_in.map(std::time::Duration::from_secs),
        ))),
        Some(RefreshAnswer {
            error: Some(error), ..
        }) => {
            tracing::warn!(%error, "GitHub refused a token refresh");
            Ok(None)
        }
        _ => Ok(None),
    }
}
