//! den-git: git on the host, for the steps that must not run inside the agent's sandbox (cloning, and
//! later pushing with credentials the agent never sees).
//!
//! Every call disables what would let a repository run code on the host: hooks, fsmonitor,
//! the system and global config files, credential helpers and prompts, submodule recursion,
//! bundle URIs, every transport but http(s) and (for the admin's local roots) file, and checks
//! every object received (`transfer.fsckObjects`). Only clones and bare repositories den
//! made, or the admin's local roots, are ever touched: never a tree an agent wrote. Filters
//! and diff drivers come from config only, which a fresh clone's is den's; host git never
//! diffs (the diff runs inside the sandbox).
//!
//! A remote URL is reached under the sandbox's egress rules ([`EgressPolicy`]): its host is
//! resolved and every address checked here, then git is told to use exactly those addresses
//! (curl's resolve list, so a second lookup cannot be answered differently: DNS rebinding) and
//! to follow no redirect (nor http-alternates, which git treats alike), so it cannot be sent
//! to another host. Only http(s) is allowed for a URL; local paths are the caller's to check.

pub mod receive_pack;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use den_sandbox::egress::{EgressPolicy, EgressRefusal, ip_literal};

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
    /// The repository's host is one the egress rules forbid; nothing was sent to it.
    #[error("den does not fetch from {url}: {refusal}")]
    Refused {
        url: String,
        #[source]
        refusal: EgressRefusal,
    },
    #[error("{url} is not an http(s) URL or an absolute local path")]
    NotARemote { url: String },
    #[error("git {operation} took longer than {seconds} s")]
    Timeout {
        operation: &'static str,
        seconds: u64,
    },
}

#[expect(
    clippy::disallowed_methods,
    reason = "den-git runs host git (ARCHITECTURE.md: the crates that start processes)"
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
        // Protocols named in a repository (submodule URLs, remotes) are never trusted.
        .env("GIT_PROTOCOL_FROM_USER", "0")
        .args([
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "core.fsmonitor=false",
            // Nothing recursed into, nothing fetched from a URL a server suggests, and every
            // object checked as it arrives (the malformed-`.gitmodules` CVEs are caught here).
            "-c",
            "submodule.recurse=false",
            "-c",
            "transfer.bundleURI=false",
            "-c",
            "transfer.fsckObjects=true",
            // No helper or program a repository's config could name.
            "-c",
            "credential.helper=",
            "-c",
            "core.sshCommand=false",
            "-c",
            "diff.external=",
        ])
        .args([
            "-c",
            "protocol.allow=never",
            "-c",
            "protocol.ext.allow=never",
            // Local paths are the admin's local roots; remote URLs turn it off (`confinement`).
            "-c",
            "protocol.file.allow=always",
            // Never to another host than the one checked (also stops http-alternates).
            "-c",
            "http.followRedirects=false",
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

/// The extra git options that confine a fetch from `source`: none for a local path; for an
/// http(s) URL, its host's addresses (checked against `egress`) pinned, and no other protocol.
async fn confinement(source: &str, egress: &EgressPolicy) -> Result<Vec<String>, GitError> {
    if source.starts_with('/') {
        return Ok(Vec::new());
    }
    let not_a_remote = || GitError::NotARemote {
        url: source.to_owned(),
    };
    let url = url::Url::parse(source).map_err(|_| not_a_remote())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(not_a_remote());
    }
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return Err(not_a_remote());
    };
    let addresses = egress
        .resolve(host, port)
        .await
        .map_err(|refusal| GitError::Refused {
            url: source.to_owned(),
            refusal,
        })?;
    let mut args: Vec<String> = [
        "protocol.allow=never",
        "protocol.http.allow=always",
        "protocol.https.allow=always",
        "protocol.file.allow=never",
    ]
    .iter()
    .flat_map(|c| ["-c".to_owned(), (*c).to_owned()])
    .collect();
    if ip_literal(host).is_none() {
        args.extend(pinning(host, port, &addresses));
    }
    Ok(args)
}

