//! Input rules shared by routes and the CLI. Each returns a message fit to show the user.

use std::path::{Path, PathBuf};

use den_session::EgressPolicy;

/// A label such as a session title or token name: 1 to `max` characters, not only spaces, no
/// control characters. Returns the trimmed text.
pub(crate) fn label(field: &str, text: &str, max: usize) -> Result<String, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(format!("{field} must have at most {max} characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(format!("{field} must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// A username: 1 to 64 of `a-z A-Z 0-9 . _ -`, starting with a letter or digit.
pub(crate) fn username(name: &str) -> Result<(), String> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if name.is_empty() || name.len() > 64 || !valid_chars || !starts_well {
        return Err("username must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit".to_owned());
    }
    Ok(())
}

/// A model id `provider/model`.
pub(crate) fn model(model: &str) -> Result<(), String> {
    let valid_chars = model
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':'));
    let shaped = model
        .split_once('/')
        .is_some_and(|(provider, id)| !provider.is_empty() && !id.is_empty());
    if model.len() > 200 || !valid_chars || !shaped {
        return Err("model must look like provider/model, e.g. opencode/gpt-5-nano".to_owned());
    }
    Ok(())
}

/// The longest provider key accepted (real keys are far shorter; this bounds what is sealed).
pub(crate) const MAX_KEY_CHARS: usize = 1024;

/// A provider key: 1 to [`MAX_KEY_CHARS`] printable characters without spaces.
pub(crate) fn provider_key(key: &str) -> Result<(), String> {
    let printable = key.chars().all(|c| c.is_ascii_graphic());
    if key.is_empty() || key.chars().count() > MAX_KEY_CHARS || !printable {
        return Err(format!(
            "key must be 1 to {MAX_KEY_CHARS} printable characters without spaces"
        ));
    }
    Ok(())
}

/// A personal endpoint's name: 1 to 32 lowercase letters, digits or '-', starting with a letter
/// or digit (it becomes the provider id `my-<name>`).
pub(crate) fn endpoint_name(name: &str) -> Result<(), String> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if name.is_empty() || name.len() > 32 || !valid_chars || name.starts_with('-') {
        return Err(
            "name must be 1 to 32 lowercase letters, digits or '-', starting with a letter or digit"
                .to_owned(),
        );
    }
    Ok(())
}

/// The model ids of a personal endpoint: 1 to 50, each up to 200 characters without spaces.
pub(crate) fn endpoint_models(models: &[String]) -> Result<(), String> {
    let valid = |m: &String| {
        !m.is_empty()
            && m.len() <= 200
            && m.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':'))
    };
    if models.is_empty() || models.len() > 50 || !models.iter().all(valid) {
        return Err(
            "models must be 1 to 50 model ids (letters, digits, '.', '_', '-', '/', ':')"
                .to_owned(),
        );
    }
    Ok(())
}

/// A personal endpoint's base URL: http(s), no credentials in it, and (unless the admin allows
/// it) no host on loopback, private, link-local or other non-public addresses, checked on every
/// address the name resolves to (`gateway::endpoint::check`). Returns the normalised URL.
pub(crate) async fn endpoint_url(text: &str, allow_private: bool) -> Result<String, String> {
    crate::gateway::endpoint::check(text, allow_private)
        .await
        .map(|checked| checked.base_url())
}

/// A git host as credentials are keyed: a lowercase DNS name (letters, digits, `-`, dots
/// between labels), optionally `:port`. Returns it lowercased.
pub(crate) fn git_host(text: &str) -> Result<String, String> {
    let refuse = || {
        format!(
            "host must be a host name such as git.example.com (optionally with :port), not {text:?}"
        )
    };
    let host = text.to_ascii_lowercase();
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host.as_str(), None),
    };
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(refuse());
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(refuse());
    }
    Ok(host)
}

/// A branch name git would accept (a conservative subset of `git check-ref-format`).
pub(crate) fn branch(name: &str) -> Result<(), String> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    let bad_shape = name.is_empty()
        || name.len() > 200
        || name.starts_with(['-', '/', '.'])
        || name.ends_with(['/', '.'])
        || name.ends_with(".lock")
        || name.contains("..")
        || name.contains("//");
    if !valid_chars || bad_shape {
        return Err("baseBranch is not a valid branch name".to_owned());
    }
    Ok(())
}

