//! A session's checkout on the host, the OpenCode config its sandbox gets, and the spec.

use std::path::{Path, PathBuf};

use crate::agent_sandbox::{base_config, opencode_spec};
use den_git::HttpAuth;
use den_sandbox::probe::BasicAuth;
use den_sandbox::{Forward, SandboxSpec};
use den_store::{ModelEndpointRecord, SessionRecord};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::catalog::{ENDPOINT_PREFIX, ModelSpec, ProviderKind};
use crate::config::{GATEWAY_PORT, GIT_GATEWAY_PORT, SessionConfig};
use crate::error::{Result, SessionError};

/// The session's base checkout: the read-only lower layer of each of its sandboxes.
pub(crate) fn checkout_dir(config: &SessionConfig, session_id: Uuid) -> PathBuf {
    config
        .workspaces_dir
        .join(session_id.to_string())
        .join("checkout")
}

pub(crate) fn snapshots_dir(config: &SessionConfig, session_id: Uuid) -> PathBuf {
    config.snapshots_dir.join(session_id.to_string())
}

/// The session's checkout on its work branch, made unless it exists already (a sandbox never
/// writes to it, so it is still the pristine base).
///
/// Cloning a large working tree is the slow part of starting a session (seconds for tens of
/// megabytes on a plain disk), so den keeps one pristine clone per (repository, commit) and
/// makes each session's checkout from it with hard links: its files are never written in place
/// (sandboxes see them read-only under an overlay; git replaces what it changes with new
/// files). Only `.git`'s small files are copied, so a session's branch never touches the cache.
pub(crate) async fn ensure_checkout(
    config: &SessionConfig,
    record: &SessionRecord,
    auth: Option<&HttpAuth>,
) -> Result<PathBuf> {
    let checkout = checkout_dir(config, record.id);
    if checkout.join(".git").exists() {
        return Ok(checkout);
    }
    let parent = checkout
        .parent()
        .unwrap_or(&config.workspaces_dir)
        .to_path_buf();
    tokio::fs::create_dir_all(&parent).await?;
    let pristine = pristine_checkout(config, record, auth).await?;
    // Built under a temporary name and renamed, so a failure never looks like a checkout.
    let partial = parent.join("checkout.partial");
    let _ = tokio::fs::remove_dir_all(&partial).await;
    let (from, to) = (pristine.clone(), partial.clone());
    tokio::task::spawn_blocking(move || link_tree(&from, &to, false))
        .await
        .map_err(|err| SessionError::Io(std::io::Error::other(err.to_string())))??;
    den_git::switch_to_new_branch(&partial, &record.work_branch, config.clone_timeout).await?;
    // The sandbox sees this checkout: nothing in it may tell where the repository lives.
    den_git::forget_source(&partial, config.clone_timeout).await?;
    if uses_git_gateway(config, record) {
        // The sandbox fetches and pushes through den, which holds the person's credential.
        den_git::add_remote(&partial, "origin", &git_gateway_url(), config.clone_timeout).await?;
    }
    tokio::fs::rename(&partial, &checkout).await?;
    Ok(checkout)
}

/// A fork's checkout: a copy of its source's (files hard-linked, `.git`'s own files copied, as
/// for any checkout), switched to the fork's work branch. Same base commit, same remote.
pub(crate) async fn copy_checkout(
    config: &SessionConfig,
    source_checkout: &Path,
    fork: &SessionRecord,
) -> Result<PathBuf> {
    let checkout = checkout_dir(config, fork.id);
    let parent = checkout
        .parent()
        .unwrap_or(&config.workspaces_dir)
        .to_path_buf();
    tokio::fs::create_dir_all(&parent).await?;
    let partial = parent.join("checkout.partial");
    let _ = tokio::fs::remove_dir_all(&partial).await;
    let (from, to) = (source_checkout.to_path_buf(), partial.clone());
    tokio::task::spawn_blocking(move || link_tree(&from, &to, false))
        .await
        .map_err(|err| SessionError::Io(std::io::Error::other(err.to_string())))??;
    den_git::switch_to_new_branch(&partial, &fork.work_branch, config.clone_timeout).await?;
    tokio::fs::rename(&partial, &checkout).await?;
    Ok(checkout)
}