/// Options that make git (curl) connect to `host:port` at exactly `addresses`, without a
/// lookup of its own.
fn pinning(host: &str, port: u16, addresses: &[std::net::IpAddr]) -> Vec<String> {
    let pinned: Vec<String> = addresses
        .iter()
        .map(|a| match a {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            std::net::IpAddr::V4(v4) => v4.to_string(),
        })
        .collect();
    // curl looks the name up as written; pin it with and without a trailing dot.
    let mut names = vec![host.to_owned(), host.trim_end_matches('.').to_owned()];
    names.dedup();
    names
        .into_iter()
        .flat_map(|name| {
            [
                "-c".to_owned(),
                format!("http.curloptResolve={name}:{port}:{}", pinned.join(",")),
            ]
        })
        .collect()
}

/// Clones `source` (a URL or a local path) into `dest`, checks out `base_branch` (or the
/// default branch) and creates `work_branch` from it. Returns the base commit.
pub async fn clone_onto_branch(
    source: &str,
    dest: &Path,
    base_branch: Option<&str>,
    work_branch: &str,
    egress: &EgressPolicy,
    timeout: Duration,
) -> Result<String, GitError> {
    let commit = clone_at(source, None, dest, base_branch, egress, timeout).await?;
    switch_to_new_branch(dest, work_branch, timeout).await?;
    Ok(commit)
}

/// The commit that `branch` (or, without one, the default branch) of `source` points at,
/// asked without cloning.
pub async fn remote_commit(
    source: &str,
    auth: Option<&HttpAuth>,
    branch: Option<&str>,
    egress: &EgressPolicy,
    timeout: Duration,
) -> Result<String, GitError> {
    let pattern = branch.map_or_else(|| "HEAD".to_owned(), |b| format!("refs/heads/{b}"));
    let mut ls_remote = git();
    with_auth(&mut ls_remote, auth);
    ls_remote
        .args(confinement(source, egress).await?)
        .args(["ls-remote", "--", source, &pattern]);
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

/// A repository's branches as its remote advertises them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBranches {
    /// The branch `HEAD` names, when the remote says.
    pub default_branch: Option<String>,
    /// Every branch name, sorted.
    pub branches: Vec<String>,
}

/// The branches of `source` (an http(s) URL under the egress rules, or a local path the caller
/// checked), asked with `ls-remote`: nothing is cloned or checked out, so nothing of the
/// repository runs.
pub async fn remote_branches(
    source: &str,
    auth: Option<&HttpAuth>,
    egress: &EgressPolicy,
    timeout: Duration,
) -> Result<RemoteBranches, GitError> {
    let mut ls_remote = git();
    with_auth(&mut ls_remote, auth);
    ls_remote.args(confinement(source, egress).await?).args([
        "ls-remote",
        "--symref",
        "--",
        source,
        "HEAD",
        "refs/heads/*",
    ]);
    let listing = run(ls_remote, "ls-remote", timeout).await?;
    Ok(parse_branches(&listing))
}

fn parse_branches(listing: &str) -> RemoteBranches {
    let mut default_branch = None;
    let mut branches = Vec::new();
    for line in listing.lines() {
        let Some((left, name)) = line.split_once('\t') else {
            continue;
        };
        if let Some(target) = left.strip_prefix("ref: ") {
            if name == "HEAD" {
                default_branch = target.strip_prefix("refs/heads/").map(str::to_owned);
            }
        } else if let Some(branch) = name.strip_prefix("refs/heads/") {
            branches.push(branch.to_owned());
        }
    }
    branches.sort();
    branches.dedup();
    RemoteBranches {
        default_branch,
        branches,
    }
}

