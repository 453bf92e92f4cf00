//! The terminal client (`den login`, `den run`, `den attach`, …) against a real den: the
//! commands run as a person runs them, as processes with their own config directory.

use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use den_protocol::events::{SequencedEvent, ServerMessage, SessionEvent, TurnOutcome};
use den_protocol::sessions::SessionStatus;
use den_test_support::{Gate, OPENAI_MODEL, OPENAI_PROVIDER, Turn};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::harness::{Den, PASSWORD, WITHIN, seqs};

/// A person's terminal: a home and config directory of its own, none of den's variables.
struct Terminal {
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Terminal {
    fn new() -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    /// A terminal that uses `DEN_URL` and `DEN_TOKEN` instead of a stored sign-in.
    fn with_env(url: &str, token: &str) -> Self {
        let mut terminal = Self::new();
        terminal.env = vec![
            ("DEN_URL".to_owned(), url.to_owned()),
            ("DEN_TOKEN".to_owned(), token.to_owned()),
        ];
        terminal
    }

    fn credentials(&self) -> std::path::PathBuf {
        self.home.path().join("config/den/credentials.toml")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_den"));
        command
            .args(args)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env_remove("DEN_URL")
            .env_remove("DEN_TOKEN")
            .env_remove("NO_COLOR")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str]) -> Output {
        tokio::time::timeout(WITHIN, self.command(args).output())
            .await
            .expect("the command did not end in time")
            .unwrap()
    }

    async fn login(&self, url: &str, token: &str) -> Output {
        self.login_with(&["login", url, "--token-stdin"], token)
            .await
    }

    /// Runs `den login` with `args`, `secret` on its standard input.
    async fn login_with(&self, args: &[&str], secret: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("{secret}\n").as_bytes())
            .await
            .unwrap();
        drop(stdin);
        tokio::time::timeout(WITHIN, child.wait_with_output())
            .await
            .unwrap()
            .unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn model() -> String {
    format!("{OPENAI_PROVIDER}/{OPENAI_MODEL}")
}

/// The JSON lines a command printed, as events.
fn json_events(stdout: &[u8]) -> Vec<SequencedEvent> {
    text(stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .collect()
}

/// The session's stored events, read over the WebSocket up to the live edge.
async fn stored_events(den: &Den, session: &str) -> Vec<SequencedEvent> {
    let mut socket = den.connect(session, 0).await;
    while !matches!(socket.next().await, ServerMessage::Live { .. }) {}
    let events = socket.events.clone();
    socket.close().await;
    events
}

#[tokio::test]
async fn den_run_streams_a_turn_and_the_other_commands_act_on_the_session() {
    let den = Den::start().await;
    let terminal = Terminal::new();
    let login = terminal.login(&den.base, &den.token).await;
    assert!(login.status.success(), "{login:?}");
    assert!(text(&login.stdout).contains("as alice"), "{login:?}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(terminal.credentials())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "only its owner may read the token");
    }

    den.model.push(
        Turn::new()
            .say("Writing it. ")
            .write("hello.txt", "hi from the terminal\n"),
    );
    den.model.push(Turn::text("Done."));
    let repo = den.repo.display().to_string();
    let run = terminal
        .run(&[
            "run",
            "--repo",
            &repo,
            "--model",
            &model(),
            "please write hello.txt",
        ])
        .await;
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{run:?}");
    // Progress while the sandbox starts, the streamed text, the tool with its state, the
    // turn's end and the diff summary, in that order.
    let position = |needle: &str| {
        stdout
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing in:\n{stdout}"))
    };
    let ready = position("· agent");
    let said = position("Writing it.");
    let tool = position("⚙ write");
    let done = position("Done.");
    let turn = position("· turn completed");
    let summary = position("1 file(s) changed, +1 -0");
    assert!(
        ready < said && said < tool && tool < done && done < turn && turn < summary,
        "{stdout}"
    );
    assert!(stdout.contains("hello.txt"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|line| line.starts_with("⚙ write") && line.ends_with("completed")),
        "one line per tool state: {stdout}"
    );
    assert!(!stdout.contains("\x1b["), "no colour when not a terminal");
    // Streamed text and the part's whole text at its end are shown once, not twice.
    assert_eq!(stdout.matches("Writing it.").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("Done.").count(), 1, "{stdout}");
    let tool_lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("⚙ write"))
        .collect();
    let mut distinct = tool_lines.clone();
    distinct.dedup();
    assert_eq!(
        tool_lines, distinct,
        "a line per state change, never repeated"
    );

    // The session is listed, with its status.
    let sessions = terminal.run(&["sessions", "--json"]).await;
    assert!(sessions.status.success(), "{sessions:?}");
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&sessions.stdout).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    let table = terminal.run(&["sessions"]).await;
    assert!(
        text(&table.stdout).contains(&id) && text(&table.stdout).contains("running"),
        "{table:?}"
    );

