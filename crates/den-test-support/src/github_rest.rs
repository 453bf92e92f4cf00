//! The GitHub REST endpoints den calls, served beside [`GitServer`](crate::GitServer)'s git on
//! the same host (as GitHub Enterprise serves both): `GET /repos/{o}/{r}` and
//! `GET|POST /repos/{o}/{r}/pulls`, `GET /repos/{o}/{r}/branches` (the repository's real
//! branches, paged like `/user/repos`) and `GET /user/repos` (paged with `per_page`, `page` and an
//! absolute `Link: <…>; rel="next"` header, as GitHub does), with GitHub's payload shapes (the fields octocrab requires
//! included), `Authorization: Bearer <token>` (or `token <token>`), and GitHub's errors:
//! `401 Bad credentials`, `404 Not Found`, `422 Validation Failed` for a pull request that
//! already exists or whose head branch does not. And GitHub's token refresh for a GitHub App's
//! user tokens (`POST /login/oauth/access_token`, `grant_type=refresh_token`): each refresh
//! token works once, a refresh answers the stand-in's token with a new refresh token, and a
//! refusal comes, as GitHub sends it, with status 200 and an `error` field.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::git_server::{Shared, lock};

/// A pull request the stand-in holds.
#[derive(Clone, Debug)]
pub struct RecordedPull {
    pub number: u64,
    pub repository: String,
    pub title: String,
    pub body: Option<String>,
    pub head: String,
    pub base: String,
    pub draft: bool,
    /// `open` or `closed`.
    pub state: String,
    pub merged: bool,
}

/// A repository `GET /user/repos` lists.
#[derive(Clone, Debug)]
pub struct UserRepository {
    /// `owner/name`.
    pub full_name: String,
    pub private: bool,
    pub archived: bool,
    /// RFC 3339, e.g. `2026-01-02T03:04:05Z`.
    pub pushed_at: String,
    /// Whether the token's owner may push.
    pub push: bool,
}

impl UserRepository {
    /// A private, pushable, unarchived repository last pushed at `pushed_at`.
    pub fn new(full_name: &str, pushed_at: &str) -> Self {
        Self {
            full_name: full_name.to_owned(),
            private: true,
            archived: false,
            pushed_at: pushed_at.to_owned(),
            push: true,
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"message": message, "documentation_url": "https://docs.github.com/rest"})),
    )
        .into_response()
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .is_some_and(|token| token == shared.token)
}

fn user(base: &str, login: &str) -> Value {
    json!({
        "login": login, "id": 1, "node_id": "MDQ6VXNlcjE=", "avatar_url": "", "gravatar_id": "",
        "url": format!("{base}/users/{login}"), "html_url": format!("{base}/{login}"),
        "followers_url": "", "following_url": "", "gists_url": "", "starred_url": "",
        "subscriptions_url": "", "organizations_url": "", "repos_url": "", "events_url": "",
        "received_events_url": "", "type": "User", "site_admin": false
    })
}

fn pull_json(base: &str, pull: &RecordedPull) -> Value {
    let (owner, _) = pull.repository.split_once('/').unwrap_or_default();
    json!({
        "id": pull.number, "number": pull.number, "node_id": "PR_1",
        "url": format!("{base}/api/v3/repos/{}/pulls/{}", pull.repository, pull.number),
        "html_url": format!("{base}/{}/pull/{}", pull.repository, pull.number),
        "state": pull.state, "locked": false, "title": pull.title, "body": pull.body,
        "draft": pull.draft, "merged": pull.merged,
        "merged_at": if pull.merged { json!("2026-01-01T00:00:00Z") } else { Value::Null },
        "user": user(base, owner),
        "head": {"ref": pull.head, "sha": "0".repeat(40), "label": format!("{owner}:{}", pull.head)},
        "base": {"ref": pull.base, "sha": "0".repeat(40), "label": format!("{owner}:{}", pull.base)},
    })
}

