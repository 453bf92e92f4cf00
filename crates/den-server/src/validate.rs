//! Input rules shared by routes and the CLI. Each returns a message fit to show the user.

use std::path::{Path, PathBuf};

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
/// inside one of `local_roots`. Returns the normalised form to store.
pub(crate) fn repository(text: &str, local_roots: &[PathBuf]) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("repository must not be empty".to_owned());
    }
    if text.len() > 2048 || text.chars().any(char::is_control) {
        return Err("repository is too long or contains control characters".to_owned());
    }
    if let Some(rest) = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
    {
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.contains('@') {
            return Err(
                "put credentials in den's repository credentials, not in the URL".to_owned(),
            );
        }
        let has_path = rest
            .split_once('/')
            .is_some_and(|(_, path)| !path.trim_matches('/').is_empty());
        if authority.is_empty() || !has_path {
            return Err("repository URL needs a host and a path".to_owned());
        }
        return Ok(text.to_owned());
    }
    if text.starts_with('/') {
        return local_path(Path::new(text), local_roots);
    }
    Err(
        "repository must be an https:// git URL or an absolute local path the admin allowed"
            .to_owned(),
    )
}

fn local_path(path: &Path, local_roots: &[PathBuf]) -> Result<String, String> {
    let refused = || {
        format!(
            "{} is not inside a directory the admin allowed for local repositories",
            path.display()
        )
    };
    // Canonicalising resolves `..` and symlinks, so a path cannot climb out of its root.
    let canonical = path.canonicalize().map_err(|_| refused())?;
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
mod tests {
    use super::*;

    #[test]
    fn repository_urls_without_credentials_are_accepted() {
        assert_eq!(
            repository(" https://github.com/a/b.git ", &[]).unwrap(),
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
        ] {
            assert!(repository(bad, &[]).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn local_paths_must_be_git_repositories_inside_an_allowed_root() {
        let root = tempfile::tempdir().unwrap();
        let repo = root.path().join("repo");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        std::fs::create_dir_all(root.path().join("plain")).unwrap();
        let roots = vec![root.path().to_path_buf()];
        assert!(repository(repo.to_str().unwrap(), &roots).is_ok());
        assert!(repository(repo.to_str().unwrap(), &[]).is_err());
        let escape = format!("{}/../..", repo.display());
        assert!(repository(&escape, &roots).is_err());
        assert!(repository(root.path().join("plain").to_str().unwrap(), &roots).is_err());
        assert!(repository("/nonexistent/x", &roots).is_err());
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
