//! The `den` binary as a person uses it: commands, configuration layers, first run, shutdown.
#![allow(
    clippy::unwrap_used,
    reason = "in tests a failed unwrap is a failed test"
)]
#![allow(
    clippy::disallowed_methods,
    reason = "these tests run the den binary itself"
)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn den(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_den"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .env("DEN_SANDBOX__ENABLED", "false")
        .env_remove("DEN_MASTER_KEY")
        .env_remove("DEN_DATABASE_URL")
        .env_remove("DEN_LISTEN");
    command
}

fn run(mut command: Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn version_prints_the_crate_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_den"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        stdout(&output).trim(),
        format!("den {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn users_are_added_listed_given_passwords_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut add = den(dir.path());
    add.args(["user", "add", "alice", "--admin", "--password-stdin"]);
    let output = run(add, "a long password\n");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut add_link = den(dir.path());
    add_link.args(["user", "add", "bob"]);
    let output = run(add_link, "");
    assert!(
        stdout(&output).contains("/api/auth/link/"),
        "a user without password gets a link: {}",
        stdout(&output)
    );

    let mut duplicate = den(dir.path());
    duplicate.args(["user", "add", "alice", "--password-stdin"]);
    let output = run(duplicate, "another password\n");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));

    let mut short = den(dir.path());
    short.args(["user", "add", "carol", "--password-stdin"]);
    let output = run(short, "short\n");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 8 characters"));

    let mut list = den(dir.path());
    list.args(["user", "list"]);
    let listing = stdout(&run(list, ""));
    assert!(
        listing.contains("alice\tadmin")
            && listing.contains("bob\tuser")
            && !listing.contains("carol"),
        "{listing}"
    );

    let mut passwd = den(dir.path());
    passwd.args(["user", "passwd", "alice"]);
    assert!(run(passwd, "a new long password\n").status.success());

    let mut remove = den(dir.path());
    remove.args(["user", "remove", "bob"]);
    assert!(run(remove, "").status.success());
    let mut remove_again = den(dir.path());
    remove_again.args(["user", "remove", "bob"]);
    let output = run(remove_again, "");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no user named"));
}

#[test]
fn an_admin_sets_a_persons_monthly_budget_and_can_return_it_to_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let mut add = den(dir.path());
    add.args(["user", "add", "alice", "--password-stdin"]);
    assert!(run(add, "a long password\n").status.success());
    let budget = |args: &[&str]| {
        let mut command = den(dir.path());
        command
            .env("DEN_MODELS__MONTHLY_BUDGET_USD", "50")
            .args(["user", "budget", "alice"])
            .args(args);
        run(command, "")
    };
    let shown = stdout(&budget(&[]));
    assert!(
        shown.contains("admin cap $50.00 (den's default)"),
        "{shown}"
    );
    let set = budget(&["12.5"]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    assert!(
        stdout(&set).contains("admin cap $12.50 (set for them)")
            && stdout(&set).contains("applies $12.50"),
        "{}",
        stdout(&set)
    );
    for bad in ["-3", "lots", "1e9"] {
        let refused = budget(&[bad]);
        assert!(!refused.status.success(), "{bad}");
        let said = String::from_utf8_lossy(&refused.stderr).into_owned();
        assert!(said.contains("US dollars"), "{bad}: {said}");
    }
    assert!(
        stdout(&budget(&[])).contains("admin cap $12.50"),
        "the refusals changed nothing"
    );
    let back = stdout(&budget(&["default"]));
    assert!(back.contains("admin cap $50.00 (den's default)"), "{back}");
}

#[test]
fn a_locked_out_user_gets_a_new_sign_in_link() {
    let dir = tempfile::tempdir().unwrap();
    let mut add = den(dir.path());
    add.args(["user", "add", "alice", "--password-stdin"]);
    assert!(run(add, "a long password\n").status.success());

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut links = Vec::new();
    for _ in 0..2 {
        let mut link = den(dir.path());
        link.args(["--listen", &listen, "user", "link", "alice"]);
        let output = run(link, "");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let printed = stdout(&output);
        let start = printed.find("http://").expect("prints the link's URL");
        let url = printed[start..].trim().to_owned();
        assert!(url.contains("/api/auth/link/"), "{printed}");
        links.push(url);
    }
    assert_ne!(links[0], links[1], "each link is new");

    let mut unknown = den(dir.path());
    unknown.args(["user", "link", "nobody"]);
    let output = run(unknown, "");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no user named \"nobody\""),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!stdout(&output).contains("/api/auth/link/"));

    // The link signs the browser in once; opened again it sends it to the sign-in page.
    let mut server = den(dir.path())
        .args(["serve", "--listen", &listen])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|line| line.unwrap().starts_with("den is listening")),
        "den serve did not start"
    );
    let path = &links[0][links[0].find("/api/").unwrap()..];
    let first = http_get_head(port, path);
    assert!(
        first.starts_with("HTTP/1.1 303")
            && first.contains("\r\nlocation: /\r\n")
            && first.contains("set-cookie: den_session="),
        "{first}"
    );
    let again = http_get_head(port, path);
    assert!(
        again.starts_with("HTTP/1.1 303")
            && again.contains("location: /?signin_error=link_invalid")
            && !again.contains("den_session="),
        "{again}"
    );
    stop(server);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The status line and headers (lower-cased) of a plain GET.
fn http_get_head(port: u16, path: &str) -> String {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let head = response.split("\r\n\r\n").next().unwrap_or_default();
    head.to_lowercase().replacen("http/1.1", "HTTP/1.1", 1) + "\r\n"
}

