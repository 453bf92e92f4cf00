//! `GET /api/repositories/branches`: the branch picker's list, the default branch first. A
//! GitHub repository is asked of the GitHub REST stand-in (its real branches, paged with
//! `Link`), a local repository of host git; bad repositories are refused clearly.

use den_test_support::GitServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, TestServer, TestUser, assert_error};

const TOKEN: &str = "ghp_branches_standin_token";

struct Setup {
    server: TestServer,
    github: GitServer,
    user: TestUser,
    roots: tempfile::TempDir,
}

async fn setup() -> Setup {
    let github = GitServer::start(TOKEN).await.unwrap();
    let roots = tempfile::tempdir().unwrap();
    let api_url = github.api_url();
    let root = roots.path().to_path_buf();
    let host = github.base_url().trim_start_matches("http://").to_owned();
    let server = TestServer::start_with(move |config| {
        config.local_repo_roots = vec![root];
        config.repository_egress = den_session::EgressPolicy {
            allowed_hosts: vec![host.parse().unwrap()],
            ..Default::default()
        };
        config.github = Some(den_server::GithubConfig {
            client_id: "client-id".to_owned(),
            client_secret: "client-secret".to_owned(),
            authorize_url: format!("{api_url}/login/oauth/authorize"),
            token_url: format!("{api_url}/login/oauth/access_token"),
            api_url,
            scopes: Vec::new(),
            allowed_logins: Vec::new(),
        });
    })
    .await;
    let user = server.user("ada").await;
    Setup {
        server,
        github,
        user,
        roots,
    }
}

async fn branches(setup: &Setup, repository: &str) -> (StatusCode, Value) {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("repository", repository)
        .finish();
    setup
        .server
        .call(
            Method::GET,
            &format!("/api/repositories/branches?{query}"),
            Auth::Cookie(&setup.user),
            None,
        )
        .await
}

#[tokio::test]
async fn a_github_repository_lists_every_branch_from_github_with_the_default_first() {
    let setup = setup().await;
    setup
        .github
        .create_repo("acme/widgets", &[("README.md", "# widgets\n")])
        .await
        .unwrap();
    let main = setup
        .github
        .commit_of("acme/widgets", "refs/heads/main")
        .await
        .unwrap();
    // 120 more branches: more than one GitHub page of 100.
    let heads = setup.github.path("acme/widgets").join("refs/heads");
    for i in 0..120 {
        std::fs::write(heads.join(format!("feature-{i:03}")), format!("{main}\n")).unwrap();
    }
    let host = setup
        .github
        .base_url()
        .trim_start_matches("http://")
        .to_owned();
    let (status, _) = setup
        .server
        .call(
            Method::PUT,
            &format!("/api/git-credentials/{host}"),
            Auth::Cookie(&setup.user),
            Some(json!({"username": "x-access-token", "token": TOKEN})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, body) = branches(&setup, &setup.github.url("acme/widgets")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["defaultBranch"], "main");
    let names: Vec<&str> = body["branches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 121);
    assert_eq!(names[0], "main");
    assert_eq!(names[1], "feature-000");
    assert_eq!(names[120], "feature-119");
    // Asked of GitHub's REST API (which checked the token), not with git: the stand-in's git
    // side saw no request. The token is never answered back.
    assert!(setup.github.authorizations().is_empty());
    assert!(!body.to_string().contains(TOKEN));
}

#[tokio::test]
async fn a_local_repository_lists_its_branches_from_host_git() {
    let setup = setup().await;
    let repo = setup.roots.path().join("demo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        #[expect(clippy::disallowed_methods, reason = "the test makes its repository")]
        let out = std::process::Command::new("git")
            .current_dir(&repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
    };
    git(&["init", "-q", "--initial-branch=trunk"]);
    git(&["commit", "-q", "--allow-empty", "-m", "first"]);
    git(&["branch", "alpha"]);
    git(&["branch", "zeta"]);
    let (status, body) = branches(&setup, repo.to_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"defaultBranch": "trunk", "branches": ["trunk", "alpha", "zeta"]})
    );
}

#[tokio::test]
async fn a_github_token_github_refuses_asks_to_reconnect() {
    let setup = setup().await;
    setup
        .github
        .create_repo("acme/widgets", &[("README.md", "x\n")])
        .await
        .unwrap();
    let id = setup.server.store.user_by_name("ada").await.unwrap().id;
    setup
        .server
        .store
        .put_secret(id, "github:token", b"gho_revoked")
        .await
        .unwrap();
    let (status, body) = branches(&setup, &setup.github.url("acme/widgets")).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reconnect GitHub")
    );
}

#[tokio::test]
async fn bad_repositories_are_refused_clearly() {
    let setup = setup().await;
    let outside = tempfile::tempdir().unwrap();
    for (repository, says) in [
        ("", "must not be empty"),
        (
            "relative/path",
            "https:// git URL or an absolute local path",
        ),
        ("file:///etc", "https:// git URL or an absolute local path"),
        ("ext::sh -c touch% /tmp/x", "spaces"),
        ("https://user:pw@example.com/a/b.git", "credentials"),
        ("http://127.0.0.1:9/a/b.git", "refused"),
        ("http://169.254.169.254/latest", "refused"),
        (outside.path().to_str().unwrap(), "local"),
    ] {
        let (status, body) = branches(&setup, repository).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{repository}: {message}");
    }
    // No repository at all, and a field den does not know.
    for query in ["", "?repository=/x&branch=main"] {
        let (status, body) = setup
            .server
            .call(
                Method::GET,
                &format!("/api/repositories/branches{query}"),
                Auth::Cookie(&setup.user),
                None,
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    }
    // A path inside a root that is not a repository: git's own explanation, as a conflict.
    std::fs::create_dir_all(setup.roots.path().join("notes")).unwrap();
    let notes = setup.roots.path().join("notes");
    let (status, body) = branches(&setup, notes.to_str().unwrap()).await;
    assert!(
        status == StatusCode::CONFLICT || status == StatusCode::BAD_REQUEST,
        "{status} {body}"
    );
}
