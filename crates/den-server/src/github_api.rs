//! The few GitHub REST calls den makes: a session's pull request (`GET /repos/{o}/{r}`,
//! `GET|POST /repos/{o}/{r}/pulls`), a repository's branches (`GET /repos/{o}/{r}/branches`)
//! and a person's repositories (`GET /user/repos`), with reqwest and GitHub's documented payloads. The API
//! base comes from the config, so tests run against a local stand-in.

use chrono::{DateTime, Utc};
use den_protocol::changes::{PullRequest, PullRequestState};
use den_protocol::repositories::GithubRepository;
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;

/// A repository on GitHub and how to call the API about it.
pub(crate) struct GithubRepo<'a> {
    pub(crate) api_url: &'a str,
    pub(crate) owner: String,
    pub(crate) name: String,
    pub(crate) token: &'a str,
}

/// `owner/name` of `repository` when it lives on the GitHub whose API is `api_url`: on
/// github.com (API `api.github.com`) or on the API's own host (GitHub Enterprise).
pub(crate) fn github_repo_of(repository: &str, api_url: &str) -> Option<(String, String)> {
    let rest = repository
        .strip_prefix("https://")
        .or_else(|| repository.strip_prefix("http://"))?;
    let (host, path) = rest.split_once('/')?;
    let api_host = api_url
        .strip_prefix("https://")
        .or_else(|| api_url.strip_prefix("http://"))?
        .split('/')
        .next()?;
    let on_github = host.eq_ignore_ascii_case(api_host)
        || (host.eq_ignore_ascii_case("github.com")
            && api_host.eq_ignore_ascii_case("api.github.com"));
    if !on_github {
        return None;
    }
    let path = path.trim_end_matches('/').trim_end_matches(".git");
    let (owner, name) = path.split_once('/')?;
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    (valid(owner) && valid(name)).then(|| (owner.to_owned(), name.to_owned()))
}

#[derive(Deserialize)]
struct Pull {
    number: u64,
    html_url: String,
    state: String,
    #[serde(default)]
    draft: bool,
    merged_at: Option<String>,
}

impl Pull {
    fn into_protocol(self, created: bool) -> PullRequest {
        let state = match (self.merged_at.is_some(), self.state.as_str()) {
            (true, _) => PullRequestState::Merged,
            (false, "open") => PullRequestState::Open,
            _ => PullRequestState::Closed,
        };
        PullRequest {
            number: self.number,
            url: self.html_url,
            state,
            draft: self.draft,
            created,
        }
    }
}

#[derive(Deserialize)]
struct Repo {
    default_branch: String,
}

