//! `POST /api/sessions` asks the repository (host git's `ls-remote`, or GitHub's API) before it
//! creates anything: a repository den cannot reach, a folder that is no git repository, or a
//! base branch the repository lacks is refused with a clear 400, and no session is made.

use den_test_support::GitServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Auth, TestServer, assert_error};

const TOKEN: &str = "ghp_reachability_token";

#[tokio::test]
async fn a_repository_den_cannot_reach_is_refused_before_a_session_is_made() {
    let git = GitServer::start(TOKEN).await.unwrap();
    git.create_repo("acme/widgets", &[("README.md", "# w\n")])
        .await
        .unwrap();
    let roots = tempfile::tempdir().unwrap();
    let root = roots.path().to_path_buf();
    let host = git.base_url().trim_start_matches("http://").to_owned();
    let server = TestServer::start_with(move |config| {
        config.check_repository_reachable = true;
        config.local_repo_roots = vec![root];
        config.repository_egress = den_session::EgressPolicy {
            allowed_hosts: vec![host.parse().unwrap()],
            ..Default::default()
        };
    })
    .await;
    let user = server.user("ada").await;
    // The person's credential for the host, as a session's clone would use it.
    let credential = json!({"username": "x-access-token", "token": TOKEN});
    let host = git.base_url().trim_start_matches("http://").to_owned();
    let (status, body) = server
        .call(
            Method::PUT,
            &format!("/api/git-credentials/{host}"),
            Auth::Bearer(&user),
            Some(credential),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let plain = roots.path().join("plain-folder");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(plain.join("notes.txt"), "not a repository\n").unwrap();

    let create = |body: serde_json::Value| {
        let server = &server;
        let user = &user;
        async move {
            server
                .call(
                    Method::POST,
                    "/api/sessions",
                    Auth::Bearer(user),
                    Some(body),
                )
                .await
        }
    };
    for (body, says) in [
        (
            json!({"repository": git.url("acme/missing")}),
            "cannot reach the repository",
        ),
        (
            json!({"repository": plain.display().to_string()}),
            "is not a git repository",
        ),
        (
            json!({"repository": git.url("acme/widgets"), "baseBranch": "no-such-branch"}),
            "has no branch no-such-branch",
        ),
    ] {
        let (status, refused) = create(body.clone()).await;
        assert_error(status, &refused, StatusCode::BAD_REQUEST, "invalid_request");
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
        assert!(!message.contains(TOKEN), "{message}");
    }
    let (_, listing) = server
        .call(Method::GET, "/api/sessions", Auth::Bearer(&user), None)
        .await;
    assert_eq!(
        listing["sessions"],
        json!([]),
        "nothing was created: {listing}"
    );

    // The same repository, reachable and with its default branch, makes a session.
    let (status, made) =
        create(json!({"repository": git.url("acme/widgets"), "baseBranch": "main"})).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
}
