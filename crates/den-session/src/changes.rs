//! What a session changed against its base commit, computed by git inside the session's
//! sandbox (`SandboxRuntime::exec`): nothing of the repository runs on the host.
//!
//! Untracked files count as changes, so git stages the whole working tree into a throwaway
//! index (a copy of the agent's, so unchanged files are not hashed again) and diffs that
//! against the base: the agent's own index and branch are left as they were. The three views
//! git prints (name-status for renames, numstat for counts and binaries, the patch) are
//! separated by a random marker and put together file by file, in git's order.

use std::path::{Path, PathBuf};
use std::time::Duration;

use den_protocol::changes::{DiffSource, DiffSummary, FileChange, FileStatus, SessionDiff};
use den_sandbox::{ExecRequest, SandboxId, SandboxRuntime};

use crate::error::{Result, SessionError};

/// A file's patch beyond this is cut (at a line boundary) and flagged.
pub(crate) const MAX_FILE_PATCH: usize = 256 * 1024;
/// All of git's output beyond this is dropped: files past it keep their counts, not patches.
const MAX_OUTPUT: usize = 16 << 20;
const TIMEOUT: Duration = Duration::from_secs(60);

/// Stages everything into a temporary index and prints the three views of the diff against
/// `$1`, separated by `$2`. The `-c` settings and flags keep git's output in the one format
/// this module parses, whatever the repository's config says.
const SCRIPT: &str = r#"set -e
base=$1
marker=$2
g() {
  git -c core.fsmonitor=false -c core.quotePath=false -c diff.noprefix=false \
    -c diff.mnemonicPrefix=false -c diff.relative=false "$@"
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dir=$(g rev-parse --absolute-git-dir)
if [ -f "$dir/index" ]; then cp "$dir/index" "$tmp/index"; fi
export GIT_INDEX_FILE="$tmp/index"
g add -A
g diff --cached -O/dev/null -z -M --name-status "$base" --
printf '%s' "$marker"
g diff --cached -O/dev/null -z -M --numstat "$base" --
printf '%s' "$marker"
g diff --cached -O/dev/null -M --no-ext-diff --no-textconv --no-color --src-prefix=a/ --dst-prefix=b/ "$base" --
"#;

/// Computes the session's diff in its running sandbox.
pub(crate) async fn compute(
    runtime: &dyn SandboxRuntime,
    sandbox: &SandboxId,
    base_commit: &str,
) -> Result<SessionDiff> {
    let marker = format!("\n@@den-{}@@\n", crate::workspace::random_secret()?);
    let mut request = ExecRequest::new([
        "/bin/sh",
        "-c",
        SCRIPT,
        "den-diff",
        base_commit,
        marker.as_str(),
    ]);
    // The sandbox's user-level git config is the agent's to write; den's view ignores it.
    request
        .env
        .insert("GIT_CONFIG_GLOBAL".to_owned(), "/dev/null".to_owned());
    request
        .env
        .insert("GIT_CONFIG_NOSYSTEM".to_owned(), "1".to_owned());
    request.timeout = TIMEOUT;
    request.max_output = MAX_OUTPUT;
    let output = runtime.exec(sandbox, request).await?;
    if !output.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(SessionError::Diff(format!(
            "git could not compute the diff: {}",
            stderr.trim()
        )));
    }
    let mut diff = parse(&output.stdout, marker.as_bytes())?;
    diff.base_commit = Some(base_commit.to_owned());
    diff.truncated |= output.stdout_truncated;
    Ok(diff)
}

fn parse(stdout: &[u8], marker: &[u8]) -> Result<SessionDiff> {
    let mut sections = split_on(stdout, marker, 3).into_iter();
    let (Some(names), Some(counts)) = (sections.next(), sections.next()) else {
        return Err(SessionError::Diff(
            "git's diff output was cut short".to_owned(),
        ));
    };
    let patches = sections.next().unwrap_or_default();
    let mut files = parse_name_status(names)?;
    apply_numstat(&mut files, counts)?;
    let chunks = patch_chunks(patches);
    // The patch is the last section: when git's output was capped, it is what was cut.
    let complete = chunks.len() == files.len();
    for (file, chunk) in files.iter_mut().zip(chunks) {
        if file.binary {
            continue;
        }
        let (patch, cut) = cap_patch(&String::from_utf8_lossy(chunk));
        file.patch = patch;
        file.patch_truncated = cut;
    }
    let summary = summarize(&files);
    Ok(SessionDiff {
        base_commit: None,
        files,
        summary,
        source: DiffSource::Live,
        computed_at: chrono::Utc::now(),
        truncated: !complete,
    })
}