/// Sends SIGTERM and waits for den to exit cleanly.
fn stop(mut child: std::process::Child) {
    let pid = nix_pid(child.id());
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "den did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
}

#[test]
fn the_master_key_file_is_private_and_rotation_keeps_it_working() {
    let dir = tempfile::tempdir().unwrap();
    let mut migrate = den(dir.path());
    migrate.arg("migrate");
    let output = run(migrate, "");
    assert!(output.status.success());
    assert!(
        !stdout(&output).contains("applied 0 migration(s)"),
        "{}",
        stdout(&output)
    );
    let mut again = den(dir.path());
    again.arg("migrate");
    assert!(
        stdout(&run(again, "")).contains("applied 0 migration(s)"),
        "a second run has nothing to do"
    );
    let key_file = dir.path().join("master.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let before = std::fs::read_to_string(&key_file).unwrap();

    // A secret sealed with the first key, for the rotation to carry over.
    let mut add = den(dir.path());
    add.args(["user", "add", "alice"]);
    assert!(run(add, "").status.success());
    const SECRET: &[u8] = b"sk-the-secret-that-must-survive-rotation";
    let db = format!("sqlite:{}", dir.path().join("den.db").display());
    let async_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let old_keyring = den_store::Keyring::parse(&before).unwrap();
    let alice = async_runtime.block_on(async {
        let store = den_store::Store::connect(&db, old_keyring.clone())
            .await
            .unwrap();
        let alice = store.user_by_name("alice").await.unwrap().id;
        store
            .set_provider_key(alice, "anthropic", SECRET)
            .await
            .unwrap();
        store.close().await;
        alice
    });

    let mut rotate = den(dir.path());
    rotate.args(["keys", "rotate"]);
    let output = run(rotate, "");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout(&output).contains("rotated to version 2"));
    let after = std::fs::read_to_string(&key_file).unwrap();
    assert!(
        after.starts_with("2:") && !after.contains(','),
        "only the new key remains: {after}"
    );
    assert_ne!(before, after);
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The secret reads back with the new key alone, and the old key no longer opens it.
    async_runtime.block_on(async {
        let rotated = den_store::Keyring::parse(&after).unwrap();
        let store = den_store::Store::connect(&db, rotated).await.unwrap();
        let key = store.provider_key(alice, "anthropic").await.unwrap();
        assert_eq!(key.as_deref().map(|k| k.as_slice()), Some(SECRET));
        store.close().await;
        let store = den_store::Store::connect(&db, old_keyring).await.unwrap();
        assert!(
            store.provider_key(alice, "anthropic").await.is_err(),
            "the record was resealed with the new key"
        );
        store.close().await;
    });
}

#[test]
fn configuration_layers_apply_in_order_and_typos_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("den.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:1\"\n[auth]\nlogin_link_minutes = 7\n",
    )
    .unwrap();

    // File says 7 minutes; the link text reflects it.
    let mut add = den(dir.path());
    add.arg("--config")
        .arg(&config)
        .args(["user", "add", "bob"]);
    let output = run(add, "");
    assert!(
        stdout(&output).contains("valid 7 minutes")
            && stdout(&output).contains("http://127.0.0.1:1/"),
        "{}",
        stdout(&output)
    );

    // The environment beats the file; a flag beats the environment.
    let mut add = den(dir.path());
    add.arg("--config")
        .arg(&config)
        .env("DEN_AUTH__LOGIN_LINK_MINUTES", "9")
        .env("DEN_LISTEN", "127.0.0.1:2")
        .args(["--listen", "127.0.0.1:3", "user", "add", "carol"]);
    let output = run(add, "");
    assert!(
        stdout(&output).contains("valid 9 minutes")
            && stdout(&output).contains("http://127.0.0.1:3/"),
        "{}",
        stdout(&output)
    );

    std::fs::write(&config, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let mut typo = den(dir.path());
    typo.arg("--config").arg(&config).args(["user", "list"]);
    let output = run(typo, "");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("lisen"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn first_run_prints_a_link_and_sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = den(dir.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut link = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(start) = line.find("http://")
            && line.contains("/api/auth/link/")
        {
            link = Some(line[start..].trim().to_owned());
        }
        if line.starts_with("den is listening") {
            break;
        }
    }
    let link = link.expect("first run prints a sign-in link");
    assert!(
        link.starts_with(&format!("http://127.0.0.1:{port}/api/auth/link/")),
        "{link}"
    );

    stop(child);
}

fn nix_pid(pid: u32) -> String {
    pid.to_string()
}

#[test]
fn the_pinned_opencode_version_is_defined_once_and_the_scripts_read_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_den"))
        .args(["doctor", "--print-opencode-version"])
        .env("DEN_SANDBOX__ENABLED", "false")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = stdout(&output);
    assert_eq!(printed.trim(), den_opencode::PINNED_VERSION);
    assert_eq!(printed.lines().count(), 1, "the version alone: {printed}");

    // What the scripts use before den is built: the same line of the same source.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = Command::new(root.join("scripts/opencode-version"))
        .output()
        .unwrap();
    assert!(script.status.success(), "{script:?}");
    assert_eq!(stdout(&script), printed);
    // No script writes the version down itself.
    for entry in std::fs::read_dir(root.join("scripts")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(den_opencode::PINNED_VERSION),
            "{} hard-codes the OpenCode version: read it from scripts/opencode-version",
            path.display()
        );
    }
}
