//! Git on the host, for the steps that must not run inside the agent's sandbox (cloning, and
//! later pushing with credentials the agent never sees).
//!
//! Every call disables what would let a repository run code on the host: hooks, fsmonitor,
//! the system and global config files, credential prompts and the `ext::` transport.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// Why a git operation failed; `stderr` is git's own explanation (never holds credentials: den
/// passes none in URLs).
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("git {operation} failed: {stderr}")]
    Failed {
        operation: &'static str,
        stderr: String,
    },
    #[error("git {operation} took longer than {seconds} s")]
    Timeout {
        operation: &'static str,
        seconds: u64,
    },
}

#[expect(
    clippy::disallowed_methods,
    reason = "den-sandbox is the crate that starts processes; host git runs here"
)]
fn git() -> Command {
    let mut command = Command::new("git");
    command
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env("HOME", "/nonexistent")
        .args([
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "core.fsmonitor=false",
        ])
        .args([
            "-c",
            "protocol.ext.allow=never",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(["-c", "user.name=den", "-c", "user.email=den@localhost"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// HTTP Basic credentials for a remote, given to git through its environment
/// (`GIT_CONFIG_*` setting `http.extraHeader`): never in the URL, the command line (other users
/// can read `/proc/*/cmdline`) or any config file. `Debug` never shows the password.
#[derive(Clone)]
pub struct HttpAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpAuth")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

fn with_auth(command: &mut Command, auth: Option<&HttpAuth>) {
    use base64::Engine;
    if let Some(auth) = auth {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", auth.username, auth.password));
        command
            .env("GIT_CONFIG_COUNT", "2")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env("GIT_CONFIG_VALUE_0", format!("Authorization: Basic {basic}"))
            // Empty resets any helper: git never asks one, nor prompts.
            .env("GIT_CONFIG_KEY_1", "credential.helper")
            .env("GIT_CONFIG_VALUE_1", "");
    }
}

async fn run(
    mut command: Command,
    operation: &'static str,
    timeout: Duration,
) -> Result<String, GitError> {
    let output = tokio::time::timeout(timeout, command.output())
        .await
        .map_err(|_| GitError::Timeout {
            operation,
            seconds: timeout.as_secs(),
        })?
        .map_err(GitError::Spawn)?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(GitError::Failed { operation, stderr });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Clones `source` (a URL or a local path) into `dest`, checks out `base_branch` (or the
/// default branch) and creates `work_branch` from it. Returns the base commit.
pub async fn clone_onto_branch(
    source: &str,
    dest: &Path,
    base_branch: Option<&str>,
    work_branch: &str,
    timeout: Duration,
) -> Result<String, GitError> {
    let commit = clone_at(source, None, dest, base_branch, timeout).await?;
    switch_to_new_branch(dest, work_branch, timeout).await?;
    Ok(commit)
}

/// The commit that `branch` (or, without one, the default branch) of `source` points at,
/// asked without cloning.
pub async fn remote_commit(
    source: &str,
    auth: Option<&HttpAuth>,
    branch: Option<&str>,
    timeout: Duration,
) -> Result<String, GitError> {
    let pattern = branch.map_or_else(|| "HEAD".to_owned(), |b| format!("refs/heads/{b}"));
    let mut ls_remote = git();
    with_auth(&mut ls_remote, auth);
    ls_remote.args(["ls-remote", "--", source, &pattern]);
    let listing = run(ls_remote, "ls-remote", timeout).await?;
    let commit = listing.split_whitespace().next().unwrap_or_default();
    if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        let what = branch.map_or_else(|| "a default branch".to_owned(), |b| format!("branch {b}"));
        return Err(GitError::Failed {
            operation: "ls-remote",
            stderr: format!("{source} has no {what}"),
        });
    }
    Ok(commit.to_owned())
}

/// Clones `source` into `dest` at `base_branch` (or the default branch), authenticating with
/// `auth` if given; returns the commit.
pub async fn clone_at(
    source: &str,
    auth: Option<&HttpAuth>,
    dest: &Path,
    base_branch: Option<&str>,
    timeout: Duration,
) -> Result<String, GitError> {
    let mut clone = git();
    with_auth(&mut clone, auth);
    clone.args(["clone", "--quiet", "--no-recurse-submodules"]);
    if let Some(branch) = base_branch {
        clone.args(["--branch", branch]);
    }
    // `--` ends the options: a source starting with `-` cannot become a flag.
    clone.arg("--").arg(source).arg(dest);
    run(clone, "clone", timeout).await?;
    let mut head = git();
    head.arg("-C").arg(dest).args(["rev-parse", "HEAD"]);
    run(head, "rev-parse", timeout).await
}

/// Creates `work_branch` at the checkout's current commit and switches to it.
pub async fn switch_to_new_branch(
    dest: &Path,
    work_branch: &str,
    timeout: Duration,
) -> Result<(), GitError> {
    let mut checkout = git();
    checkout
        .arg("-C")
        .arg(dest)
        .args(["checkout", "--quiet", "-b", work_branch]);
    run(checkout, "checkout", timeout).await?;
    Ok(())
}

/// Points remote `name` of the repository at `dir` (a checkout den made) at `url`.
pub async fn set_remote_url(
    dir: &Path,
    name: &str,
    url: &str,
    timeout: Duration,
) -> Result<(), GitError> {
    let mut set_url = git();
    set_url
        .arg("-C")
        .arg(dir)
        .args(["remote", "set-url", "--", name, url]);
    run(set_url, "remote set-url", timeout).await?;
    Ok(())
}

/// The commit `HEAD` of the repository at `dir` points at (a checkout den made; never a tree
/// the agent can write).
pub async fn head_commit(dir: &Path, timeout: Duration) -> Result<String, GitError> {
    let mut head = git();
    head.arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "HEAD"]);
    run(head, "rev-parse", timeout).await
}

/// Makes `dir` a repository on branch `main` with everything in it as one commit (for
/// benchmarks and demos that need a local repository).
pub async fn init_with_commit(dir: &Path, message: &str) -> Result<(), GitError> {
    let minute = Duration::from_secs(60);
    let mut init = git();
    init.arg("-C")
        .arg(dir)
        .args(["init", "-q", "--initial-branch=main"]);
    run(init, "init", minute).await?;
    let mut add = git();
    add.arg("-C").arg(dir).args(["add", "-A"]);
    run(add, "add", minute).await?;
    let mut commit = git();
    commit
        .arg("-C")
        .arg(dir)
        .args(["commit", "-q", "-m", message]);
    run(commit, "commit", minute).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn repo_with_commit(dir: &Path) {
        let mut init = git();
        init.arg("-C")
            .arg(dir)
            .args(["init", "--quiet", "--initial-branch=main"]);
        run(init, "init", Duration::from_secs(30)).await.unwrap();
        std::fs::write(dir.join("README.md"), "hello\n").unwrap();
        let mut add = git();
        add.arg("-C").arg(dir).args(["add", "."]);
        run(add, "add", Duration::from_secs(30)).await.unwrap();
        let mut commit = git();
        commit
            .arg("-C")
            .arg(dir)
            .args(["commit", "--quiet", "-m", "first"]);
        run(commit, "commit", Duration::from_secs(30))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn clones_onto_a_new_branch_without_running_hooks() {
        let source = tempfile::tempdir().unwrap();
        repo_with_commit(source.path()).await;
        // A hook that would leave a mark if git ran it.
        let marker = source.path().join("hook-ran");
        let hook = source.path().join(".git/hooks/post-checkout");
        std::fs::write(&hook, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();

        let dest = tempfile::tempdir().unwrap();
        let checkout = dest.path().join("work");
        let commit = clone_onto_branch(
            source.path().to_str().unwrap(),
            &checkout,
            Some("main"),
            "den/abc",
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert_eq!(commit.len(), 40);
        assert_eq!(
            std::fs::read_to_string(checkout.join("README.md")).unwrap(),
            "hello\n"
        );
        let head = std::fs::read_to_string(checkout.join(".git/HEAD")).unwrap();
        assert_eq!(head.trim(), "ref: refs/heads/den/abc");
        assert!(!marker.exists(), "a repository hook ran on the host");
    }

    #[tokio::test]
    async fn a_missing_repository_or_branch_is_a_clear_error() {
        let dest = tempfile::tempdir().unwrap();
        let err = clone_onto_branch(
            "/nonexistent/repo",
            &dest.path().join("a"),
            None,
            "den/x",
            Duration::from_secs(60),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                GitError::Failed {
                    operation: "clone",
                    ..
                }
            ),
            "{err}"
        );
        let source = tempfile::tempdir().unwrap();
        repo_with_commit(source.path()).await;
        let err = clone_onto_branch(
            source.path().to_str().unwrap(),
            &dest.path().join("b"),
            Some("nope"),
            "den/x",
            Duration::from_secs(60),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