/// Clones `source` into `dest` at `base_branch` (or the default branch), authenticating with
/// `auth` if given; returns the commit.
pub async fn clone_at(
    source: &str,
    auth: Option<&HttpAuth>,
    dest: &Path,
    base_branch: Option<&str>,
    egress: &EgressPolicy,
    timeout: Duration,
) -> Result<String, GitError> {
    let mut clone = git();
    with_auth(&mut clone, auth);
    clone.args(confinement(source, egress).await?).args([
        "clone",
        "--quiet",
        "--no-recurse-submodules",
        // A local path goes through git's transport too, not hard links or a copy of its
        // object files: every object is checked (`transfer.fsckObjects`), and none of the
        // local-clone CVEs (2024-32004/32020/32021) applies.
        "--no-local",
    ]);
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

/// Removes what a clone remembers of where it came from (the `origin` remote and the reflog's
/// "clone: from <source>"), so a checkout shown to a sandbox says nothing of the host's paths
/// or the repository's address; the caller keeps the source in its own records.
pub async fn forget_source(dest: &Path, timeout: Duration) -> Result<(), GitError> {
    let mut remote = git();
    remote
        .arg("-C")
        .arg(dest)
        .args(["remote", "remove", "origin"]);
    run(remote, "remote remove", timeout).await?;
    match tokio::fs::remove_dir_all(dest.join(".git/logs")).await {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(GitError::Failed {
            operation: "forget the reflog",
            stderr: err.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Adds remote `name` pointing at `url` to the repository at `dir` (a checkout den made, whose
/// own remote [`forget_source`] removed).
pub async fn add_remote(
    dir: &Path,
    name: &str,
    url: &str,
    timeout: Duration,
) -> Result<(), GitError> {
    let mut set_url = git();
    set_url
        .arg("-C")
        .arg(dir)
        .args(["remote", "add", "--", name, url]);
    run(set_url, "remote add", timeout).await?;
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
            &EgressPolicy::default(),
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

    #[test]
    fn branches_and_the_default_are_read_from_ls_remote_symref() {
        let listing = "ref: refs/heads/trunk\tHEAD\n\
                       1111111111111111111111111111111111111111\tHEAD\n\
                       2222222222222222222222222222222222222222\trefs/heads/trunk\n\
                       3333333333333333333333333333333333333333\trefs/heads/feature/x\n";
        assert_eq!(
            parse_branches(listing),
            RemoteBranches {
                default_branch: Some("trunk".to_owned()),
                branches: vec!["feature/x".to_owned(), "trunk".to_owned()],
            }
        );
        assert_eq!(parse_branches("").default_branch, None);
    }

    #[tokio::test]
    async fn a_local_repository_lists_its_branches_and_default() {
        let source = tempfile::tempdir().unwrap();
        repo_with_commit(source.path()).await;
        let mut branch = git();
        branch
            .arg("-C")
            .arg(source.path())
            .args(["branch", "feature"]);
        run(branch, "branch", Duration::from_secs(30))
            .await
            .unwrap();
        let listed = remote_branches(
            source.path().to_str().unwrap(),
            None,
            &EgressPolicy::default(),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        assert_eq!(listed.default_branch.as_deref(), Some("main"));
        assert_eq!(listed.branches, ["feature", "main"]);
    }

    #[tokio::test]
    async fn a_missing_repository_or_branch_is_a_clear_error() {
        let dest = tempfile::tempdir().unwrap();
        let err = clone_onto_branch(
            "/nonexistent/repo",
            &dest.path().join("a"),
            None,
            "den/x",
            &EgressPolicy::default(),
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
            &EgressPolicy::default(),
            Duration::from_secs(60),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    /// A listener that must never be contacted; `untouched` says whether anything connected.
    struct Target(std::net::TcpListener);

    impl Target {
        fn bind(address: &str) -> Self {
            let listener = std::net::TcpListener::bind(address).unwrap();
            listener.set_nonblocking(true).unwrap();
            Self(listener)
        }
        fn port(&self) -> u16 {
            self.0.local_addr().unwrap().port()
        }
        /// git has exited when this is asked, so any connection it made is already queued.
        fn untouched(&self) -> bool {
            matches!(self.0.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        }
    }

    /// A name this host's /etc/hosts maps to a loopback address, other than the well-known
    /// local names (which are refused by name alone).
    fn a_name_for_loopback() -> String {
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap();
        hosts
            .lines()
            .filter_map(|line| {
                let mut words = line.split('#').next()?.split_whitespace();
                let address: std::net::IpAddr = words.next()?.parse().ok()?;
                address.is_loopback().then_some(words)
            })
            .flatten()
            .find(|name| {
                !name.contains("localhost") && !name.starts_with("ip6-") && !name.contains(':')
            })
            .expect("this test needs /etc/hosts to map a name (e.g. the host name) to loopback")
            .to_owned()
    }

    #[tokio::test]
    async fn a_forbidden_remote_is_refused_and_never_contacted() {
        let v4 = Target::bind("127.0.0.1:0");
        let v6 = Target::bind("[::1]:0");
        let (p4, p6) = (v4.port(), v6.port());
        let name = a_name_for_loopback();
        let own = den_sandbox::egress::this_host_addresses()
            .into_iter()
            .find(|a| a.is_ipv4() && !a.is_loopback())
            .map(|a| format!("http://{a}:{p4}/x.git"));
        let mut urls = vec![
            format!("http://127.0.0.1:{p4}/x.git"),
            format!("http://localhost:{p4}/x.git"),
            format!("http://localhost.:{p4}/x.git"),
            format!("http://2130706433:{p4}/x.git"),
            format!("http://0x7f000001:{p4}/x.git"),
            format!("http://[::ffff:127.0.0.1]:{p4}/x.git"),
            format!("http://[::1]:{p6}/x.git"),
            format!("http://{name}:{p4}/x.git"),
            "http://10.0.0.1/x.git".to_owned(),
            "http://172.16.0.1/x.git".to_owned(),
            "http://192.168.0.1/x.git".to_owned(),
            "http://169.254.169.254/latest/meta-data".to_owned(),
            "http://[fd00::1]/x.git".to_owned(),
        ];
        urls.extend(own);
        let policy = EgressPolicy::default();
        for url in urls {
            let err = remote_commit(&url, None, None, &policy, Duration::from_secs(30))
                .await
                .unwrap_err();
            assert!(matches!(err, GitError::Refused { .. }), "{url}: {err}");
            assert!(err.to_string().contains("den does not fetch"), "{err}");
            let dest = tempfile::tempdir().unwrap();
            let err = clone_at(
                &url,
                None,
                &dest.path().join("c"),
                None,
                &policy,
                Duration::from_secs(30),
            )
            .await
            .unwrap_err();
            assert!(matches!(err, GitError::Refused { .. }), "{url}: {err}");
        }
        assert!(
            v4.untouched() && v6.untouched(),
            "a forbidden address was contacted"
        );
    }

    #[tokio::test]
    async fn a_redirect_from_an_allowed_server_to_a_forbidden_one_is_not_followed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let forbidden = Target::bind("127.0.0.1:0");
        let to = format!(
            "http://127.0.0.1:{}/x.git/info/refs?service=git-upload-pack",
            forbidden.port()
        );
        let allowed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let allowed_port = allowed.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = allowed.accept().await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        let policy = EgressPolicy {
            allowed_hosts: vec![format!("127.0.0.1:{allowed_port}").parse().unwrap()],
            ..EgressPolicy::default()
        };
        let url = format!("http://127.0.0.1:{allowed_port}/x.git");
        let err = remote_commit(&url, None, None, &policy, Duration::from_secs(30))
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::Failed { .. }), "{err}");
        let dest = tempfile::tempdir().unwrap();
        clone_at(
            &url,
            None,
            &dest.path().join("c"),
            None,
            &policy,
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
        server.abort();
        assert!(
            forbidden.untouched(),
            "git followed the redirect to a forbidden address"
        );
    }

    #[tokio::test]
    async fn only_http_urls_and_absolute_paths_are_sources() {
        for source in ["ext::sh -c touch% /tmp/x", "file:///etc", "relative/repo"] {
            let err = remote_commit(
                source,
                None,
                None,
                &EgressPolicy::default(),
                Duration::from_secs(30),
            )
            .await
            .unwrap_err();
            assert!(
                matches!(err, GitError::NotARemote { .. }),
                "{source}: {err}"
            );
        }
    }

    /// The pin is what git connects to: a name no resolver knows reaches the pinned address,
    /// so a second, different answer from DNS (rebinding) could not redirect git.
    #[tokio::test]
    async fn git_connects_only_to_the_pinned_address() {
        let pinned = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = pinned.local_addr().unwrap().port();
        let mut ls_remote = git();
        ls_remote
            .args(pinning(
                "den-pin.invalid",
                port,
                &["127.0.0.1".parse().unwrap()],
            ))
            // What `confinement` allows for a URL (host git allows no protocol by default).
            .args(["-c", "protocol.http.allow=always"])
            .args([
                "ls-remote",
                "--",
                &format!("http://den-pin.invalid:{port}/x.git"),
            ]);
        let git_run = tokio::spawn(run(ls_remote, "ls-remote", Duration::from_secs(30)));
        let (connection, _) = tokio::time::timeout(Duration::from_secs(30), pinned.accept())
            .await
            .expect("git did not connect to the pinned address")
            .unwrap();
        drop(connection);
        assert!(git_run.await.unwrap().is_err());
    }
}
