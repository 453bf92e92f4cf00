//! Malicious repositories against den's host git (`den_git`): a repository may carry
//! hooks, filter and diff drivers, `core.fsmonitor`, submodules with `file://` or `ext::` URLs,
//! symlinks out of its tree, a `.gitmodules` path traversal, or a CVE-2024-32002-style symlink
//! into `.git` beside a submodule. den clones it and lists its branches; nothing of it may run
//! on the host (each trap would create a marker file) and nothing may be written outside the
//! checkout.
#![allow(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    reason = "test code: panics are failures; the test builds its repositories with git itself"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use den_git::{clone_onto_branch, remote_branches};
use den_sandbox::egress::EgressPolicy;

const MINUTE: Duration = Duration::from_secs(60);

/// A scratch place: the repository under `src/`, the checkout under `dest/`, and markers the
/// traps would create under `marks/`.
struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Self {
        let scene = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(scene.src()).unwrap();
        std::fs::create_dir_all(scene.marks()).unwrap();
        scene.git(&["init", "-q", "--initial-branch=main"]);
        std::fs::write(scene.src().join("README.md"), "hello\n").unwrap();
        scene
    }
    fn src(&self) -> PathBuf {
        self.dir.path().join("src")
    }
    fn dest(&self) -> PathBuf {
        self.dir.path().join("dest")
    }
    fn marks(&self) -> PathBuf {
        self.dir.path().join("marks")
    }
    /// A shell command that leaves the marker `name` behind.
    fn trap(&self, name: &str) -> String {
        format!("touch {}", self.marks().join(name).display())
    }
    /// A script file that leaves the marker `name` behind.
    fn trap_script(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.sh"));
        std::fs::write(&path, format!("#!/bin/sh\n{}\n", self.trap(name))).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
    fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .current_dir(self.src())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(["-c", "protocol.file.allow=always"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
    fn commit(&self) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "trap"]);
    }
    /// Clones the repository as den does and lists its branches; both must leave no marker.
    /// Returns whether the clone succeeded (refusing a hostile repository is also safe).
    async fn clone_and_list(&self) -> bool {
        let source = self.src().display().to_string();
        let listed = remote_branches(&source, None, &EgressPolicy::default(), MINUTE).await;
        let cloned = clone_onto_branch(
            &source,
            &self.dest(),
            None,
            "den/test",
            &EgressPolicy::default(),
            MINUTE,
        )
        .await;
        let marks: Vec<_> = std::fs::read_dir(self.marks())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            marks.is_empty(),
            "repository code ran on the host: {marks:?}"
        );
        if let Ok(listed) = &listed {
            assert!(listed.branches.contains(&"main".to_owned()), "{listed:?}");
        }
        cloned.is_ok()
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            found.push(entry.path());
        }
    }
    found
}

#[tokio::test]
async fn hooks_in_the_repository_and_its_config_do_not_run() {
    let scene = Scene::new();
    // A committed hooks directory its config points at, and the server-side hook of upload-pack.
    std::fs::create_dir_all(scene.src().join("githooks")).unwrap();
    std::fs::copy(
        scene.trap_script("committed-hook"),
        scene.src().join("githooks/post-checkout"),
    )
    .unwrap();
    scene.commit();
    // Installed last: the test's own commits above must not set them off.
    for hook in [
        "post-checkout",
        "post-merge",
        "reference-transaction",
        "pre-upload",
    ] {
        let path = scene.src().join(".git/hooks").join(hook);
        std::fs::copy(scene.trap_script(hook), &path).unwrap();
    }
    scene.git(&["config", "core.hooksPath", "githooks"]);
    let pack_hook = scene.trap_script("pack-objects-hook");
    scene.git(&[
        "config",
        "uploadpack.packObjectsHook",
        pack_hook.to_str().unwrap(),
    ]);
    assert!(scene.clone_and_list().await);
}

#[tokio::test]
async fn filter_and_diff_drivers_and_fsmonitor_do_not_run() {
    let scene = Scene::new();
    std::fs::write(
        scene.src().join(".gitattributes"),
        "* filter=evil diff=evil\n",
    )
    .unwrap();
    scene.commit();
    for (key, trap) in [
        ("filter.evil.smudge", "smudge"),
        ("filter.evil.clean", "clean"),
        ("filter.evil.process", "process"),
        ("diff.evil.command", "diff-driver"),
        ("diff.evil.textconv", "textconv"),
        ("diff.external", "external-diff"),
        ("core.fsmonitor", "fsmonitor"),
        ("core.sshCommand", "ssh-command"),
        ("credential.helper", "credential-helper"),
    ] {
        let script = scene.trap_script(trap);
        scene.git(&["config", key, script.to_str().unwrap()]);
    }
    assert!(scene.clone_and_list().await);
    assert_eq!(
        std::fs::read_to_string(scene.dest().join("README.md")).unwrap(),
        "hello\n",
        "checked out without any filter"
    );
}