/// Whether the session's sandbox reaches its remote through den's git gateway: when den runs
/// one and the repository is on an http(s) host.
pub(crate) fn uses_git_gateway(config: &SessionConfig, record: &SessionRecord) -> bool {
    config.git_gateway_socket.is_some()
        && (record.repository.starts_with("https://") || record.repository.starts_with("http://"))
}

/// The host (lowercase `name[:port]`) of an http(s) repository URL, as credentials are keyed.
pub(crate) fn http_host(repository: &str) -> Option<String> {
    let rest = repository
        .strip_prefix("https://")
        .or_else(|| repository.strip_prefix("http://"))?;
    let authority = rest.split('/').next().filter(|a| !a.is_empty())?;
    Some(authority.to_ascii_lowercase())
}

/// `origin` inside the sandbox.
pub(crate) fn git_gateway_url() -> String {
    format!("http://127.0.0.1:{GIT_GATEWAY_PORT}/repository.git")
}

/// `~/.gitconfig` of a sandbox using the git gateway: git sends the session's token to it (and
/// only to it). This is den's session token, never the person's credential.
fn git_gateway_config(gateway_token: &str) -> Vec<u8> {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("den:{gateway_token}"));
    format!(
        "[http \"http://127.0.0.1:{GIT_GATEWAY_PORT}/\"]\n\textraHeader = Authorization: Basic {basic}\n"
    )
    .into_bytes()
}

/// The cached clone of the session's repository at its base commit, cloned if missing.
async fn pristine_checkout(
    config: &SessionConfig,
    record: &SessionRecord,
    auth: Option<&HttpAuth>,
) -> Result<PathBuf> {
    let source = &record.repository;
    let base = record.base_branch.as_deref();
    let egress = config.repository_egress();
    // Asked with the person's credential: a clone cached for someone else is used only by
    // those the remote lets see the commit.
    let commit = den_git::remote_commit(source, auth, base, &egress, config.clone_timeout).await?;
    let cache = config.workspaces_dir.join("cache");
    let source_key = &token_hash(source)[..16];
    let cached = cache.join(format!("{source_key}-{commit}"));
    if cached.join(".git").exists() {
        return Ok(cached);
    }
    tokio::fs::create_dir_all(&cache).await?;
    // A name of its own, so two sessions cloning the same commit at once do not collide.
    let partial = cache.join(format!("{source_key}-{}.partial", random_secret()?));
    let cloned =
        den_git::clone_at(source, auth, &partial, base, &egress, config.clone_timeout).await;
    let commit = match cloned {
        Ok(commit) => commit,
        Err(err) => {
            let _ = tokio::fs::remove_dir_all(&partial).await;
            return Err(err.into());
        }
    };
    // The branch may have moved since the question: name the clone by what it holds.
    let cached = cache.join(format!("{source_key}-{commit}"));
    if tokio::fs::rename(&partial, &cached).await.is_err() {
        // Another session made the same clone first; use that one.
        let _ = tokio::fs::remove_dir_all(&partial).await;
    }
    Ok(cached)
}

/// Recreates the tree `from` at `to`: directories made, symlinks copied, files hard-linked,
/// except `.git`'s own files outside `objects/` (small, and rewritten by git), which are copied.
fn link_tree(
    from: &std::path::Path,
    to: &std::path::Path,
    copy_files: bool,
) -> std::io::Result<()> {
    std::fs::create_dir(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            let name = entry.file_name();
            let copy_inside = if copy_files {
                name != "objects"
            } else {
                name == ".git"
            };
            link_tree(&source, &target, copy_inside)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
        } else if copy_files {
            std::fs::copy(&source, &target)?;
        } else {
            std::fs::hard_link(&source, &target)?;
        }
    }
    Ok(())
}

