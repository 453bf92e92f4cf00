//! Sending the session's work back: commit what is uncommitted (as the person), then push the
//! session's branch. Both run inside the sandbox (`SandboxRuntime::exec`): git there pushes
//! through den's git gateway, which adds the person's credential, so no git runs on the host
//! in a tree the agent could write.

use std::time::Duration;

use den_protocol::changes::PushResult;
use den_sandbox::{ExecRequest, SandboxId, SandboxRuntime};

use crate::error::{Result, SessionError};

const TIMEOUT: Duration = Duration::from_secs(300);

/// Who commits: the person den acts for.
#[derive(Debug, Clone)]
pub struct Author {
    pub name: String,
    pub email: String,
}

/// `$1` the branch; the author and message come in the environment. Hooks are off: the
/// repository's hooks are the agent's to write, and den's commit is not theirs to change.
const SCRIPT: &str = r#"set -e
git -c core.hooksPath=/dev/null -c core.fsmonitor=false add -A
committed=0
if ! git diff --cached --quiet; then
  printf '%s\n' "$DEN_MESSAGE" | git -c core.hooksPath=/dev/null -c commit.gpgSign=false commit --quiet --no-verify -F -
  committed=1
fi
git -c core.hooksPath=/dev/null push --quiet origin "HEAD:refs/heads/$1" 2>&1
echo "$committed $(git rev-parse HEAD)"
"#;

pub(crate) async fn commit_and_push(
    runtime: &dyn SandboxRuntime,
    sandbox: &SandboxId,
    branch: &str,
    author: &Author,
    message: &str,
) -> Result<PushResult> {
    let mut request = ExecRequest::new(["/bin/sh", "-c", SCRIPT, "den-push", branch]);
    for (key, value) in [
        ("GIT_AUTHOR_NAME", author.name.as_str()),
        ("GIT_AUTHOR_EMAIL", author.email.as_str()),
        ("GIT_COMMITTER_NAME", author.name.as_str()),
        ("GIT_COMMITTER_EMAIL", author.email.as_str()),
        ("DEN_MESSAGE", message),
    ] {
        request.env.insert(key.to_owned(), value.to_owned());
    }
    request.timeout = TIMEOUT;
    request.max_output = 64 * 1024;
    let output = runtime.exec(sandbox, request).await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.success() {
        let said = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
        return Err(SessionError::Push(printable(said.trim())));
    }
    let last = stdout.lines().last().unwrap_or_default();
    let (committed, commit) = last.split_once(' ').unwrap_or_default();
    if commit.len() != 40 {
        return Err(SessionError::Push(format!(
            "git did not report the pushed commit: {}",
            printable(stdout.trim())
        )));
    }
    Ok(PushResult {
        branch: branch.to_owned(),
        commit: commit.to_owned(),
        committed: committed == "1",
    })
}

/// Git's words without control characters (no terminal escapes reach a browser).
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .take(2000)
        .collect()
}