pub(crate) async fn repository(
    State(shared): State<Arc<Shared>>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&shared, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let full = format!("{owner}/{name}");
    if !shared.root.join(format!("{full}.git")).exists() {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    let base = lock(&shared.base_url).clone();
    Json(json!({
        "id": 1, "node_id": "R_1", "name": name, "full_name": full, "private": true,
        "owner": user(&base, &owner), "html_url": format!("{base}/{full}"),
        "url": format!("{base}/api/v3/repos/{full}"), "clone_url": format!("{base}/{full}.git"),
        "default_branch": "main", "archived": false,
        "permissions": {"admin": true, "push": true, "pull": true},
        "pushed_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
    }))
    .into_response()
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    head: Option<String>,
    state: Option<String>,
}

pub(crate) async fn list_pulls(
    State(shared): State<Arc<Shared>>,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&shared, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let full = format!("{owner}/{name}");
    let base = lock(&shared.base_url).clone();
    let state = query.state.unwrap_or_else(|| "open".to_owned());
    let pulls: Vec<Value> = lock(&shared.pulls)
        .iter()
        .filter(|p| p.repository == full)
        .filter(|p| state == "all" || p.state == state)
        .filter(|p| {
            query
                .head
                .as_deref()
                .is_none_or(|head| head == format!("{owner}:{}", p.head))
        })
        .map(|p| pull_json(&base, p))
        .collect();
    Json(pulls).into_response()
}

#[derive(Deserialize)]
pub(crate) struct CreatePull {
    title: String,
    head: String,
    base: String,
    body: Option<String>,
    #[serde(default)]
    draft: bool,
}

pub(crate) async fn create_pull(
    State(shared): State<Arc<Shared>>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    Json(request): Json<CreatePull>,
) -> Response {
    if !authorized(&shared, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let full = format!("{owner}/{name}");
    let repo = shared.root.join(format!("{full}.git"));
    if !repo.exists() {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    let packed = std::fs::read_to_string(repo.join("packed-refs")).unwrap_or_default();
    let has_ref = |branch: &str| {
        repo.join("refs/heads").join(branch).exists()
            || packed
                .lines()
                .any(|l| l.ends_with(&format!(" refs/heads/{branch}")))
    };
    if !has_ref(&request.head) || !has_ref(&request.base) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
    }
    let mut pulls = lock(&shared.pulls);
    if pulls
        .iter()
        .any(|p| p.repository == full && p.head == request.head && p.state == "open")
    {
        let message = format!(
            "A pull request already exists for {owner}:{}.",
            request.head
        );
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "custom", "message": message}]})),
        )
            .into_response();
    }
    let pull = RecordedPull {
        number: pulls.len() as u64 + 1,
        repository: full,
        title: request.title,
        body: request.body,
        head: request.head,
        base: request.base,
        draft: request.draft,
        state: "open".to_owned(),
        merged: false,
    };
    pulls.push(pull.clone());
    let base = lock(&shared.base_url).clone();
    (StatusCode::CREATED, Json(pull_json(&base, &pull))).into_response()
}

#[derive(Deserialize)]
pub(crate) struct UserReposQuery {
    page: Option<usize>,
    per_page: Option<usize>,
    affiliation: Option<String>,
    sort: Option<String>,
}