fn summarize(files: &[FileChange]) -> DiffSummary {
    DiffSummary {
        files: files.len() as u64,
        additions: files.iter().map(|f| f.additions).sum(),
        deletions: files.iter().map(|f| f.deletions).sum(),
    }
}

/// `data` split at the first `parts - 1` occurrences of `marker`.
fn split_on<'a>(data: &'a [u8], marker: &[u8], parts: usize) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() + 1 < parts {
        match rest.windows(marker.len()).position(|w| w == marker) {
            Some(at) => {
                out.push(&rest[..at]);
                rest = &rest[at + marker.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out
}

fn text(field: &[u8]) -> String {
    String::from_utf8_lossy(field).into_owned()
}

/// `git diff -z --name-status -M`: `STATUS\0PATH\0`, or `RNNN\0OLD\0NEW\0` for a rename.
fn parse_name_status(section: &[u8]) -> Result<Vec<FileChange>> {
    let mut fields = section.split(|b| *b == 0).filter(|f| !f.is_empty());
    let mut files = Vec::new();
    let bad = || SessionError::Diff("git's name-status output is malformed".to_owned());
    while let Some(code) = fields.next() {
        let status = match code.first() {
            Some(b'A') => FileStatus::Added,
            Some(b'M') => FileStatus::Modified,
            Some(b'D') => FileStatus::Deleted,
            Some(b'R') => FileStatus::Renamed,
            Some(b'C') => FileStatus::Copied,
            Some(b'T') => FileStatus::TypeChanged,
            _ => FileStatus::Modified,
        };
        let first = text(fields.next().ok_or_else(bad)?);
        let (path, old_path) = if matches!(status, FileStatus::Renamed | FileStatus::Copied) {
            (text(fields.next().ok_or_else(bad)?), Some(first))
        } else {
            (first, None)
        };
        files.push(FileChange {
            path,
            old_path,
            status,
            additions: 0,
            deletions: 0,
            binary: false,
            patch: String::new(),
            patch_truncated: false,
        });
    }
    Ok(files)
}

/// `git diff -z --numstat -M`: `ADD\tDEL\tPATH\0`, or `ADD\tDEL\t\0OLD\0NEW\0` for a rename;
/// `-\t-` marks a binary file. Same order as name-status.
fn apply_numstat(files: &mut [FileChange], section: &[u8]) -> Result<()> {
    let mut fields = section.split(|b| *b == 0);
    for file in files.iter_mut() {
        let Some(line) = fields.next() else {
            return Err(SessionError::Diff(
                "git's numstat output lists fewer files than its name-status".to_owned(),
            ));
        };
        let mut parts = line.splitn(3, |b| *b == b'\t');
        let (added, deleted, path) = (parts.next(), parts.next(), parts.next());
        if path.is_some_and(<[u8]>::is_empty) {
            // A rename: the two paths follow as fields of their own.
            fields.next();
            fields.next();
        }
        match (added, deleted) {
            (Some(b"-"), Some(b"-")) => file.binary = true,
            (Some(added), Some(deleted)) => {
                file.additions = text(added).parse().unwrap_or(0);
                file.deletions = text(deleted).parse().unwrap_or(0);
            }
            _ => {
                return Err(SessionError::Diff(
                    "git's numstat output is malformed".to_owned(),
                ));
            }
        }
    }
    Ok(())
}

/// The patch cut into one chunk per file, at each `diff --git` header (a content line never
/// starts with it: git prefixes those with ` `, `+` or `-`).
fn patch_chunks(patch: &[u8]) -> Vec<&[u8]> {
    const HEADER: &[u8] = b"diff --git ";
    let mut starts: Vec<usize> = Vec::new();
    let mut at = 0;
    while at < patch.len() {
        if patch[at..].starts_with(HEADER) {
            starts.push(at);
        }
        at = match patch[at..].iter().position(|b| *b == b'\n') {
            Some(end) => at + end + 1,
            None => patch.len(),
        };
    }
    let mut chunks: Vec<&[u8]> = starts
        .windows(2)
        .map(|pair| &patch[pair[0]..pair[1]])
        .collect();
    if let Some(last) = starts.last() {
        chunks.push(&patch[*last..]);
    }
    chunks
}

/// The patch, or its first `MAX_FILE_PATCH` bytes cut back to a whole line.
fn cap_patch(patch: &str) -> (String, bool) {
    if patch.len() <= MAX_FILE_PATCH {
        return (patch.to_owned(), false);
    }
    let mut end = MAX_FILE_PATCH;
    while !patch.is_char_boundary(end) {
        end -= 1;
    }
    let cut = patch[..end].rfind('\n').map_or(0, |i| i + 1);
    (patch[..cut].to_owned(), true)
}

/// Where a session's last computed diff is kept (beside its snapshots, so it goes with them).
pub(crate) fn saved_path(snapshots_dir: &Path) -> PathBuf {
    snapshots_dir.join("diff.json")
}

pub(crate) async fn save(snapshots_dir: &Path, diff: &SessionDiff) -> Result<()> {
    tokio::fs::create_dir_all(snapshots_dir).await?;
    let json = serde_json::to_vec(diff).map_err(|err| SessionError::Encode(err.to_string()))?;
    let path = saved_path(snapshots_dir);
    // Written whole under another name and renamed, so a reader never sees half of it.
    let partial = path.with_extension("json.partial");
    tokio::fs::write(&partial, json).await?;
    tokio::fs::rename(&partial, &path).await?;
    Ok(())
}

/// The diff saved when the last turn ended; an empty one when the session never ran.
pub(crate) async fn load_saved(snapshots_dir: &Path) -> Result<SessionDiff> {
    match tokio::fs::read(saved_path(snapshots_dir)).await {
        Ok(bytes) => {
            let mut diff: SessionDiff = serde_json::from_slice(&bytes).map_err(|err| {
                SessionError::Diff(format!("the saved diff is unreadable: {err}"))
            })?;
            diff.source = DiffSource::LastTurn;
            Ok(diff)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            Ok(SessionDiff::unchanged(chrono::Utc::now()))
        }
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &[u8] = b"\n@@m@@\n";

    fn output(names: &str, counts: &str, patch: &str) -> Vec<u8> {
        [names.as_bytes(), M, counts.as_bytes(), M, patch.as_bytes()].concat()
    }

    #[test]
    fn renames_binaries_and_patches_are_put_together_in_order() {
        let names = "R090\0old name.txt\0new name.txt\0A\0img.png\0M\0src/a.rs\0";
        let counts =
            "1\t1\t\0old name.txt\0new name.txt\0-\t-\timg.png\0".to_owned() + "2\t0\tsrc/a.rs\0";
        let patch = "diff --git a/old name.txt b/new name.txt\nsimilarity index 90%\n-x\n+y\n\
                     diff --git a/img.png b/img.png\nBinary files /dev/null and b/img.png differ\n\
                     diff --git a/src/a.rs b/src/a.rs\n+diff --git inside content\n+b\n";
        let diff = parse(&output(names, &counts, patch), M).unwrap();
        assert_eq!(diff.files.len(), 3);
        let rename = &diff.files[0];
        assert_eq!(
            (
                rename.path.as_str(),
                rename.old_path.as_deref(),
                rename.status
            ),
            ("new name.txt", Some("old name.txt"), FileStatus::Renamed)
        );
        assert_eq!((rename.additions, rename.deletions), (1, 1));
        assert!(rename.patch.starts_with("diff --git a/old name.txt"));
        assert!(rename.patch.ends_with("+y\n"));
        let image = &diff.files[1];
        assert!(image.binary && image.patch.is_empty() && image.status == FileStatus::Added);
        let source = &diff.files[2];
        assert_eq!((source.additions, source.deletions), (2, 0));
        assert!(source.patch.contains("+diff --git inside content\n+b\n"));
        assert_eq!(
            diff.summary,
            DiffSummary {
                files: 3,
                additions: 3,
                deletions: 1
            }
        );
        assert!(!diff.truncated);
    }

    #[test]
    fn an_empty_diff_and_a_cut_one() {
        let empty = parse(&output("", "", ""), M).unwrap();
        assert!(empty.files.is_empty() && !empty.truncated);
        // Output capped inside the patch section: the second file has no patch.
        let cut = output(
            "M\0a\0M\0b\0",
            concat!("1\t0\ta\0", "1\t0\tb\0"),
            "diff --git a/a b/a\n+1\n",
        );
        let diff = parse(&cut, M).unwrap();
        assert!(diff.truncated);
        assert!(diff.files[1].patch.is_empty());
        assert!(parse(b"M\0a\0", M).is_err(), "no sections at all");
    }

    #[test]
    fn large_patches_are_cut_at_a_line() {
        let line = "+0123456789abcdef\n";
        let patch = line.repeat(MAX_FILE_PATCH / line.len() + 10);
        let (cut, truncated) = cap_patch(&patch);
        assert!(truncated && cut.len() <= MAX_FILE_PATCH && cut.ends_with('\n'));
        assert_eq!(cap_patch("small\n"), ("small\n".to_owned(), false));
    }
}