    // The diff is the patch git computed in the sandbox.
    let diff = terminal.run(&["diff", &id]).await;
    assert!(diff.status.success(), "{diff:?}");
    assert!(
        text(&diff.stdout).contains("+hi from the terminal"),
        "{diff:?}"
    );

    // A prompt to the same session streams its own turn only.
    den.model.push(Turn::text("Second answer."));
    let prompt = terminal.run(&["prompt", &id, "and now?"]).await;
    assert!(prompt.status.success(), "{prompt:?}");
    let second = text(&prompt.stdout);
    assert!(second.contains("Second answer."), "{second}");
    assert!(
        !second.contains("Writing it."),
        "only the new turn: {second}"
    );

    // The transcript so far, both turns, as text.
    let show = terminal.run(&["show", &id]).await;
    assert!(show.status.success(), "{show:?}");
    let transcript = text(&show.stdout);
    let first = transcript
        .find("> please write hello.txt")
        .unwrap_or(usize::MAX);
    let written = transcript.find("⚙ write").unwrap_or(usize::MAX);
    let answer = transcript.find("Second answer.").unwrap_or(usize::MAX);
    assert!(
        first < written && written < answer && answer < usize::MAX,
        "{transcript}"
    );

    // Paused and resumed from the terminal.
    let pause = terminal.run(&["pause", &id]).await;
    assert!(pause.status.success(), "{pause:?}");
    let (_, record) = den
        .api(Method::GET, &format!("/api/sessions/{id}"), None)
        .await;
    assert_eq!(record["status"], "paused", "{record}");
    let resume = terminal.run(&["resume", &id]).await;
    assert!(resume.status.success(), "{resume:?}");
    // Resuming runs in the background: the session's events show it paused, then running.
    let mut socket = den.connect(&id, 0).await;
    let is = |wanted: SessionStatus| move |e: &SessionEvent| matches!(e, SessionEvent::Status { status, .. } if *status == wanted);
    socket.until(is(SessionStatus::Paused)).await;
    socket.until(is(SessionStatus::Running)).await;
    socket.close().await;

    // Deleted: gone from the list, and following it is refused clearly.
    let rm = terminal.run(&["rm", &id]).await;
    assert!(rm.status.success(), "{rm:?}");
    let attach = terminal.run(&["attach", &id]).await;
    assert_eq!(attach.status.code(), Some(2), "{attach:?}");
    assert!(
        text(&attach.stderr).contains(&format!("no session {id}")),
        "{attach:?}"
    );
    let (status, page) = den.api(Method::GET, "/api/sessions", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["sessions"], json!([]));
}

#[tokio::test]
async fn a_failing_turn_exits_non_zero_with_the_reason_and_json_matches_the_stored_events() {
    let den = Den::start().await;
    let terminal = Terminal::with_env(&den.base, &den.token);
    den.model
        .push(Turn::error(400, "the scripted model refuses this prompt"));
    let repo = den.repo.display().to_string();
    let run = terminal
        .run(&[
            "run",
            "--json",
            "--repo",
            &repo,
            "--model",
            &model(),
            "fail please",
        ])
        .await;
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let events = json_events(&run.stdout);
    let Some(SessionEvent::TurnFinished {
        outcome: TurnOutcome::Failed,
        error: Some(reason),
        ..
    }) = events.last().map(|e| &e.event)
    else {
        panic!("the last event is the failed turn: {events:#?}");
    };
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("the turn failed") && stderr.contains(reason.as_str()),
        "the reason is on standard error: {stderr}"
    );

    // Every line is the session's stored event, in order, each once.
    let (_, page) = den.api(Method::GET, "/api/sessions", None).await;
    let session = page["sessions"][0]["id"].as_str().unwrap().to_owned();
    let stored = stored_events(&den, &session).await;
    assert_eq!(seqs(&events), (1..=events.len() as i64).collect::<Vec<_>>());
    assert_eq!(events[..], stored[..events.len()]);
}

