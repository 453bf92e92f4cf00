//! The session's diff: what the agent changed, committed or not, against the base commit.

use den_protocol::events::SessionEvent;
use den_test_support::Turn;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::{Den, commit_file};

fn file<'a>(diff: &'a Value, path: &str) -> &'a Value {
    diff["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} missing from {diff:#}"))
}

#[tokio::test]
async fn the_diff_shows_committed_and_uncommitted_work_and_survives_a_pause() {
    let den = Den::start().await;
    commit_file(&den.repo, "rename-me.txt", "one\ntwo\nthree\nfour\nfive\n").await;
    commit_file(&den.repo, "gone.txt", "bye\n").await;
    // The agent commits a rename and a deletion, then leaves an edit, a new file and a binary
    // file uncommitted (one of them ignored).
    den.model.push(Turn::new().bash(
        "git mv rename-me.txt renamed.txt && printf 'six\\n' >> renamed.txt && git rm -q gone.txt \
         && git add -A && git -c user.name=a -c user.email=a@a commit -qm agent \
         && printf 'more\\n' >> README.md && printf 'fresh\\n' > new.txt \
         && printf 'a\\000b' > blob.bin && printf 'junk.log\\n' > .gitignore && echo x > junk.log",
        "change files",
    ));
    den.model.push(Turn::text("Done."));
    let session = den.create_session(Some("change some files")).await;
    let mut socket = den.connect(&session, 0).await;
    socket.until_turn_finished().await;
    let announced = socket
        .until(|e| matches!(e, SessionEvent::DiffChanged { .. }))
        .await;
    let SessionEvent::DiffChanged { summary } = announced else {
        unreachable!()
    };

    let path = format!("/api/sessions/{session}/diff");
    let (status, diff) = den.api(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{diff}");
    assert_eq!(diff["source"], "live");
    assert_eq!(diff["truncated"], false);
    let base = diff["baseCommit"].as_str().unwrap();
    assert_eq!(base.len(), 40, "{diff:#}");
    let mut paths: Vec<&str> = diff["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            ".gitignore",
            "README.md",
            "blob.bin",
            "gone.txt",
            "new.txt",
            "renamed.txt"
        ],
        "{diff:#}"
    );
    let readme = file(&diff, "README.md");
    assert_eq!(readme["status"], "modified");
    assert_eq!(
        (readme["additions"].as_u64(), readme["deletions"].as_u64()),
        (Some(1), Some(0))
    );
    let patch = readme["patch"].as_str().unwrap();
    assert!(
        patch.starts_with("diff --git a/README.md b/README.md\n"),
        "{patch}"
    );
    assert!(patch.contains("\n # test repo\n+more\n"), "{patch}");
    let renamed = file(&diff, "renamed.txt");
    assert_eq!(renamed["status"], "renamed");
    assert_eq!(renamed["oldPath"], "rename-me.txt");
    assert_eq!(renamed["additions"], 1);
    assert!(renamed["patch"].as_str().unwrap().contains("+six\n"));
    assert_eq!(file(&diff, "gone.txt")["status"], "deleted");
    assert_eq!(file(&diff, "gone.txt")["deletions"], 1);
    assert_eq!(file(&diff, "new.txt")["status"], "added");
    let blob = file(&diff, "blob.bin");
    assert_eq!(
        (blob["binary"].as_bool(), blob["patch"].as_str()),
        (Some(true), Some(""))
    );
    assert_eq!(diff["summary"]["files"], 6);
    assert_eq!(diff["summary"]["files"].as_u64(), Some(summary.files));
    assert_eq!(
        diff["summary"]["additions"].as_u64(),
        Some(summary.additions)
    );

    // Paused, the session has no sandbox: the diff is the one saved after the last turn.
    let (status, body) = den
        .api(
            Method::POST,
            &format!("/api/sessions/{session}/pause"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, paused) = den.api(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["source"], "last_turn");
    assert_eq!(paused["files"], diff["files"]);
    assert_eq!(paused["baseCommit"], diff["baseCommit"]);

    // Another user cannot see it.
    den.add_user("mallory").await;
    let mallory = den.sign_in("mallory").await;
    let (status, _) = den.api_as(&mallory, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A symlink the agent points out of the tree (at the sandbox's own environment, which holds
/// its gateway tokens, and at the filesystem root) is shown as a link, its target as text:
/// the diff never reads what a link points at.
#[tokio::test]
async fn the_diff_shows_a_symlink_out_of_the_tree_as_a_link_without_following_it() {
    let den = Den::start().await;
    den.model.push(Turn::new().bash(
        "ln -s /proc/self/environ environ-link && ln -s / root-link && ln -s ../../../../etc up-link",
        "make links",
    ));
    den.model.push(Turn::text("Linked."));
    let session = den.create_session(Some("make some links")).await;
    let mut socket = den.connect(&session, 0).await;
    socket.until_turn_finished().await;
    socket
        .until(|e| matches!(e, SessionEvent::DiffChanged { .. }))
        .await;
    let (status, diff) = den
        .api(Method::GET, &format!("/api/sessions/{session}/diff"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{diff}");
    for (path, target) in [
        ("environ-link", "/proc/self/environ"),
        ("root-link", "/"),
        ("up-link", "../../../../etc"),
    ] {
        let link = file(&diff, path);
        assert_eq!(link["status"], "added", "{link:#}");
        assert_eq!(
            link["additions"], 1,
            "the link's target is its one line: {link:#}"
        );
        let patch = link["patch"].as_str().unwrap();
        assert!(patch.contains("new file mode 120000"), "{patch}");
        assert!(patch.contains(&format!("+{target}")), "{patch}");
    }
    // Nothing of what the links point at: no environment (the sandbox's tokens), no listing.
    let text = diff.to_string();
    for leaked in ["DEN_", "OPENCODE_", "PATH=", "passwd", "bin/sh"] {
        assert!(
            !text.contains(leaked),
            "{leaked} leaked into the diff: {diff:#}"
        );
    }
}