/// A random secret, hex.
pub(crate) fn random_secret() -> Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|err| SessionError::Io(std::io::Error::other(err.to_string())))?;
    Ok(hex::encode(bytes))
}

pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// OpenCode's config: den's providers and the owner's own endpoints, each reached through the
/// gateway with the session's gateway token as its "API key" (the real keys stay in den), only
/// those providers enabled, and the session's model.
pub(crate) fn opencode_config(
    config: &SessionConfig,
    model: &str,
    gateway_token: &str,
    endpoints: &[ModelEndpointRecord],
) -> serde_json::Value {
    let mut value = base_config();
    let mut providers = serde_json::Map::new();
    for provider in config.catalog.providers() {
        let models = provider
            .models
            .iter()
            .map(|m| (m.id.clone(), model_entry(m)))
            .collect();
        providers.insert(
            provider.name.clone(),
            provider_entry(
                provider.kind,
                &provider.name,
                &provider.display_name,
                gateway_token,
                models,
            ),
        );
    }
    for endpoint in endpoints {
        let name = format!("{ENDPOINT_PREFIX}{}", endpoint.name);
        let models = endpoint
            .models
            .iter()
            .map(|m| (m.clone(), model_entry(&ModelSpec::named(m))))
            .collect();
        providers.insert(
            name.clone(),
            provider_entry(
                ProviderKind::OpenAiCompatible,
                &name,
                &endpoint.name,
                gateway_token,
                models,
            ),
        );
    }
    let enabled: Vec<serde_json::Value> = providers.keys().map(|k| k.clone().into()).collect();
    if let Some(object) = value.as_object_mut() {
        object.insert("provider".to_owned(), serde_json::Value::Object(providers));
        // Only den's providers: OpenCode's others would bypass the gateway.
        object.insert("enabled_providers".to_owned(), enabled.into());
        object.insert("model".to_owned(), model.into());
        // Titles and summaries use the small model; the session's model keeps them on the one
        // model the gateway lets this session use.
        object.insert("small_model".to_owned(), model.into());
    }
    value
}

fn provider_entry(
    kind: ProviderKind,
    id: &str,
    name: &str,
    gateway_token: &str,
    models: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    let mut entry = serde_json::json!({
        "name": name,
        "options": {
            "baseURL": format!("http://127.0.0.1:{GATEWAY_PORT}/v1/{id}"),
            "apiKey": gateway_token,
        },
        "models": models,
    });
    if let (Some(npm), Some(object)) = (kind.npm_package(), entry.as_object_mut()) {
        object.insert("npm".to_owned(), npm.into());
    }
    entry
}

/// A model as OpenCode's config declares it: den's prices and limits, so OpenCode's bundled
/// catalog (which lacks or misprices some of them) does not decide.
fn model_entry(model: &ModelSpec) -> serde_json::Value {
    let mut entry = serde_json::json!({"name": model.name, "tool_call": true});
    if let Some(price) = model.price {
        let mut cost = serde_json::json!({"input": price.input, "output": price.output});
        if let Some(read) = price.cache_read {
            cost["cache_read"] = read.into();
        }
        if let Some(write) = price.cache_write {
            cost["cache_write"] = write.into();
        }
        entry["cost"] = cost;
    }
    if let (Some(context), Some(output)) = (model.context, model.output) {
        entry["limit"] = serde_json::json!({"context": context, "output": output});
    }
    entry
}

/// Where the session's own OpenCode config (its providers with the session's gateway token,
/// its model) lives, relative to HOME. OpenCode reads the file `OPENCODE_CONFIG` names each time
/// it opens a project, whereas it reads its global config once per process: so a sandbox
/// booted before its session was known (den's warm pool) still gets the session's config.
pub(crate) const SESSION_CONFIG_PATH: &str = ".config/den/opencode.json";

