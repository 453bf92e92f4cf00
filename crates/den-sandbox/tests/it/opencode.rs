//! The pinned OpenCode in a sandbox: a session and a file edit survive snapshot, destroy and
//! restore under another uid. OpenCode is only the workload here (a real server with state on
//! disk); den's own spec for it lives in den-session (`agent_sandbox`), not in this crate.

use std::time::Duration;

use crate::harness::{Harness, home_template, opencode_bin};
use den_sandbox::probe::{BasicAuth, Target};
use den_sandbox::{SandboxRuntime, SandboxSpec, ToolMount};

const OPENCODE_PORT: u16 = 4096;
const SANDBOX_BIN: &str = "/opt/opencode/bin/opencode";

/// `opencode serve` on the sandbox's loopback, with basic auth: the least that runs it.
fn opencode_serve(
    workspace: &std::path::Path,
    bin: &std::path::Path,
    auth: &BasicAuth,
) -> SandboxSpec {
    let port = OPENCODE_PORT.to_string();
    let command = [
        SANDBOX_BIN,
        "serve",
        "--port",
        &port,
        "--hostname",
        "127.0.0.1",
    ];
    let mut spec = SandboxSpec::new(workspace, command.map(String::from).to_vec());
    spec.tools.push(ToolMount {
        host_path: bin.to_path_buf(),
        sandbox_path: SANDBOX_BIN.into(),
    });
    for (k, v) in [
        ("OPENCODE_SERVER_USERNAME", auth.user.as_str()),
        ("OPENCODE_SERVER_PASSWORD", auth.password.as_str()),
        ("OPENCODE_DISABLE_AUTOUPDATE", "1"),
    ] {
        spec.env.insert(k.into(), v.into());
    }
    spec.expose.push(OPENCODE_PORT);
    spec
}

const READY: Duration = Duration::from_secs(180);
const CALL: Duration = Duration::from_secs(60);

fn json(r: &den_sandbox::probe::HttpResponse) -> serde_json::Value {
    assert!(
        (200..300).contains(&r.status),
        "HTTP {}: {}",
        r.status,
        r.text()
    );
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opencode_session_and_file_survive_snapshot_and_restore_under_another_uid() {
    let bin = opencode_bin();
    let h = Harness::with_config(|c| c.home_template = Some(home_template())).await;
    h.git_init();
    let auth = BasicAuth {
        user: "opencode".into(),
        password: uuid::Uuid::new_v4().to_string(),
    };
    let spec = || -> SandboxSpec { opencode_serve(&h.workspace, &bin, &auth) };

    let a = h.rt.create(spec(), None).await.unwrap();
    let oc = Target {
        rt: h.rt.as_ref(),
        id: &a.id,
        port: OPENCODE_PORT,
        auth: Some(&auth),
    };
    oc.wait_ready("/session", READY).await.unwrap_or_else(|e| {
        panic!(
            "{e}\n{}",
            String::from_utf8_lossy(&futures::executor::block_on(h.rt.logs(&a.id, 8192)).unwrap())
        )
    });
    // Without credentials OpenCode refuses.
    let anon = Target { auth: None, ..oc };
    assert_eq!(
        anon.call("GET", "/session", None, CALL)
            .await
            .unwrap()
            .status,
        401
    );

    let session = json(
        &oc.call("POST", "/session", Some(r#"{"title":"new"}"#), CALL)
            .await
            .unwrap(),
    );
    let sid = session["id"].as_str().unwrap().to_owned();
    // A later change to the conversation's state, which must survive too.
    let rename = r#"{"title":"paused-session"}"#;
    json(
        &oc.call("PATCH", &format!("/session/{sid}"), Some(rename), CALL)
            .await
            .unwrap(),
    );
    // Edit a file through OpenCode (its PTY API runs a command in the workspace; no model needed).
    let pty = serde_json::json!({
        "command": "/bin/sh",
        "args": ["-c", "echo edited-in-sandbox > PAUSE_MARKER.txt"],
        "cwd": "/workspace",
    });
    json(
        &oc.call("POST", "/pty", Some(&pty.to_string()), CALL)
            .await
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + CALL;
    loop {
        let r = oc
            .call("GET", "/file/content?path=PAUSE_MARKER.txt", None, CALL)
            .await
            .unwrap();
        if r.status == 200 && r.text().contains("edited-in-sandbox") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the edit never appeared: {}",
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let uid_a = h.rt.stats(&a.id).unwrap().uid;

    // Pause: snapshot (freezes while archiving), then destroy.
    let artifact = h.dir.path().join("a.tar.zst");
    h.rt.snapshot(&a.id, &artifact).await.unwrap();
    h.rt.destroy(&a.id).await.unwrap();

    let b = h.rt.restore(&artifact, spec(), None).await.unwrap();
    assert_ne!(
        h.rt.stats(&b.id).unwrap().uid,
        uid_a,
        "restore must use another uid"
    );
    let oc = Target { id: &b.id, ..oc };
    oc.wait_ready("/session", READY).await.unwrap();
    let sessions = json(&oc.call("GET", "/session", None, CALL).await.unwrap());
    let restored = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == sid.as_str());
    assert_eq!(
        restored.map(|s| s["title"].clone()),
        Some("paused-session".into()),
        "{sessions}"
    );
    let file = json(
        &oc.call("GET", "/file/content?path=PAUSE_MARKER.txt", None, CALL)
            .await
            .unwrap(),
    );
    assert!(file.to_string().contains("edited-in-sandbox"), "{file}");
    h.rt.destroy(&b.id).await.unwrap();
    h.finish().await;
}