#[derive(Deserialize)]
struct GithubError {
    message: Option<String>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

impl GithubRepo<'_> {
    fn url(&self, rest: &str) -> String {
        format!(
            "{}/repos/{}/{}{rest}",
            self.api_url.trim_end_matches('/'),
            self.owner,
            self.name
        )
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiError> {
        send(request, self.token).await
    }

    /// The most relevant pull request whose head is `branch`: an open one, else the newest.
    pub(crate) async fn pull_for(&self, branch: &str) -> Result<Option<PullRequest>, ApiError> {
        let head = format!("{}:{branch}", self.owner);
        let url = format!("{}?head={}&state=all", self.url("/pulls"), encode(&head));
        let request = reqwest::Client::new().get(url);
        let pulls: Vec<Pull> = self
            .call(request)
            .await?
            .json()
            .await
            .map_err(ApiError::internal)?;
        let mut pulls: Vec<PullRequest> =
            pulls.into_iter().map(|p| p.into_protocol(false)).collect();
        pulls.sort_by_key(|p| (p.state == PullRequestState::Open, p.number));
        Ok(pulls.pop())
    }

    pub(crate) async fn default_branch(&self) -> Result<String, ApiError> {
        let repo: Repo = self
            .call(reqwest::Client::new().get(self.url("")))
            .await?
            .json()
            .await
            .map_err(ApiError::internal)?;
        Ok(repo.default_branch)
    }

    /// Every branch name (following `Link: rel="next"` for at most [`MAX_PAGES`] pages of 100,
    /// never to another host).
    pub(crate) async fn branches(&self) -> Result<Vec<String>, ApiError> {
        #[derive(Deserialize)]
        struct Branch {
            name: String,
        }
        let prefix = format!("{}/", self.api_url.trim_end_matches('/'));
        let mut url = format!("{}?per_page=100&page=1", self.url("/branches"));
        let mut names = Vec::new();
        for _ in 0..MAX_PAGES {
            let response = self.call(reqwest::Client::new().get(&url)).await?;
            let next = next_link(response.headers());
            let page: Vec<Branch> = response.json().await.map_err(|err| {
                ApiError::Unavailable(format!(
                    "GitHub answered a branch list den cannot read: {err}"
                ))
            })?;
            names.extend(page.into_iter().map(|b| b.name));
            match next {
                Some(next) if next.starts_with(&prefix) => url = next,
                _ => break,
            }
        }
        Ok(names)
    }

    pub(crate) async fn open_pull(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
        draft: bool,
    ) -> Result<PullRequest, ApiError> {
        let request = reqwest::Client::new()
            .post(self.url("/pulls"))
            .json(&json!({
                "title": title, "head": head, "base": base, "body": body, "draft": draft,
            }));
        let pull: Pull = self
            .call(request)
            .await?
            .json()
            .await
            .map_err(ApiError::internal)?;
        Ok(pull.into_protocol(true))
    }
}

/// Sends `request` to GitHub with `token`; a refusal becomes a 409 that says what GitHub said
/// (a 401 says to reconnect: the person revoked den's access or the token expired).
async fn send(
    request: reqwest::RequestBuilder,
    token: &str,
) -> Result<reqwest::Response, ApiError> {
    let response = request
        .bearer_auth(token)
        .header("accept", "application/vnd.github+json")
        .header("user-agent", "den")
        .header("x-github-api-version", "2022-11-28")
        .send()
        .await
        .map_err(|err| ApiError::Unavailable(format!("GitHub did not answer: {err}")))?;
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(ApiError::Conflict(RECONNECT.to_owned()));
    }
    let body: Option<GithubError> = response.json().await.ok();
    let detail = body
        .map(|b| {
            let extra: Vec<String> = b
                .errors
                .iter()
                .filter_map(|e| e.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .collect();
            let message = b.message.unwrap_or_default();
            if extra.is_empty() {
                message
            } else {
                format!("{message}: {}", extra.join("; "))
            }
        })
        .unwrap_or_default();
    Err(ApiError::Conflict(format!(
        "GitHub refused ({status}): {detail}"
    )))
}

/// What a person hears when GitHub no longer accepts their token.
pub(crate) const RECONNECT: &str =
    "GitHub no longer accepts den's access for you: reconnect GitHub (Settings → GitHub)";

/// GitHub's most pages den reads of one list: 10 pages of 100 repositories.
const MAX_PAGES: usize = 10;

#[derive(Deserialize)]
struct UserRepo {
    full_name: String,
    clone_url: String,
    html_url: String,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    default_branch: String,
    pushed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    permissions: Option<Permissions>,
}

#[derive(Deserialize)]
struct Permissions {
    #[serde(default)]
    push: bool,
}

/// The repositories the token's owner can reach (own, collaborator, organisation member), in
/// GitHub's order (most recently pushed first), following `Link: rel="next"` for at most
/// [`MAX_PAGES`] pages. A `next` link elsewhere than `api_url` is not followed: the token
/// goes nowhere else.
pub(crate) async fn user_repositories(
    api_url: &str,
    token: &str,
) -> Result<Vec<GithubRepository>, ApiError> {
    let base = api_url.trim_end_matches('/');
    let client = reqwest::Client::new();
    let mut url = format!(
        "{base}/user/repos?affiliation=owner,collaborator,organization_member&sort=pushed&per_page=100&page=1"
    );
    let mut repositories = Vec::new();
    for _ in 0..MAX_PAGES {
        let response = send(client.get(&url), token).await?;
        let next = next_link(response.headers());
        let page: Vec<UserRepo> = response.json().await.map_err(|err| {
            ApiError::Unavailable(format!(
                "GitHub answered a repository list den cannot read: {err}"
            ))
        })?;
        repositories.extend(page.into_iter().map(|repo| GithubRepository {
            full_name: repo.full_name,
            clone_url: repo.clone_url,
            html_url: repo.html_url,
            private: repo.private,
            archived: repo.archived,
            default_branch: repo.default_branch,
            pushed_at: repo.pushed_at,
            can_push: repo.permissions.is_some_and(|p| p.push),
        }));
        match next {
            Some(next) if next.starts_with(&format!("{base}/")) => url = next,
            _ => break,
        }
    }
    Ok(repositories)
}

/// The `rel="next"` URL of a `Link` header (`<url>; rel="next", <url>; rel="last"`). The URLs
/// themselves hold commas (`affiliation=owner,collaborator`), so entries are cut at `<`.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split('<').skip(1).find_map(|entry| {
        let (target, params) = entry.split_once('>')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().trim_end_matches(',').trim().replace(' ', "") == "rel=\"next\"");
        is_next.then(|| target.to_owned())
    })
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_repositories_are_recognised_by_their_host() {
        let api = "https://api.github.com";
        assert_eq!(
            github_repo_of("https://github.com/acme/widgets.git", api),
            Some(("acme".into(), "widgets".into()))
        );
        assert_eq!(
            github_repo_of(
                "https://ghe.example.com/a/b",
                "https://ghe.example.com/api/v3"
            ),
            Some(("a".into(), "b".into()))
        );
        assert_eq!(github_repo_of("https://gitlab.com/a/b.git", api), None);
        assert_eq!(github_repo_of("/srv/repos/a", api), None);
        assert_eq!(github_repo_of("https://github.com/a/b/c", api), None);
    }

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            "<https://api.github.com/user/repos?affiliation=owner,collaborator&page=3>; rel=\"next\", <https://api.github.com/user/repos?page=9>; rel=\"last\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://api.github.com/user/repos?affiliation=owner,collaborator&page=3")
        );
        headers.insert(
            reqwest::header::LINK,
            "<https://api.github.com/user/repos?page=1>; rel=\"prev\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_link(&headers), None);
    }
}