/// OpenCode's environment for what a sandboxed session does not need, each costing memory or
/// CPU in every idle sandbox (measured by `den bench session`): the file watcher (den reads
/// changes with git after each turn), language server downloads (no network is assumed),
/// the default plugins (providers' sign-in flows: den's gateway holds the keys), Claude Code's
/// and external skill folders (none in a sandbox's HOME), and the embedded web UI.
pub(crate) const IDLE_COST_ENV: [(&str, &str); 6] = [
    ("OPENCODE_EXPERIMENTAL_DISABLE_FILEWATCHER", "1"),
    ("OPENCODE_DISABLE_LSP_DOWNLOAD", "1"),
    ("OPENCODE_DISABLE_DEFAULT_PLUGINS", "1"),
    ("OPENCODE_DISABLE_CLAUDE_CODE", "1"),
    ("OPENCODE_DISABLE_EXTERNAL_SKILLS", "1"),
    ("OPENCODE_DISABLE_EMBEDDED_WEB_UI", "1"),
];

/// The spec of a sandbox running OpenCode for den, with nothing of any session in it: den's
/// base config as OpenCode's global config, the model gateway (and with `git_gateway`, the
/// git gateway) forwarded in, the host's limits. The session's own files come from
/// [`session_files`], at create or when the workspace is attached.
pub(crate) fn agent_spec(
    config: &SessionConfig,
    workspace: &Path,
    auth: &BasicAuth,
    git_gateway: bool,
) -> SandboxSpec {
    let mut spec = opencode_spec(workspace, &config.opencode_bin, auth, &base_config());
    if let (Some(socket), true) = (&config.git_gateway_socket, git_gateway) {
        spec.forwards.push(Forward {
            sandbox_port: GIT_GATEWAY_PORT,
            host_socket: socket.clone(),
        });
    }
    spec.limits = config.limits;
    spec.lifetime = config.lifetime;
    spec.network = config.network;
    // den declares every model itself: no catalog refresh may change them mid-session.
    spec.env
        .insert("OPENCODE_DISABLE_MODELS_FETCH".into(), "1".into());
    spec.env.insert(
        "OPENCODE_CONFIG".into(),
        format!("{}/{SESSION_CONFIG_PATH}", den_sandbox::HOME_DIR),
    );
    if config.lean_agent {
        for (name, value) in IDLE_COST_ENV {
            spec.env.insert(name.into(), value.into());
        }
    }
    spec.forwards.push(Forward {
        sandbox_port: GATEWAY_PORT,
        host_socket: config.gateway_socket.clone(),
    });
    spec
}

