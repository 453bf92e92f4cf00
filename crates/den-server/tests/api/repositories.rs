//! `GET /api/repositories`: the person's GitHub repositories from the GitHub REST stand-in
//! (GitHub's `/user/repos` shape and `Link` paging), and the admin's local roots.

use den_test_support::{GitServer, UserRepository};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{Auth, TestServer, TestUser, assert_error};

const GITHUB_TOKEN: &str = "gho_repositories_standin_token";

struct Setup {
    server: TestServer,
    github: GitServer,
    user: TestUser,
    _roots: tempfile::TempDir,
}

/// A den whose GitHub is the stand-in and whose local root holds `alpha` (a work tree),
/// `beta.git` (bare) and `notes` (not a repository); its user signed in with GitHub, whose
/// token is `token`.
async fn setup(token: Option<&str>) -> Setup {
    let github = GitServer::start(GITHUB_TOKEN).await.unwrap();
    let roots = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(roots.path().join("alpha/.git")).unwrap();
    std::fs::create_dir_all(roots.path().join("beta.git/objects")).unwrap();
    std::fs::write(roots.path().join("beta.git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::create_dir_all(roots.path().join("notes")).unwrap();
    let api_url = github.api_url();
    let root = roots.path().to_path_buf();
    let server = TestServer::start_with(move |config| {
        config.local_repo_roots = vec![root];
        config.github = Some(den_server::GithubConfig {
            client_id: "client-id".to_owned(),
            client_secret: "client-secret".to_owned(),
            authorize_url: format!("{api_url}/login/oauth/authorize"),
            token_url: format!("{api_url}/login/oauth/access_token"),
            api_url,
            scopes: vec!["repo".to_owned()],
            allowed_logins: Vec::new(),
        });
    })
    .await;
    let user = server.user("ada").await;
    if let Some(token) = token {
        let id = server.store.user_by_name("ada").await.unwrap().id;
        server
            .store
            .put_secret(id, "github:token", token.as_bytes())
            .await
            .unwrap();
    }
    Setup {
        server,
        github,
        user,
        _roots: roots,
    }
}

/// 130 repositories (two GitHub pages of 100), `acme/repo-129` pushed last.
fn add_many(github: &GitServer) {
    for i in (0..130).rev() {
        github.add_user_repository(UserRepository::new(
            &format!("acme/repo-{i:03}"),
            &format!("2026-01-01T00:{:02}:{:02}Z", i / 60, i % 60),
        ));
    }
}

async fn list(setup: &Setup, query: &str) -> (StatusCode, Value) {
    setup
        .server
        .call(
            Method::GET,
            &format!("/api/repositories{query}"),
            Auth::Cookie(&setup.user),
            None,
        )
        .await
}

fn names(body: &Value) -> Vec<String> {
    body["github"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["fullName"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn both_github_pages_are_merged_newest_push_first_and_paged() {
    let setup = setup(Some(GITHUB_TOKEN)).await;
    add_many(&setup.github);
    let mut all = Vec::new();
    let mut page = Some(1);
    while let Some(number) = page {
        let (status, body) = list(&setup, &format!("?page={number}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["githubConnected"], true);
        assert!(names(&body).len() <= 30);
        if number > 1 {
            assert_eq!(body["local"], serde_json::json!([]), "local only on page 1");
        }
        all.extend(names(&body));
        page = body["nextPage"].as_u64();
    }
    let expected: Vec<String> = (0..130)
        .rev()
        .map(|i| format!("acme/repo-{i:03}"))
        .collect();
    assert_eq!(
        all, expected,
        "every repository of both pages, newest push first"
    );

    let (_, first) = list(&setup, "").await;
    let repo = &first["github"][0];
    assert_eq!(repo["fullName"], "acme/repo-129");
    assert_eq!(repo["cloneUrl"], setup.github.url("acme/repo-129"));
    assert_eq!(repo["private"], true);
    assert_eq!(repo["canPush"], true);
    assert_eq!(repo["defaultBranch"], "main");
    assert_eq!(first["nextPage"], 2);
    // No answer carries the token.
    assert!(!first.to_string().contains(GITHUB_TOKEN));
}

#[tokio::test]
async fn the_query_filters_by_full_name_ignoring_case() {
    let setup = setup(Some(GITHUB_TOKEN)).await;
    add_many(&setup.github);
    setup
        .github
        .add_user_repository(UserRepository::new("Other/Widgets", "2025-06-01T00:00:00Z"));
    let (status, body) = list(&setup, "?query=wIdGeT").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(names(&body), ["Other/Widgets"]);
    assert_eq!(body["nextPage"], Value::Null);
    assert_eq!(body["local"], serde_json::json!([]));

    let (_, body) = list(&setup, "?query=repo-12").await;
    assert_eq!(
        names(&body),
        (120..130)
            .rev()
            .map(|i| format!("acme/repo-{i:03}"))
            .collect::<Vec<_>>()
    );
    let (_, body) = list(&setup, "?query=ALPHA").await;
    assert_eq!(body["local"].as_array().unwrap().len(), 1);
    assert_eq!(body["local"][0]["name"], "alpha");
}

#[tokio::test]
async fn local_roots_list_their_git_repositories() {
    let setup = setup(Some(GITHUB_TOKEN)).await;
    let (status, body) = list(&setup, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let local: Vec<&str> = body["local"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(local, ["alpha", "beta.git"], "notes is not a repository");
    // The path is one a session may be created on.
    let path = body["local"][0]["path"].as_str().unwrap().to_owned();
    let (status, created) = setup
        .server
        .call(
            Method::POST,
            "/api/sessions",
            Auth::Cookie(&setup.user),
            Some(serde_json::json!({"repository": path})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}

#[tokio::test]
async fn a_person_without_github_gets_local_roots_only() {
    let setup = setup(None).await;
    add_many(&setup.github);
    let (status, body) = list(&setup, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["githubConnected"], false);
    assert_eq!(body["github"], serde_json::json!([]));
    assert_eq!(body["local"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_token_github_refuses_asks_to_reconnect() {
    let setup = setup(Some("gho_revoked_token")).await;
    add_many(&setup.github);
    let (status, body) = list(&setup, "").await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("reconnect GitHub"), "{message}");
    assert!(!body.to_string().contains("gho_revoked_token"));
}

#[tokio::test]
async fn bad_paging_and_oversize_queries_are_refused() {
    let setup = setup(Some(GITHUB_TOKEN)).await;
    add_many(&setup.github);
    let long = "a".repeat(201);
    for query in [
        "?page=0".to_owned(),
        "?page=abc".to_owned(),
        "?page=-1".to_owned(),
        format!("?query={long}"),
        "?limit=5".to_owned(),
    ] {
        let (status, body) = list(&setup, &query).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    }
    // Refusing changed nothing: the list still answers in full.
    let (status, body) = list(&setup, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(names(&body).len(), 30);
}
