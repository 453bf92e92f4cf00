//! Where a person's model key must never be: den's answers, events, log, files (database,
//! checkouts, sandboxes, snapshot archives), and any process's command line or environment; and
//! what a sandbox can do with its own gateway token: only its session's model, on the path the
//! provider's SDK uses.

use den_protocol::events::{SessionEvent, ToolState};
use den_test_support::Turn;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::Den;

/// Every file under `dir` that contains `needle`, read raw.
pub(crate) fn files_containing(dir: &std::path::Path, needle: &str, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            files_containing(&path, needle, found);
        } else if kind.is_file()
            && let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        {
            found.push(path.display().to_string());
        }
    }
}

/// Every snapshot archive (`*.tar.zst`) under `dir`.
fn archives_under(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => archives_under(&path, found),
            Ok(kind) if kind.is_file() && path.to_string_lossy().ends_with(".tar.zst") => {
                found.push(path);
            }
            _ => {}
        }
    }
}

/// Asserts no key is in a file under den's data directory (database, config, log, checkouts,
/// sandboxes), nor inside a snapshot archive (compressed, so unpacked here); there must be
/// archives to look into.
pub(crate) fn assert_no_key_in_files(den: &Den, keys: &[&str]) {
    let log = std::fs::read_to_string(den.log_path()).unwrap();
    assert!(
        log.contains("den is listening") || log.lines().count() > 5,
        "den's log was kept"
    );
    let mut found = Vec::new();
    for key in keys {
        files_containing(den.data_dir.path(), key, &mut found);
    }
    assert!(found.is_empty(), "keys in the clear in {found:?}");
    let mut archives = Vec::new();
    archives_under(den.data_dir.path(), &mut archives);
    assert!(!archives.is_empty(), "the finished turns left snapshots");
    for archive in archives {
        let out = std::process::Command::new("zstd")
            .args(["-dcq"])
            .arg(&archive)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", archive.display());
        for key in keys {
            assert!(
                !out.stdout.windows(key.len()).any(|w| w == key.as_bytes()),
                "a key inside the snapshot {}",
                archive.display()
            );
        }
    }
}

/// Asserts no process of this machine (the sandboxes' OpenCode and its children, den, git…)
/// holds a key in its command line or environment. Returns how many environments were read,
/// so a caller can tell the scan saw the sandbox's processes.
pub(crate) fn assert_no_key_in_processes(keys: &[&str]) -> usize {
    let mut environments = 0;
    let mut opencode_seen = false;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(entry.path().join("environ"));
        if let Ok(environ) = &environ {
            environments += 1;
            opencode_seen |= environ
                .windows(b"OPENCODE_".len())
                .any(|w| w == b"OPENCODE_");
        }
        for key in keys {
            for (what, bytes) in [
                ("cmdline", &cmdline),
                ("environ", environ.as_ref().unwrap_or(&Vec::new())),
            ] {
                assert!(
                    !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
                    "a key in /proc/{}/{what}",
                    name.to_string_lossy()
                );
            }
        }
    }
    assert!(
        opencode_seen,
        "the scan read the environment of a sandbox's OpenCode"
    );
    environments
}

/// Everything den answers to `GET` on its routes (from its OpenAPI document, streams left out),
/// for the caller and each of `sessions`, as one text to search.
pub(crate) async fn api_answers(den: &Den, sessions: &[&str]) -> String {
    let (_, doc) = den.api(Method::GET, "/api/openapi.json", None).await;
    let mut answers = String::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let streams = path.ends_with("/ws")
            || path.ends_with("/events")
            || path.ends_with("/stream")
            || path.ends_with("/terminal");
        if item.get("get").is_none()
            || streams
            || path.contains("/link/")
            || path.contains("github")
        {
            continue;
        }
        let concrete: Vec<String> = if path.contains("{id}") {
            sessions.iter().map(|id| path.replace("{id}", id)).collect()
        } else if path.contains('{') {
            continue;
        } else {
            vec![path.clone()]
        };
        for path in concrete {
            let (_, body) = den.api(Method::GET, &path, None).await;
            answers.push_str(&body.to_string());
        }
    }
    assert!(
        answers.contains("claude-sonnet-4-5"),
        "the sweep read the model catalog"
    );
    answers
}