pub(crate) async fn user_repositories(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<UserReposQuery>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&shared, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let page = query.page.unwrap_or(1).max(1);
    let per_page = query.per_page.unwrap_or(30).clamp(1, 100);
    let base = lock(&shared.base_url).clone();
    let all = lock(&shared.user_repositories).clone();
    let items: Vec<Value> = all
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|repo| {
            let (owner, name) = repo.full_name.split_once('/').unwrap_or_default();
            json!({
                "id": 1, "node_id": "R_1", "name": name, "full_name": repo.full_name,
                "private": repo.private, "owner": user(&base, owner),
                "html_url": format!("{base}/{}", repo.full_name),
                "url": format!("{base}/api/v3/repos/{}", repo.full_name),
                "clone_url": format!("{base}/{}.git", repo.full_name),
                "default_branch": "main", "archived": repo.archived, "fork": false,
                "permissions": {"admin": repo.push, "maintain": repo.push, "push": repo.push,
                    "triage": true, "pull": true},
                "pushed_at": repo.pushed_at, "updated_at": repo.pushed_at,
                "created_at": "2025-01-01T00:00:00Z",
            })
        })
        .collect();
    let mut response = Json(items).into_response();
    if page * per_page < all.len() {
        let mut next = format!(
            "{base}/api/v3/user/repos?per_page={per_page}&page={}",
            page + 1
        );
        if let Some(affiliation) = &query.affiliation {
            next.push_str(&format!("&affiliation={affiliation}"));
        }
        if let Some(sort) = &query.sort {
            next.push_str(&format!("&sort={sort}"));
        }
        if let Ok(value) = format!("<{next}>; rel=\"next\"").parse() {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

#[derive(Deserialize)]
pub(crate) struct RefreshForm {
    grant_type: String,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

pub(crate) async fn refresh_token(
    State(shared): State<Arc<Shared>>,
    axum::Form(form): axum::Form<RefreshForm>,
) -> Response {
    *lock(&shared.refresh_calls) += 1;
    let refused = |error: &str, description: &str| {
        // GitHub's habit: a refused token request is still a 200.
        Json(json!({"error": error, "error_description": description,
            "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"}))
        .into_response()
    };
    if form.grant_type != "refresh_token" {
        return refused("unsupported_grant_type", "The grant type is not supported.");
    }
    if form.client_id.is_none() || form.client_secret.is_none() {
        return refused(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    let presented = form.refresh_token.unwrap_or_default();
    let mut tokens = lock(&shared.refresh_tokens);
    let Some(index) = tokens.iter().position(|t| *t == presented) else {
        return refused(
            "bad_refresh_token",
            "The refresh token passed is incorrect or expired.",
        );
    };
    let calls = *lock(&shared.refresh_calls);
    tokens.remove(index);
    let next = format!("ghr_standin_refresh_{calls}");
    tokens.push(next.clone());
    Json(json!({
        "access_token": shared.token, "expires_in": 28800, "refresh_token": next,
        "refresh_token_expires_in": 15811200, "scope": "", "token_type": "bearer",
    }))
    .into_response()
}

#[derive(Deserialize)]
pub(crate) struct PageQuery {
    page: Option<usize>,
    per_page: Option<usize>,
}

/// The branch names of the bare repository at `repo` (loose and packed refs).
fn branch_names(repo: &std::path::Path) -> Vec<String> {
    fn walk(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.path().is_dir() {
                walk(&entry.path(), &format!("{name}/"), out);
            } else {
                out.push(name);
            }
        }
    }
    let mut names = Vec::new();
    walk(&repo.join("refs/heads"), "", &mut names);
    let packed = std::fs::read_to_string(repo.join("packed-refs")).unwrap_or_default();
    names.extend(
        packed
            .lines()
            .filter_map(|l| l.split_once(" refs/heads/").map(|(_, b)| b.to_owned())),
    );
    names.sort();
    names.dedup();
    names
}

pub(crate) async fn branches(
    State(shared): State<Arc<Shared>>,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&shared, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let full = format!("{owner}/{name}");
    let repo = shared.root.join(format!("{full}.git"));
    if !repo.exists() {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    let all = branch_names(&repo);
    let page = query.page.unwrap_or(1).max(1);
    let per_page = query.per_page.unwrap_or(30).clamp(1, 100);
    let items: Vec<Value> = all
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|branch| json!({"name": branch, "commit": {"sha": "0".repeat(40), "url": ""}, "protected": false}))
        .collect();
    let mut response = Json(items).into_response();
    if page * per_page < all.len() {
        let base = lock(&shared.base_url).clone();
        let next = format!(
            "{base}/api/v3/repos/{full}/branches?per_page={per_page}&page={}",
            page + 1
        );
        if let Ok(value) = format!("<{next}>; rel=\"next\"").parse() {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}
