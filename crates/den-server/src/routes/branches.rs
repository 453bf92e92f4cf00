//! The branch picker: a repository's branches and its default branch, for the new-session
//! form. A GitHub repository is asked of GitHub's REST API (with the person's credential for the
//! host, else their GitHub token); any other URL, or a GitHub one without a token, and the
//! admin's local repositories are asked with host git's `ls-remote` (hardened, under the egress
//! rules; nothing is cloned, so nothing of the repository runs).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use den_protocol::error::ErrorBody;
use den_protocol::repositories::BranchList;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::github_api::{GithubRepo, github_repo_of};
use crate::github_token::github_token;
use crate::validate;

/// The most branches answered (a picker, not an export).
const MAX_BRANCHES: usize = 1000;
const LIST_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(branches))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct BranchQuery {
    /// The repository, as a session takes it: an http(s) git URL or a local path the admin
    /// allowed.
    repository: String,
}

/// The repository's branches, its default branch first.
#[utoipa::path(get, path = "/api/repositories/branches", operation_id = "list_branches", tag = "git", params(BranchQuery),
    responses((status = 200, body = BranchList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn branches(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<BranchQuery>,
) -> Result<Json<BranchList>, ApiError> {
    let config = state.config();
    let repository = validate::repository(
        &query.repository,
        &config.local_repo_roots,
        &config.repository_egress,
    )
    .map_err(ApiError::BadRequest)?;
    let listed = list_branches(&state, caller.user.id, &repository, Via::Api, |err| {
        ApiError::Conflict(format!("den could not list the branches: {err}"))
    })
    .await?;
    Ok(Json(listed))
}

/// How a GitHub repository's branches are asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    /// GitHub's REST API when the person has a token (the picker: names, paged).
    Api,
    /// Host git's `ls-remote` with the person's token, as den's clone will reach it.
    Git,
}

/// The branches of `repository` (validated already), as the picker shows them. Asking is also
/// how den knows a repository can be reached with the person's credentials (a session is
/// created only then); `unreachable` words a remote's refusal for the caller.
pub(super) async fn list_branches(
    state: &AppState,
    user_id: uuid::Uuid,
    repository: &str,
    via: Via,
    unreachable: impl FnOnce(den_session::GitError) -> ApiError,
) -> Result<BranchList, ApiError> {
    let config = state.config();
    let repository = repository.to_owned();
    let host = http_host(&repository);
    let credential = match &host {
        Some(host) => state.store().git_credential(user_id, host).await?,
        None => None,
    };
    let on_github = config
        .github
        .as_ref()
        .and_then(|github| github_repo_of(&repository, &github.api_url).map(|r| (github, r)));
    if let Some((github, (owner, name))) = on_github {
        let token = match &credential {
            Some(credential) => Some(credential.token.clone()),
            None => github_token(state, user_id).await?,
        };
        if via == Via::Git {
            let username = credential
                .as_ref()
                .map_or_else(|| "x-access-token".to_owned(), |c| c.username.clone());
            let auth = token.map(|token| den_session::HttpAuth {
                username,
                password: token.to_string(),
            });
            return ls_remote(&repository, auth.as_ref(), config, unreachable).await;
        }
        if let Some(token) = token {
            let repo = GithubRepo {
                api_url: &github.api_url,
                owner,
                name,
                token: &token,
            };
            let default_branch = repo.default_branch().await?;
            let names = repo.branches().await?;
            return Ok(ordered(Some(default_branch), names));
        }
    }
    let auth = credential.map(|c| den_session::HttpAuth {
        username: c.username,
        password: c.token.to_string(),
    });
    ls_remote(&repository, auth.as_ref(), config, unreachable).await
}

async fn ls_remote(
    repository: &str,
    auth: Option<&den_session::HttpAuth>,
    config: &crate::ServerConfig,
    unreachable: impl FnOnce(den_session::GitError) -> ApiError,
) -> Result<BranchList, ApiError> {
    let listed =
        den_session::remote_branches(repository, auth, &config.repository_egress, LIST_TIMEOUT)
            .await
            .map_err(|err| match err {
                den_session::GitError::Refused { .. }
                | den_session::GitError::NotARemote { .. } => ApiError::BadRequest(err.to_string()),
                den_session::GitError::Spawn(_) => ApiError::internal(err),
                other => unreachable(other),
            })?;
    Ok(ordered(listed.default_branch, listed.branches))
}

/// The default branch first, then the others by name, at most [`MAX_BRANCHES`].
fn ordered(default_branch: Option<String>, mut names: Vec<String>) -> BranchList {
    names.sort();
    names.dedup();
    if let Some(default) = &default_branch {
        names.retain(|n| n != default);
        names.insert(0, default.clone());
    }
    names.truncate(MAX_BRANCHES);
    BranchList {
        default_branch,
        branches: names,
    }
}

/// `host[:port]` of an http(s) URL, lowercase (how credentials are keyed).
fn http_host(repository: &str) -> Option<String> {
    let url = url::Url::parse(repository).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}