/// A repository: an `https://` (or `http://`) git URL without credentials, or a local path
/// inside one of `local_roots`. Returns the normalised form to store (what git is given later,
/// so what was checked is what runs). A URL whose host `egress` refuses by itself (an address
/// in a forbidden range in any spelling, a name for this machine) is refused here; the rest is
/// checked again, with the addresses it resolves to, when den fetches it.
pub(crate) fn repository(
    text: &str,
    local_roots: &[PathBuf],
    egress: &EgressPolicy,
) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("repository must not be empty".to_owned());
    }
    if text.len() > 2048 {
        return Err("repository must be at most 2048 characters".to_owned());
    }
    // git gets the repository as one argument; a space could only be a mistake or an attempt
    // to smuggle in an option.
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("repository must not contain spaces or control characters".to_owned());
    }
    if text.starts_with('/') {
        return local_path(Path::new(text), local_roots);
    }
    let not_a_url =
        || "repository must be an https:// git URL or an absolute local path the admin allowed";
    let url = url::Url::parse(text).map_err(|err| {
        if text.starts_with("http://") || text.starts_with("https://") {
            format!("repository is not a well-formed URL: {err}")
        } else {
            not_a_url().to_owned()
        }
    })?;
    remote_url(&url).map_err(|err| {
        if matches!(url.scheme(), "http" | "https") {
            err
        } else {
            not_a_url().to_owned()
        }
    })?;
    if let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) {
        egress
            .check_host(host, port)
            .map_err(|refusal| format!("repository refused: {refusal}"))?;
    }
    Ok(url.as_str().to_owned())
}

/// The shape of a remote repository URL: http(s), a plain host name or address, a path, and
/// nothing git could mistake for an option or that carries credentials.
fn remote_url(url: &url::Url) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err("repository URL must start with https:// or http://".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("put credentials in den's repository credentials, not in the URL".to_owned());
    }
    match url.host() {
        Some(url::Host::Domain(name)) if !is_host_name(name) => {
            return Err(format!(
                "repository host {name:?} is not a host name (letters, digits, '-' and '.', no label starting or ending with '-')"
            ));
        }
        Some(_) => {}
        None => return Err("repository URL needs a host and a path".to_owned()),
    }
    if url.path().trim_matches('/').is_empty() {
        return Err("repository URL needs a host and a path".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("repository URL must not have a query (?) or a fragment (#)".to_owned());
    }
    Ok(())
}

/// Letters, digits and '-' in dot-separated labels, none starting or ending with '-' (so no
/// host can look like a command-line option); one trailing dot allowed (a rooted name).
fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn local_path(path: &Path, local_roots: &[PathBuf]) -> Result<String, String> {
    let refused = || {
        format!(
            "{} is not inside a directory the admin allowed for local repositories",
            path.display()
        )
    };
    // Canonicalising resolves `..` and symlinks, so a path cannot climb out of its root.
    let canonical = path.canonicalize().map_err(|_| {
        // A path that names no `..` and sits under an allowed root plainly does not exist (say
        // so: the roots are no secret to their users); of any other path, say nothing more.
        let plain = path
            .components()
            .all(|part| !matches!(part, std::path::Component::ParentDir));
        let under_a_root = local_roots.iter().any(|root| path.starts_with(root));
        if plain && under_a_root {
            format!("{} does not exist", path.display())
        } else {
            refused()
        }
    })?;
    let allowed = local_roots
        .iter()
        .filter_map(|root| root.canonicalize().ok())
        .any(|root| canonical.starts_with(root));
    if !allowed {
        return Err(refused());
    }
    if !canonical.join(".git").exists() && !canonical.join("HEAD").exists() {
        return Err(format!("{} is not a git repository", canonical.display()));
    }
    Ok(canonical.display().to_string())
}

