//! Session titles: until someone names a session, its title follows its first prompt.

/// The longest title.
pub const TITLE_MAX: usize = 200;

/// A title from a prompt: its first line, at most 80 characters (with `…` when cut).
pub fn from_prompt(prompt: &str) -> Option<String> {
    let line = prompt.trim().lines().next()?.trim();
    let line: String = line.chars().filter(|c| !c.is_control()).collect();
    if line.is_empty() {
        return None;
    }
    Some(match line.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", line[..cut].trim_end()),
        None => line,
    })
}

/// The title of a session nobody named and nobody prompted yet: the repository's last path
/// segment, without `.git`.
pub fn for_repository(repository: &str) -> String {
    let name = repository
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(repository);
    let name = name.strip_suffix(".git").unwrap_or(name);
    name.chars().take(TITLE_MAX).collect()
}

/// The title OpenCode generated for a conversation, if it is one: not its placeholder
/// (`New session - <time>`, `Child session - <time>`), one line, cut to [`TITLE_MAX`].
pub fn from_agent(title: &str) -> Option<String> {
    let title = title.trim();
    let placeholder = ["New session - ", "Child session - "]
        .iter()
        .any(|prefix| title.starts_with(prefix));
    if placeholder || title.is_empty() || title.contains('\n') {
        return None;
    }
    let title: String = title.chars().filter(|c| !c.is_control()).collect();
    Some(title.chars().take(TITLE_MAX).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_the_first_line_of_a_prompt_or_the_repository() {
        assert_eq!(for_repository("https://github.com/a/den.git"), "den");
        assert_eq!(for_repository("/srv/repos/tool/"), "tool");
        assert_eq!(
            from_prompt("  Fix the login bug\nand more").as_deref(),
            Some("Fix the login bug")
        );
        assert_eq!(
            from_prompt(&"é".repeat(100)),
            Some(format!("{}…", "é".repeat(80)))
        );
        assert_eq!(from_prompt("   "), None);
    }
}