/// The session's files in its sandbox's HOME: its OpenCode config and, with
/// `git_gateway_token`, git's setup to authenticate to the git gateway.
pub(crate) fn session_files(
    opencode_config: &serde_json::Value,
    git_gateway_token: Option<&str>,
) -> Vec<den_sandbox::HomeFile> {
    let mut files = vec![den_sandbox::HomeFile {
        path: SESSION_CONFIG_PATH.into(),
        contents: opencode_config.to_string().into_bytes(),
        mode: 0o600,
    }];
    if let Some(token) = git_gateway_token {
        files.push(den_sandbox::HomeFile {
            path: ".gitconfig".into(),
            contents: git_gateway_config(token),
            mode: 0o600,
        });
    }
    files
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn record(repository: &str, work_branch: &str) -> SessionRecord {
        let now = den_store::now();
        SessionRecord {
            id: Uuid::now_v7(),
            owner_id: Uuid::now_v7(),
            title: "t".into(),
            repository: repository.into(),
            base_branch: None,
            work_branch: work_branch.into(),
            model: "m/n".into(),
            status: "idle".into(),
            error: None,
            agent_session_id: None,
            snapshot_id: None,
            created_at: now,
            updated_at: now,
            last_activity_at: now,
            approval_mode: "auto".into(),
        }
    }

    #[tokio::test]
    async fn sessions_of_one_commit_share_its_files_but_not_their_branches() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::write(repo.path().join("README.md"), "hello\n").unwrap();
        den_git::init_with_commit(repo.path(), "first")
            .await
            .unwrap();
        let data = tempfile::tempdir().unwrap();
        let config =
            SessionConfig::new(data.path(), data.path().join("gw.sock"), "opencode".into());
        let source = repo.path().display().to_string();

        let first = ensure_checkout(&config, &record(&source, "den/aaaa0001"), None)
            .await
            .unwrap();
        let second = ensure_checkout(&config, &record(&source, "den/bbbb0002"), None)
            .await
            .unwrap();
        let head = |dir: &std::path::Path| std::fs::read_to_string(dir.join(".git/HEAD")).unwrap();
        assert_nothing_names(&first, &source);
        assert_eq!(head(&first).trim(), "ref: refs/heads/den/aaaa0001");
        assert_eq!(head(&second).trim(), "ref: refs/heads/den/bbbb0002");
        let inode = |dir: &std::path::Path| std::fs::metadata(dir.join("README.md")).unwrap().ino();
        assert_eq!(
            inode(&first),
            inode(&second),
            "the working tree is shared, not copied"
        );
        let caches: Vec<_> = std::fs::read_dir(config.workspaces_dir.join("cache"))
            .unwrap()
            .collect();
        assert_eq!(caches.len(), 1, "one pristine clone for one commit");
        let cache = caches[0].as_ref().unwrap().path();
        assert!(
            head(&cache).contains("refs/heads/main"),
            "sessions' branches never reach the cache"
        );
        assert!(!cache.join(".git/refs/heads/den").exists());

        // A new commit gets its own clone.
        std::fs::write(repo.path().join("README.md"), "changed\n").unwrap();
        den_git::init_with_commit(repo.path(), "second").await.ok();
        let third = ensure_checkout(&config, &record(&source, "den/cccc0003"), None)
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(third.join("README.md")).unwrap(),
            "changed\n"
        );
        assert_eq!(
            std::fs::read_to_string(first.join("README.md")).unwrap(),
            "hello\n"
        );
    }

    /// A repository whose name resolves to this machine passes the checks at creation (the
    /// URL alone cannot tell) and is refused when den fetches it, with an error that says why,
    /// before anything is sent.
    #[tokio::test]
    async fn a_repository_that_resolves_to_this_machine_is_refused_when_fetched() {
        let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        target.set_nonblocking(true).unwrap();
        let port = target.local_addr().unwrap().port();
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap();
        let name = hosts
            .lines()
            .filter_map(|line| {
                let mut words = line.split('#').next()?.split_whitespace();
                let address: std::net::IpAddr = words.next()?.parse().ok()?;
                address.is_loopback().then_some(words)
            })
            .flatten()
            .find(|name| !name.contains("localhost") && !name.starts_with("ip6-"))
            .expect("this test needs /etc/hosts to map a name (e.g. the host name) to loopback")
            .to_owned();
        let data = tempfile::tempdir().unwrap();
        let config =
            SessionConfig::new(data.path(), data.path().join("gw.sock"), "opencode".into());
        let url = format!("http://{name}:{port}/x.git");
        config.repository_egress().check_host(&name, port).unwrap();
        let err = ensure_checkout(&config, &record(&url, "den/dddd0004"), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("den does not fetch from") && err.contains("a loopback address"),
            "{err}"
        );
        assert!(
            matches!(target.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "the repository's address was contacted"
        );
    }

    /// No file of the checkout outside the objects mentions `text` (the repository's host path).
    fn assert_nothing_names(dir: &std::path::Path, text: &str) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.ends_with(".git/objects") {
                continue;
            }
            if path.is_dir() {
                assert_nothing_names(&path, text);
            } else if let Ok(contents) = std::fs::read(&path) {
                assert!(
                    !String::from_utf8_lossy(&contents).contains(text),
                    "{} names the repository's source {text}",
                    path.display()
                );
            }
        }
    }
}