/// The agent itself, in the sandbox, takes the gateway token from its own config and calls den's
/// gateway with it: only the session's model on the SDK's path passes; every other path, model
/// or provider is a 403, and none of them reaches the provider.
#[tokio::test]
async fn from_inside_the_sandbox_only_the_sessions_model_passes_the_gateway() {
    const KEY: &str = "sk-ant-api03-inside-e2e-secret-Z9y8";
    let den =
        Den::start_with("[[providers]]\nname = \"anthropic\"\nbase_url = \"{model_url}\"\n").await;
    let (status, _) = den
        .api(
            Method::PUT,
            "/api/provider-keys/anthropic",
            Some(json!({"key": KEY})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let script = r#"T=$(grep -o '"apiKey":"[^"]*"' "$HOME/.config/den/opencode.json" | head -n1 | cut -d'"' -f4)
echo "token-length ${#T}"
for call in anthropic/messages:claude-sonnet-4-5-20250929 anthropic/messages:claude-opus-4-5-20251101 anthropic/models:claude-sonnet-4-5-20250929 anthropic/complete:claude-sonnet-4-5-20250929 openai/responses:gpt-5.2 opencode/chat/completions:big-pickle my-home/chat/completions:llama-3; do
  path=${call%%:*}; model=${call#*:}
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $T" -H "authorization: Bearer $T" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' -d "{\"model\":\"$model\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"probe\"}]}" "http://127.0.0.1:4141/v1/$path")
  echo "gateway $path $model $code"
done
env | grep -c sk-ant- ; echo "env-checked""#;
    den.model
        .push(Turn::new().bash(script, "call den's gateway directly"));
    den.model.push(Turn::text("Done probing."));
    let session = den
        .create_session_on(
            &den.token,
            "anthropic/claude-sonnet-4-5-20250929",
            Some("probe"),
        )
        .await;
    let mut socket = den.connect(&session, 0).await;
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
    assert!(
        !output.contains("token-length 0"),
        "the agent found its token: {output}"
    );
    let code = |path: &str, model: &str| {
        let line = format!("gateway {path} {model} ");
        output
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no line for {path} {model}: {output}"))
            .trim()
            .to_owned()
    };
    assert_eq!(
        code("anthropic/messages", "claude-sonnet-4-5-20250929"),
        "200",
        "{output}"
    );
    for (path, model) in [
        ("anthropic/messages", "claude-opus-4-5-20251101"),
        ("anthropic/models", "claude-sonnet-4-5-20250929"),
        ("anthropic/complete", "claude-sonnet-4-5-20250929"),
        ("openai/responses", "gpt-5.2"),
        ("opencode/chat/completions", "big-pickle"),
        ("my-home/chat/completions", "llama-3"),
    ] {
        assert_eq!(code(path, model), "403", "{path} {model}: {output}");
    }
    assert!(
        output.contains("0\nenv-checked"),
        "no key in the agent's environment: {output}"
    );
    let probes: Vec<_> = den
        .model
        .requests()
        .into_iter()
        .filter(|r| r.body["max_tokens"] == 1)
        .collect();
    assert_eq!(
        probes.len(),
        1,
        "only the allowed call reached the provider"
    );
    assert_eq!(
        probes[0].credential.as_deref(),
        Some(KEY),
        "with the key den added"
    );

    // The sandbox still runs: no process holds the key, nor does anything den wrote or said.
    assert!(assert_no_key_in_processes(&[KEY]) > 0);
    let answers = api_answers(&den, &[&session]).await;
    assert!(!answers.contains(KEY), "a key in den's answers");
    assert!(!serde_json::to_string(&socket.events).unwrap().contains(KEY));
    assert_no_key_in_files(&den, &[KEY]);
}
