//! The git smart-HTTP stand-in behaves like GitHub for clone, fetch and push.
#![allow(clippy::unwrap_used, reason = "test code: panics are failures")]
#![allow(clippy::disallowed_methods, reason = "the test runs git as a client")]

use std::path::Path;
use std::process::Output;

use base64::Engine;
use den_test_support::GitServer;

const TOKEN: &str = "ghs_test_token_0123456789";

/// git as a client, with `token` (if any) sent as GitHub wants it: never in the URL or config.
async fn git(dir: &Path, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new("git");
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .args([
            "-c",
            "user.name=agent",
            "-c",
            "user.email=agent@example.com",
        ]);
    if let Some(token) = token {
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
        command
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env(
                "GIT_CONFIG_VALUE_0",
                format!("Authorization: Basic {basic}"),
            );
    }
    command.args(args).output().await.unwrap()
}

#[tokio::test]
async fn clones_and_pushes_with_the_token_and_refuses_without_it() {
    let server = GitServer::start(TOKEN).await.unwrap();
    server
        .create_repo("acme/widgets", &[("README.md", "# widgets\n")])
        .await
        .unwrap();
    let url = server.url("acme/widgets");
    let work = tempfile::tempdir().unwrap();

    let anonymous = git(work.path(), None, &["clone", "-q", &url, "anon"]).await;
    assert!(!anonymous.status.success());
    let stderr = String::from_utf8_lossy(&anonymous.stderr);
    assert!(stderr.contains("could not read Username"), "{stderr}");
    let wrong = git(work.path(), Some("wrong"), &["clone", "-q", &url, "wrong"]).await;
    assert!(!wrong.status.success());
    // Refused like GitHub does: git falls back to asking for a username, and cannot.
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.contains("could not read Username"), "{stderr}");
    assert!(!work.path().join("wrong").exists());

    let cloned = git(work.path(), Some(TOKEN), &["clone", "-q", &url, "repo"]).await;
    assert!(
        cloned.status.success(),
        "{}",
        String::from_utf8_lossy(&cloned.stderr)
    );
    let repo = work.path().join("repo");
    assert_eq!(
        std::fs::read_to_string(repo.join("README.md")).unwrap(),
        "# widgets\n"
    );

    std::fs::write(repo.join("change.txt"), "changed\n").unwrap();
    assert!(
        git(&repo, None, &["checkout", "-qb", "den/abc"])
            .await
            .status
            .success()
    );
    assert!(git(&repo, None, &["add", "-A"]).await.status.success());
    assert!(
        git(&repo, None, &["commit", "-qm", "change"])
            .await
            .status
            .success()
    );
    let pushed = git(&repo, Some(TOKEN), &["push", "-q", "origin", "den/abc"]).await;
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );

    let head = String::from_utf8(git(&repo, None, &["rev-parse", "HEAD"]).await.stdout).unwrap();
    assert_eq!(
        server
            .commit_of("acme/widgets", "refs/heads/den/abc")
            .await
            .as_deref(),
        Some(head.trim())
    );
    let pushes = server.pushes();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].repository, "acme/widgets");
    assert_eq!(pushes[0].username, "x-access-token");
    assert_eq!(pushes[0].updates.len(), 1);
    assert_eq!(pushes[0].updates[0].name, "refs/heads/den/abc");
    assert_eq!(pushes[0].updates[0].new, head.trim());
    assert_eq!(pushes[0].updates[0].old, "0".repeat(40));

    let config = std::fs::read_to_string(repo.join(".git/config")).unwrap();
    assert!(
        !config.contains(TOKEN),
        "the token stays out of the clone's config"
    );
    assert!(
        server
            .authorizations()
            .iter()
            .all(|a| a.starts_with("Basic "))
    );
}