/// A TCP relay to den whose connections the test can cut, and hold new ones while "offline".
struct FlakyNetwork {
    port: u16,
    connections: Arc<AtomicUsize>,
    cut: tokio::sync::watch::Sender<u64>,
    online: tokio::sync::watch::Sender<bool>,
}

impl FlakyNetwork {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (online, _) = tokio::sync::watch::channel(true);
        let (count, cut_tx, online_tx) = (connections.clone(), cut.clone(), online.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let mut cut = cut_tx.subscribe();
                let mut online = online_tx.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    // Offline: the connection waits, as on a network that came back later.
                    if online.wait_for(|up| *up).await.is_err() {
                        return;
                    }
                    cut.borrow_and_update();
                    let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            port,
            connections,
            cut,
            online,
        }
    }

    /// Drops every open connection and holds new ones until [`FlakyNetwork::reconnect`].
    fn drop_connections(&self) {
        self.online.send_replace(false);
        self.cut.send_modify(|generation| *generation += 1);
    }

    fn reconnect(&self) {
        self.online.send_replace(true);
    }
}

#[tokio::test]
async fn den_attach_resumes_after_a_dropped_connection_with_every_event_once() {
    let den = Den::start().await;
    let gate = Gate::new();
    den.model.push(
        Turn::new()
            .say("Before the drop. ")
            .hold(&gate)
            .say("After the drop."),
    );
    let session = den.create_session(Some("talk to me")).await;
    gate.reached().await;

    let network = FlakyNetwork::start(den.base.trim_start_matches("http://").to_owned()).await;
    let terminal = Terminal::with_env(&format!("http://127.0.0.1:{}", network.port), &den.token);
    let mut attach = terminal
        .command(&["attach", &session, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(attach.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    // Wait until the text before the hold was printed: the turn is half way.
    tokio::time::timeout(WITHIN, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let event: SequencedEvent = serde_json::from_str(&line).unwrap();
            let half_way = matches!(&event.event, SessionEvent::TextDelta { delta, .. } if delta.contains("Before"));
            printed.push(event);
            if half_way {
                return;
            }
        }
        panic!("attach ended early: {printed:#?}");
    })
    .await
    .unwrap();

    // The connection drops; the turn goes on and ends while the client is offline.
    network.drop_connections();
    gate.release();
    let mut watcher = den.connect(&session, 0).await;
    watcher.until_turn_finished().await;
    network.reconnect();

    let status = tokio::time::timeout(WITHIN, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            printed.push(serde_json::from_str(&line).unwrap());
        }
        attach.wait().await.unwrap()
    })
    .await
    .expect("attach did not end with the turn");
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut attach.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(status.success(), "{status:?} {stderr}");
    assert!(
        network.connections.load(Ordering::SeqCst) >= 2,
        "the client reconnected"
    );
    assert!(stderr.contains("resuming after event"), "{stderr}");
    // No gap, no duplicate: exactly the stored events, through the turn's end.
    assert_eq!(
        seqs(&printed),
        (1..=printed.len() as i64).collect::<Vec<_>>()
    );
    assert_eq!(printed, watcher.events[..printed.len()]);
    assert!(
        matches!(
            printed.last().map(|e| &e.event),
            Some(SessionEvent::TurnFinished {
                outcome: TurnOutcome::Completed,
                ..
            })
        ),
        "{printed:#?}"
    );
    let text: String = printed
        .iter()
        .filter_map(|e| match &e.event {
            SessionEvent::TextDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert!(text.contains("After the drop."), "{text}");
}

#[tokio::test]
async fn a_revoked_token_an_unknown_session_and_no_sign_in_are_refused_clearly() {
    let den = Den::start().await;
    let terminal = Terminal::new();

    // Not signed in: every command says how to sign in, and nothing is written.
    let sessions = terminal.run(&["sessions"]).await;
    assert_eq!(sessions.status.code(), Some(2), "{sessions:?}");
    assert!(
        text(&sessions.stderr).contains("not signed in: run `den login"),
        "{sessions:?}"
    );
    // A token den does not know is refused at login, and not stored.
    let bad = terminal.login(&den.base, "den_not_a_real_token").await;
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(!terminal.credentials().exists());
    let not_a_url = terminal.login("den.example", &den.token).await;
    assert_eq!(not_a_url.status.code(), Some(2), "{not_a_url:?}");
    assert!(
        text(&not_a_url.stderr).contains("not a den URL"),
        "{not_a_url:?}"
    );

    let (status, created) = den
        .api(
            Method::POST,
            "/api/tokens",
            Some(json!({"name": "terminal"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap();
    let login = terminal.login(&den.base, token).await;
    assert!(login.status.success(), "{login:?}");

    // Unknown and malformed session ids.
    let unknown = "0190c0de-0000-7000-8000-000000000000";
    for command in [
        vec!["attach", unknown],
        vec!["stop", unknown],
        vec!["diff", unknown],
    ] {
        let output = terminal.run(&command).await;
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        assert!(
            text(&output.stderr).contains(&format!("no session {unknown}")),
            "{output:?}"
        );
    }
    let malformed = terminal.run(&["rm", "not-an-id"]).await;
    assert_eq!(malformed.status.code(), Some(2), "{malformed:?}");
    assert!(
        text(&malformed.stderr).contains("is not a session id"),
        "{malformed:?}"
    );

    // Revoked: the next command says to sign in again.
    let id = created["info"]["id"].as_str().unwrap();
    let (status, _) = den
        .api(Method::DELETE, &format!("/api/tokens/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let revoked = terminal.run(&["sessions"]).await;
    assert_eq!(revoked.status.code(), Some(2), "{revoked:?}");
    let stderr = text(&revoked.stderr);
    assert!(
        stderr.contains("did not accept your token") && stderr.contains("den login"),
        "{stderr}"
    );
    assert!(!stderr.contains(token), "the token is never printed");

    // Signed out: the file is gone.
    let logout = terminal.run(&["logout"]).await;
    assert!(logout.status.success(), "{logout:?}");
    assert!(!terminal.credentials().exists());
}

#[tokio::test]
async fn the_admin_commands_ignore_the_terminal_clients_variables() {
    // Someone with DEN_URL and DEN_TOKEN in their shell can still run den's own commands:
    // they are not configuration keys (which den refuses when unknown).
    let data = tempfile::tempdir().unwrap();
    let terminal = Terminal::with_env("http://127.0.0.1:9", "den_whatever");
    let migrate = terminal
        .run(&["migrate", "--data-dir", data.path().to_str().unwrap()])
        .await;
    assert!(migrate.status.success(), "{migrate:?}");
    assert!(text(&migrate.stdout).contains("migration"), "{migrate:?}");
}

#[tokio::test]
async fn ctrl_c_with_stop_stops_the_turn() {
    let den = Den::start().await;
    let terminal = Terminal::with_env(&den.base, &den.token);
    let gate = Gate::new();
    den.model.push(
        Turn::new()
            .say("Working on it. ")
            .hold(&gate)
            .say("never said"),
    );
    let repo = den.repo.display().to_string();
    let mut run = terminal
        .command(&[
            "run",
            "--stop",
            "--repo",
            &repo,
            "--model",
            &model(),
            "work slowly",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A printed event means the command is following (and listening for Ctrl-C).
    let mut stdout = BufReader::new(run.stdout.take().unwrap()).lines();
    tokio::time::timeout(WITHIN, stdout.next_line())
        .await
        .unwrap()
        .unwrap()
        .expect("an event line");
    gate.reached().await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(run.id().unwrap()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let output = tokio::time::timeout(WITHIN, run.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    assert!(
        text(&output.stderr).contains("stopped the turn"),
        "{output:?}"
    );

    let (_, page) = den.api(Method::GET, "/api/sessions", None).await;
    let session = page["sessions"][0]["id"].as_str().unwrap().to_owned();
    let mut socket = den.connect(&session, 0).await;
    let finished = socket.until_turn_finished().await;
    gate.release();
    assert!(
        matches!(
            finished,
            SessionEvent::TurnFinished {
                outcome: TurnOutcome::Aborted,
                ..
            }
        ),
        "{finished:?}"
    );
}

#[tokio::test]
async fn den_push_and_den_pr_push_the_branch_and_open_its_pull_request() {
    const TOKEN: &str = "ghp_terminalTestToken0123456789abcdef";
    let git = den_test_support::GitServer::start(TOKEN).await.unwrap();
    git.create_repo("acme/tools", &[("README.md", "# tools\n")])
        .await
        .unwrap();
    let host = git.base_url().trim_start_matches("http://").to_owned();
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
    let terminal = Terminal::with_env(&den.base, &den.token);
    den.model
        .push(Turn::new().write("notes.txt", "from the terminal\n"));
    den.model.push(Turn::text("Written."));
    let run = terminal
        .run(&[
            "run",
            "--repo",
            &git.url("acme/tools"),
            "--model",
            &model(),
            "write notes.txt",
        ])
        .await;
    assert!(run.status.success(), "{run:?}");
    let (_, page) = den.api(Method::GET, "/api/sessions", None).await;
    let id = page["sessions"][0]["id"].as_str().unwrap().to_owned();
    let branch = page["sessions"][0]["workBranch"]
        .as_str()
        .unwrap()
        .to_owned();

    let push = terminal
        .run(&["push", &id, "-m", "notes from the terminal"])
        .await;
    assert!(push.status.success(), "{push:?}");
    let said = text(&push.stdout);
    let pushed = git
        .commit_of("acme/tools", &format!("refs/heads/{branch}"))
        .await
        .expect("the branch reached the remote");
    assert!(
        said.contains(&format!("pushed {branch} at {pushed}")) && said.contains("committed"),
        "{said}"
    );
    let subject = git
        .git_in("acme/tools", &["log", "-1", "--format=%s", &branch])
        .await
        .unwrap();
    assert_eq!(subject, "notes from the terminal");

    let pr = terminal
        .run(&["pr", &id, "--title", "Notes", "--draft"])
        .await;
    assert!(pr.status.success(), "{pr:?}");
    let pulls = git.pulls();
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    assert_eq!((pulls[0].title.as_str(), pulls[0].draft), ("Notes", true));
    assert_eq!(pulls[0].head, branch);
    assert!(
        text(&pr.stdout).contains(&format!("opened pull request #{}", pulls[0].number)),
        "{pr:?}"
    );
    let again = terminal.run(&["pr", &id]).await;
    assert!(again.status.success(), "{again:?}");
    assert!(text(&again.stdout).contains("already open:"), "{again:?}");
    assert_eq!(git.pulls().len(), 1, "no second pull request");
}

#[tokio::test]
async fn den_login_with_a_password_makes_a_token_for_the_terminal() {
    let den = Den::start().await;
    let terminal = Terminal::new();
    let wrong = terminal
        .login_with(
            &[
                "login",
                &den.base,
                "--username",
                "alice",
                "--password-stdin",
            ],
            "not the password",
        )
        .await;
    assert_eq!(wrong.status.code(), Some(2), "{wrong:?}");
    assert!(
        text(&wrong.stderr).contains("den refused the sign-in"),
        "{wrong:?}"
    );
    assert!(!terminal.credentials().exists());
    let (_, before) = den.api(Method::GET, "/api/tokens", None).await;

    let login = terminal
        .login_with(
            &[
                "login",
                &den.base,
                "--username",
                "alice",
                "--password-stdin",
            ],
            PASSWORD,
        )
        .await;
    assert!(login.status.success(), "{login:?}");
    assert!(text(&login.stdout).contains("as alice"), "{login:?}");
    let sessions = terminal.run(&["sessions"]).await;
    assert!(sessions.status.success(), "{sessions:?}");
    // One new token, named for the terminal, revocable like any other.
    let (_, after) = den.api(Method::GET, "/api/tokens", None).await;
    let after = after.as_array().unwrap();
    assert_eq!(
        after.len(),
        before.as_array().unwrap().len() + 1,
        "{after:?}"
    );
    assert!(
        after.iter().any(|t| t["name"] == "den CLI (alice)"),
        "{after:?}"
    );
    let stored = std::fs::read_to_string(terminal.credentials()).unwrap();
    assert!(!stored.contains(PASSWORD), "the password is never stored");
}