#[cfg(test)]
#[path = "validate_fuzz.rs"]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_folder_under_an_allowed_root_is_said_not_to_exist() {
        let root = tempfile::tempdir().unwrap();
        let roots = [root.path().to_path_buf()];
        let none = EgressPolicy::default();
        let missing = root.path().join("nope");
        let err = repository(&missing.display().to_string(), &roots, &none).unwrap_err();
        assert_eq!(err, format!("{} does not exist", missing.display()));
        // Outside the roots, or climbing with `..`, nothing is said about what exists.
        for path in [
            "/nonexistent-den-test/x".to_owned(),
            format!("{}/../nope", root.path().display()),
        ] {
            let err = repository(&path, &roots, &none).unwrap_err();
            assert!(
                err.ends_with("is not inside a directory the admin allowed for local repositories"),
                "{err}"
            );
        }
    }

    #[test]
    fn repository_urls_without_credentials_are_accepted() {
        let none = EgressPolicy::default();
        assert_eq!(
            repository(" https://github.com/a/b.git ", &[], &none).unwrap(),
            "https://github.com/a/b.git"
        );
        for bad in [
            "",
            "https://user:pw@github.com/a/b",
            "https://github.com",
            "git@github.com:a/b.git",
            "file:///etc",
            "ssh://host/repo",
            "relative/path",
            "https://--upload-pack=touch${IFS}/tmp/x/x",
            "https://example.invalid/x --upload-pack=touch /tmp/x",
            "https://-oProxyCommand=x/a",
            "https://exa_mple.com/a",
            "https://example.com/a\tb",
            "https://example.com/a\u{7f}",
            "https://example.com/a?upload-pack=x",
            "https://example.com/a#b",
            "https://example.com:99999/a",
            "https://[::1/a",
            "https:///a",
            "https://user@example.com/a",
        ] {
            assert!(repository(bad, &[], &none).is_err(), "{bad:?} accepted");
        }
        // What is stored is the URL as git will get it.
        assert_eq!(
            repository("https://Example.COM:443/a/b", &[], &none).unwrap(),
            "https://example.com/a/b"
        );
    }

    #[test]
    fn local_paths_must_be_git_repositories_inside_an_allowed_root() {
        let none = EgressPolicy::default();
        let root = tempfile::tempdir().unwrap();
        let repo = root.path().join("repo");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        std::fs::create_dir_all(root.path().join("plain")).unwrap();
        let roots = vec![root.path().to_path_buf()];
        assert!(repository(repo.to_str().unwrap(), &roots, &none).is_ok());
        assert!(repository(repo.to_str().unwrap(), &[], &none).is_err());
        let escape = format!("{}/../..", repo.display());
        assert!(repository(&escape, &roots, &none).is_err());
        assert!(repository(root.path().join("plain").to_str().unwrap(), &roots, &none).is_err());
        assert!(repository("/nonexistent/x", &roots, &none).is_err());
    }

    #[tokio::test]
    async fn endpoint_addresses_are_public_only() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            let host = if private.contains(':') {
                format!("[{private}]")
            } else {
                private.to_owned()
            };
            let url = format!("http://{host}/v1");
            assert!(endpoint_url(&url, false).await.is_err(), "{private}");
        }
        for public in ["93.184.216.34", "2606:4700::1111"] {
            let host = if public.contains(':') {
                format!("[{public}]")
            } else {
                public.to_owned()
            };
            let url = format!("http://{host}/v1");
            assert!(endpoint_url(&url, false).await.is_ok(), "{public}");
        }
    }

    #[test]
    fn names_labels_models_and_branches_are_checked() {
        assert!(username("alice.b-1").is_ok());
        for bad in ["", "-x", "a b", "ä", &"a".repeat(65)] {
            assert!(username(bad).is_err(), "{bad:?}");
        }
        assert_eq!(label("title", "  hi  ", 10).unwrap(), "hi");
        assert!(label("title", "   ", 10).is_err());
        assert!(label("title", &"x".repeat(11), 10).is_err());
        assert!(label("title", "a\u{0}b", 10).is_err());
        assert!(model("anthropic/claude-sonnet-4-5").is_ok());
        assert!(model("nomodel").is_err());
        assert!(model("a/b c").is_err());
        assert!(branch("feature/x-1").is_ok());
        for bad in ["", "-x", "a..b", "a.lock", "a b", "/a", "a/"] {
            assert!(branch(bad).is_err(), "{bad:?}");
        }
    }
}