#[tokio::test]
async fn submodules_with_file_and_ext_urls_are_not_fetched() {
    let scene = Scene::new();
    // A real repository the file:// submodule could fetch, and an ext:: one that would run.
    let other = scene.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let commit = {
        let run = |args: &[&str]| {
            let out = Command::new("git")
                .current_dir(&other)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success());
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        run(&["init", "-q"]);
        run(&["commit", "-q", "--allow-empty", "-m", "x"]);
        run(&["rev-parse", "HEAD"])
    };
    let ext = format!(
        "ext::sh -c {}",
        scene.trap("ext-transport").replace(' ', "% ")
    );
    std::fs::write(
        scene.src().join(".gitmodules"),
        format!(
            "[submodule \"local\"]\n\tpath = local\n\turl = file://{}\n[submodule \"ext\"]\n\tpath = ext\n\turl = {ext}\n",
            other.display()
        ),
    )
    .unwrap();
    for path in ["local", "ext"] {
        scene.git(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{commit},{path}"),
        ]);
    }
    scene.commit();
    assert!(scene.clone_and_list().await);
    for path in ["local", "ext"] {
        assert!(
            files_under(&scene.dest().join(path)).is_empty(),
            "submodule {path} was fetched"
        );
    }
}

#[tokio::test]
async fn symlinks_out_of_the_tree_are_not_followed_when_checking_out() {
    let scene = Scene::new();
    let outside = scene.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    // A symlink to a directory outside, committed before a file "inside" it: git must not
    // write through the link.
    std::os::unix::fs::symlink(&outside, scene.src().join("escape")).unwrap();
    scene.commit();
    let payload = scene.dir.path().join("payload");
    std::fs::write(&payload, "pwned\n").unwrap();
    let blob = scene.git(&["hash-object", "-w", payload.to_str().unwrap()]);
    // The index may hold escape/pwned beside the symlink `escape` only if forced.
    let forced = Command::new("git")
        .current_dir(scene.src())
        .args([
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("100644,{blob},escape/pwned"),
        ])
        .output()
        .unwrap();
    if forced.status.success() {
        let _ = Command::new("git")
            .current_dir(scene.src())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(["commit", "-q", "-m", "through the link"])
            .output()
            .unwrap();
    }
    scene.clone_and_list().await;
    assert!(
        files_under(&outside).is_empty(),
        "the checkout wrote through a symlink out of its tree: {:?}",
        files_under(&outside)
    );
}

#[tokio::test]
async fn a_gitmodules_path_traversal_is_refused_or_harmless() {
    let scene = Scene::new();
    scene.git(&["commit", "-q", "--allow-empty", "-m", "base"]);
    let commit = scene.git(&["rev-parse", "HEAD"]);
    std::fs::write(
        scene.src().join(".gitmodules"),
        "[submodule \"../../../escape\"]\n\tpath = sub\n\turl = ./sub\n",
    )
    .unwrap();
    scene.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{commit},sub"),
    ]);
    scene.commit();
    let cloned = scene.clone_and_list().await;
    // fsck on transfer refuses a `.gitmodules` whose name climbs out; either way nothing lands
    // beside the checkout.
    assert!(
        !cloned,
        "a submodule name with .. should fail fsck on transfer"
    );
    assert!(!scene.dir.path().join("escape").exists());
}

#[tokio::test]
async fn a_cve_2024_32002_style_symlink_into_git_beside_a_submodule_runs_nothing() {
    let scene = Scene::new();
    scene.git(&["commit", "-q", "--allow-empty", "-m", "base"]);
    let commit = scene.git(&["rev-parse", "HEAD"]);
    // `a` links into `.git`; submodule `A/modules/x` would write a hook through it on a
    // case-insensitive filesystem when cloned recursively.
    std::os::unix::fs::symlink(".git", scene.src().join("a")).unwrap();
    std::fs::write(
        scene.src().join(".gitmodules"),
        "[submodule \"x\"]\n\tpath = A/modules/x\n\turl = ./x\n",
    )
    .unwrap();
    scene.git(&["add", "a", ".gitmodules"]);
    scene.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{commit},A/modules/x"),
    ]);
    scene.git(&["commit", "-q", "-m", "trap"]);
    std::fs::create_dir_all(scene.src().join(".git/modules/x/hooks")).unwrap();
    std::fs::copy(
        scene.trap_script("cve-2024-32002"),
        scene.src().join(".git/modules/x/hooks/post-checkout"),
    )
    .unwrap();
    scene.clone_and_list().await;
    assert!(!scene.dest().join(".git/modules").exists());
}
