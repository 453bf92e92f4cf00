//! The repositories a person can start a session on: their GitHub repositories, asked of
//! GitHub with their sign-in token on each call (nothing is cached yet), and the git
//! repositories directly inside the admin's local roots.

use std::path::PathBuf;

use axum::Json;
use axum::extract::State;
use den_protocol::error::ErrorBody;
use den_protocol::repositories::{LocalRepository, RepositoryList};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::github_api::user_repositories;
use crate::github_token::github_token;

/// GitHub repositories per page of den's answer.
const PAGE_SIZE: usize = 30;
const MAX_QUERY: usize = 200;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Keeps repositories whose full name (`owner/name`, or a local directory's name)
    /// contains this, ignoring case; at most 200 characters.
    query: Option<String>,
    /// The page, from 1 (default 1).
    page: Option<u32>,
}

/// The caller's GitHub repositories (own, collaborator and organisation ones), most recently
/// pushed first, 30 a page, and on page 1 the local repositories the admin allowed.
#[utoipa::path(get, path = "/api/repositories", operation_id = "list_repositories", tag = "git", params(ListQuery),
    responses((status = 200, body = RepositoryList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("cookie" = []), ("bearer" = [])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<RepositoryList>, ApiError> {
    let page = query.page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::bad_request("page starts at 1"));
    }
    let needle = query.query.unwrap_or_default().trim().to_lowercase();
    if needle.chars().count() > MAX_QUERY {
        return Err(ApiError::bad_request(format!(
            "query must be at most {MAX_QUERY} characters"
        )));
    }
    let matches = |name: &str| name.to_lowercase().contains(&needle);

    // Refreshed first when it is about to expire; a link GitHub no longer honours is a 409.
    let token = match state.config().github.as_ref() {
        None => None,
        Some(github) => github_token(&state, caller.user.id)
            .await?
            .map(|token| (github.api_url.clone(), token)),
    };
    let github_connected = token.is_some();
    let mut github = match &token {
        Some((api_url, token)) => user_repositories(api_url, token).await?,
        None => Vec::new(),
    };
    github.retain(|repo| matches(&repo.full_name));
    // GitHub sorts by push already; sorting again keeps the order true across its pages.
    github.sort_by_key(|repo| std::cmp::Reverse(repo.pushed_at));
    let start = (page as usize - 1).saturating_mul(PAGE_SIZE);
    let next_page = (github.len() > start.saturating_add(PAGE_SIZE)).then_some(page + 1);
    let github = github.into_iter().skip(start).take(PAGE_SIZE).collect();

    let local = if page == 1 {
        let roots = state.config().local_repo_roots.clone();
        let mut local = tokio::task::spawn_blocking(move || local_repositories(&roots))
            .await
            .map_err(ApiError::internal)?;
        local.retain(|repo| matches(&repo.name));
        local
    } else {
        Vec::new()
    };
    let local_roots = state
        .config()
        .local_repo_roots
        .iter()
        .map(|root| root.display().to_string())
        .collect();
    Ok(Json(RepositoryList {
        github_connected,
        github,
        local,
        next_page,
        local_roots,
    }))
}

/// The git repositories (a work tree with `.git`, or a bare one with `HEAD`) directly inside
/// each root, by path. A root that cannot be read lists nothing: the admin's setting is
/// checked when den starts, and a person cannot fix it.
fn local_repositories(roots: &[PathBuf]) -> Vec<LocalRepository> {
    let mut found = Vec::new();
    for root in roots {
        let Ok(root) = root.canonicalize() else {
            continue;
        };
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let is_repository = path.is_dir()
                && (path.join(".git").exists()
                    || (path.join("HEAD").is_file() && path.join("objects").is_dir()));
            // Canonical, and still inside the root: a symlink out of it is not offered.
            let Ok(canonical) = path.canonicalize() else {
                continue;
            };
            if is_repository && canonical.starts_with(&root) {
                found.push(LocalRepository {
                    name: entry.file_name().to_string_lossy().into_owned(),
                    path: canonical.display().to_string(),
                });
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found.dedup_by(|a, b| a.path == b.path);
    found
}
