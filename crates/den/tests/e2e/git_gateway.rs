//! A private repository: den clones it with the person's credential, and the agent fetches and
//! pushes through den's git gateway, which adds the credential on the host; only the session's
//! branch may be pushed, and a refusal is readable.

use base64::Engine;
use den_protocol::events::{SessionEvent, ToolState};
use den_test_support::{GitServer, OPENAI_MODEL, OPENAI_PROVIDER, Turn};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::Den;

const TOKEN: &str = "ghp_gatewayTestToken0123456789abcdef";

#[tokio::test]
async fn the_agent_pushes_its_branch_through_den_and_never_sees_the_token() {
    let git = GitServer::start(TOKEN).await.unwrap();
    git.create_repo("acme/widgets", &[("README.md", "# widgets\n")])
        .await
        .unwrap();
    let main_before = git.commit_of("acme/widgets", "refs/heads/main").await;
    let host = git.base_url().trim_start_matches("http://").to_owned();
    // The stand-in is on loopback, which den fetches from only when an admin allows it.
    let den = Den::start_allowing(
        &[&host],
        &format!(
            "[github]\nclient_id = \"test\"\nclient_secret = \"test\"\napi_url = \"{}\"\n",
            git.api_url()
        ),
    )
    .await;
    let (status, body) = den
        .api(
            Method::PUT,
            &format!("/api/git-credentials/{host}"),
            Some(json!({"username": "x-access-token", "token": TOKEN})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // The token as the agent would search for it, without writing it in its command line;
    // the environment, git's config and the process list are saved to a file before.
    let needle = base64::engine::general_purpose::STANDARD.encode(TOKEN);
    let script = format!(
        "echo change > agent.txt && git add -A \
         && git -c user.name=agent -c user.email=agent@example.com commit -qm 'agent work'; \
         git push origin HEAD 2>&1; echo push-own=$?; \
         git push origin HEAD:main 2>&1; echo push-main=$?; \
         git push --force origin HEAD:refs/heads/other 2>&1; echo push-force=$?; \
         git fetch -q origin 2>&1; echo fetch=$?; \
         git remote get-url origin; \
         (env; cat .git/config ~/.gitconfig; ps -eo args) > /tmp/seen; \
         t=$(printf %s {needle} | base64 -d); \
         grep -rlF \"$t\" /workspace /home/agent /tmp; echo grep=$?; \
         echo later > uncommitted.txt"
    );
    den.model
        .push(Turn::new().bash(&script, "push through den"));
    den.model.push(Turn::text("Pushed."));
    let model = format!("{OPENAI_PROVIDER}/{OPENAI_MODEL}");
    let (status, session) = den
        .api(
            Method::POST,
            "/api/sessions",
            Some(json!({"repository": git.url("acme/widgets"), "model": model, "prompt": "push"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let id = session["id"].as_str().unwrap();
    let branch = session["workBranch"].as_str().unwrap().to_owned();
    let mut socket = den.connect(id, 0).await;
    socket.until_turn_finished().await;

    let output = socket
        .events
        .iter()
        .find_map(|e| match &e.event {
            SessionEvent::Tool(call)
                if call.tool == "bash" && call.state == ToolState::Completed =>
            {
                call.output.clone()
            }
            _ => None,
        })
        .expect("the bash call finished");
    assert!(output.contains("push-own=0"), "{output}");
    assert!(output.contains("push-main=1"), "{output}");
    assert!(output.contains("push-force=1"), "{output}");
    assert!(output.contains("fetch=0"), "{output}");
    assert!(
        output.contains("[remote rejected]")
            && output.contains(&format!("den allows pushes only to refs/heads/{branch}")),
        "the refusal is readable: {output}"
    );
    assert!(output.contains("http://127.0.0.1:4142/"), "{output}");
    assert!(
        output.contains("grep=1"),
        "the token is nowhere in the sandbox: {output}"
    );

    // Only the session's branch reached the remote, pushed with the person's credential.
    let pushed = git
        .commit_of("acme/widgets", &format!("refs/heads/{branch}"))
        .await;
    assert!(pushed.is_some(), "the branch was pushed");
    assert_eq!(
        git.commit_of("acme/widgets", "refs/heads/main").await,
        main_before
    );
    assert_eq!(
        git.commit_of("acme/widgets", "refs/heads/other").await,
        None
    );
    let pushes = git.pushes();
    assert_eq!(
        pushes.len(),
        1,
        "refused pushes never reach the remote: {pushes:?}"
    );
    assert_eq!(pushes[0].username, "x-access-token");
    assert_eq!(pushes[0].updates[0].name, format!("refs/heads/{branch}"));
    let log = git
        .git_in("acme/widgets", &["log", "-1", "--format=%s", &branch])
        .await
        .unwrap();
    assert_eq!(log, "agent work");

    // den's Push commits the uncommitted file as the person and pushes the branch.
    let push = format!("/api/sessions/{id}/push");
    let (status, pushed) = den
        .api(
            Method::POST,
            &push,
            Some(json!({"message": "den: the rest"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{pushed}");
    assert_eq!(pushed["committed"], true);
    assert_eq!(pushed["branch"], branch.as_str());
    let head = git
        .git_in(
            "acme/widgets",
            &["log", "-1", "--format=%an <%ae>|%s|%H", &branch],
        )
        .await
        .unwrap();
    assert_eq!(
        head,
        format!(
            "alice <alice@users.noreply.den.invalid>|den: the rest|{}",
            pushed["commit"].as_str().unwrap()
        )
    );
    let (status, again) = den.api(Method::POST, &push, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["committed"], false, "nothing left to commit");
    // An up-to-date branch sends nothing: git.pushes() holds the agent's push and den's.
    assert_eq!(git.pushes().len(), 2);

    // The diff is what the pushed branch holds against the base.
    let (_, diff) = den
        .api(Method::GET, &format!("/api/sessions/{id}/diff"), None)
        .await;
    let mut listed: Vec<String> = diff["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{}\t{}", f["additions"], f["path"].as_str().unwrap()))
        .collect();
    listed.sort();
    let numstat = git
        .git_in(
            "acme/widgets",
            &[
                "diff",
                "--numstat",
                diff["baseCommit"].as_str().unwrap(),
                &branch,
            ],
        )
        .await
        .unwrap();
    let mut expected: Vec<String> = numstat
        .lines()
        .map(|l| {
            let mut fields = l.split('\t');
            let added = fields.next().unwrap();
            let path = fields.nth(1).unwrap();
            format!("{added}\t{path}")
        })
        .collect();
    expected.sort();
    assert_eq!(listed, expected);

    // The pull request is opened once, then found again; its state is GitHub's.
    let pr = format!("/api/sessions/{id}/pull-request");
    let (status, opened) = den
        .api(
            Method::POST,
            &pr,
            Some(json!({"title": "Agent work", "draft": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    assert_eq!(opened["created"], true);
    assert_eq!(opened["state"], "open");
    assert!(
        opened["url"]
            .as_str()
            .unwrap()
            .ends_with("/acme/widgets/pull/1"),
        "{opened}"
    );
    let (status, again) = den.api(Method::POST, &pr, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        (again["created"].as_bool(), again["number"].as_u64()),
        (Some(false), Some(1))
    );
    let (status, current) = den.api(Method::GET, &pr, None).await;
    assert_eq!(status, StatusCode::OK, "{current}");
    assert_eq!(current["number"], 1);
    let pulls = git.pulls();
    assert_eq!(pulls.len(), 1, "opened once");
    assert_eq!(
        (pulls[0].head.as_str(), pulls[0].base.as_str()),
        (branch.as_str(), "main")
    );
    assert!(pulls[0].draft);
    assert_eq!(pulls[0].title, "Agent work");
    assert!(!opened.to_string().contains(TOKEN) && !current.to_string().contains(TOKEN));

    // Nor is the token in any event or response.
    let events =
        serde_json::to_string(&socket.events.iter().map(|e| &e.event).collect::<Vec<_>>()).unwrap();
    assert!(!events.contains(TOKEN));
    let (_, listing) = den.api(Method::GET, "/api/git-credentials", None).await;
    assert!(!listing.to_string().contains(TOKEN));
    let (_, diff) = den
        .api(Method::GET, &format!("/api/sessions/{id}/diff"), None)
        .await;
    assert!(!diff.to_string().contains(TOKEN));

    // Nor in anything den keeps on disk: paused, the session's snapshot archive (decompressed),
    // its checkout, the database and every other file under den's data directory.
    let (status, body) = den
        .api(Method::POST, &format!("/api/sessions/{id}/pause"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, session) = den
        .api(Method::GET, &format!("/api/sessions/{id}"), None)
        .await;
    assert_eq!(session["status"], "paused", "{session}");
    let mut archives = 0;
    let mut pending = vec![den.data_dir.path().to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let Ok(mut bytes) = std::fs::read(&path) else {
                continue;
            };
            if path.to_string_lossy().ends_with(".zst") {
                bytes = zstd::decode_all(bytes.as_slice()).unwrap();
                archives += 1;
            }
            // (The agent's own command holds the token in base64, to search for it without
            // naming it: that is in the event log by design, so only the token itself counts.)
            let secret = TOKEN.as_bytes();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "the token is in {}",
                path.display()
            );
        }
    }
    assert!(archives > 0, "the pause left a snapshot archive to search");
}
