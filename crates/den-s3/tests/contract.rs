//! The artifact store contract, run on both backends: the local directory (den-sandbox's
//! `LocalArtifactStore`) and object storage (`S3ArtifactStore`) against a real S3 server
//! (s3s-fs, in process, SigV4 checked). Then what only object storage does: multipart uploads,
//! the orphan sweeper, credentials kept out of messages.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use den_s3::{LocalS3Server, MIN_PART_SIZE, S3ArtifactStore, S3Settings};
use den_sandbox::{ArtifactStore, LocalArtifactStore, SandboxError};

const ACCESS_KEY: &str = "AKIDDENTEST0001";
const SECRET_KEY: &str = "den-test-secret-wJalrXUtnFEMI";

struct World {
    dir: tempfile::TempDir,
    server: LocalS3Server,
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = LocalS3Server::start(&dir.path().join("s3"), "snaps", ACCESS_KEY, SECRET_KEY)
            .await
            .expect("start the S3 server");
        Self { dir, server }
    }

    fn settings(&self) -> S3Settings {
        let mut settings = self
            .server
            .settings("s3://snaps/den/prod", &self.dir.path().join("downloads"));
        settings.part_size = MIN_PART_SIZE;
        settings
    }

    fn s3(&self) -> S3ArtifactStore {
        S3ArtifactStore::new(self.settings()).expect("store")
    }

    /// A file of `len` bytes that differ from part to part (so a misplaced part shows).
    fn file(&self, name: &str, len: usize) -> PathBuf {
        let path = self.dir.path().join(name);
        let bytes: Vec<u8> = (0..len)
            .map(|i| u8::try_from((i * 31 + i / 4093) % 251).unwrap_or(0))
            .collect();
        std::fs::write(&path, bytes).expect("write");
        path
    }

    /// Every object under the bucket, as names relative to it.
    fn objects(&self) -> Vec<String> {
        let root = self.server.root().join("snaps");
        let mut out = Vec::new();
        walk(&root, &root, &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let name = rel.to_string_lossy().into_owned();
            // s3s-fs keeps its own metadata and upload state beside the objects.
            if !name.contains(".s3s") && !name.starts_with('.') {
                out.push(name);
            }
        }
    }
}

/// What every `ArtifactStore` does.
async fn contract(store: &dyn ArtifactStore, world: &World, label: &str) {
    let src = world.file(&format!("{label}-a"), 1000);
    let expected = std::fs::read(&src).expect("read");
    assert!(!store.exists("s1").await.expect("exists"), "{label}");
    let info = store.put("s1", &src).await.expect("put");
    assert_eq!(info.size_bytes, 1000, "{label}");
    assert!(!src.exists(), "{label}: put moves the file");
    assert!(store.exists("s1").await.expect("exists"), "{label}");
    {
        let fetched = store.fetch("s1").await.expect("fetch");
        assert_eq!(
            std::fs::read(fetched.path()).expect("read"),
            expected,
            "{label}"
        );
    }

    // A key is never overwritten: the second writer is refused and the first artifact stays.
    let other = world.file(&format!("{label}-b"), 500);
    let refused = store.put("s1", &other).await;
    assert!(
        matches!(refused, Err(SandboxError::ArtifactExists(ref key)) if key == "s1"),
        "{label}: {refused:?}"
    );
    let fetched = store.fetch("s1").await.expect("fetch");
    assert_eq!(
        std::fs::read(fetched.path()).expect("read"),
        expected,
        "{label}"
    );
    drop(fetched);

    store.delete("s1").await.expect("delete");
    store
        .delete("s1")
        .await
        .expect("deleting a missing key is fine");
    assert!(!store.exists("s1").await.expect("exists"), "{label}");
    assert!(
        matches!(
            store.fetch("s1").await,
            Err(SandboxError::MissingArtifact { .. })
        ),
        "{label}"
    );
    for bad in ["../x", "", ".hidden", "a/b", "a b"] {
        assert!(
            matches!(
                store.fetch(bad).await,
                Err(SandboxError::InvalidArtifactKey(_))
            ),
            "{label}: {bad:?}"
        );
        let file = world.file(&format!("{label}-bad"), 10);
        assert!(
            matches!(
                store.put(bad, &file).await,
                Err(SandboxError::InvalidArtifactKey(_))
            ),
            "{label}: {bad:?}"
        );
        assert!(file.exists(), "{label}: a refused put leaves the file");
    }
}

#[tokio::test]
async fn the_local_store_keeps_the_contract() {
    let world = World::new().await;
    let store = LocalArtifactStore::new(world.dir.path().join("local"));
    contract(&store, &world, "local").await;
}

#[tokio::test]
async fn the_s3_store_keeps_the_contract() {
    let world = World::new().await;
    let store = world.s3();
    contract(&store, &world, "s3").await;
    assert_eq!(world.objects(), Vec::<String>::new(), "nothing left behind");
    // Downloads are removed once the restore is done with them.
    let left: Vec<_> = std::fs::read_dir(world.dir.path().join("downloads"))
        .expect("downloads dir")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_snapshot_larger_than_a_part_streams_as_a_multipart_upload() {
    let world = World::new().await;
    let store = world.s3();
    let len = 2 * MIN_PART_SIZE + 12345;
    let src = world.file("big", len);
    let expected = std::fs::read(&src).expect("read");
    let (size, parts) = store.upload_file("big", &src).await.expect("upload");
    assert_eq!((size, parts), (len as u64, 3));
    assert_eq!(
        world.objects(),
        vec!["den/prod/snapshots/big.tar.zst".to_owned()],
        "the staging upload is gone"
    );
    let fetched = store.fetch("big").await.expect("fetch");
    assert_eq!(std::fs::read(fetched.path()).expect("read"), expected);

    // The same key again, multipart too: refused, and the stored bytes are the first ones.
    let second = world.file("big-2", len + 1);
    let refused = store.upload_file("big", &second).await;
    assert!(
        matches!(refused, Err(SandboxError::ArtifactExists(_))),
        "{refused:?}"
    );
    let again = store.fetch("big").await.expect("fetch");
    assert_eq!(std::fs::read(again.path()).expect("read"), expected);
}

#[tokio::test]
async fn the_sweeper_deletes_only_old_unreferenced_objects() {
    let world = World::new().await;
    let store = world.s3();
    for key in ["kept", "orphan"] {
        let file = world.file(key, 100);
        store.put(key, &file).await.expect("put");
    }
    // A staging upload a crashed node left behind, and an object of someone else's beside
    // the prefix (not den's, never touched).
    let stray_dir = world.server.root().join("snaps/den/prod/uploads");
    std::fs::create_dir_all(&stray_dir).expect("mkdir");
    std::fs::write(stray_dir.join("dead.0190.partial"), b"x").expect("write");
    let neighbour = world.server.root().join("snaps/den/other");
    std::fs::create_dir_all(&neighbour).expect("mkdir");
    std::fs::write(neighbour.join("theirs"), b"y").expect("write");

    let referenced = || async { Ok::<_, String>(HashSet::from(["kept".to_owned()])) };
    let young = store
        .sweep_orphans(Duration::from_secs(3600), referenced)
        .await
        .expect("sweep");
    assert_eq!(
        (young.deleted.len(), young.referenced, young.too_young),
        (0, 1, 2)
    );

    let report = store
        .sweep_orphans(Duration::ZERO, referenced)
        .await
        .expect("sweep");
    assert_eq!(
        report.deleted,
        vec![
            "den/prod/snapshots/orphan.tar.zst".to_owned(),
            "den/prod/uploads/dead.0190.partial".to_owned()
        ]
    );
    assert_eq!(
        world.objects(),
        vec![
            "den/other/theirs".to_owned(),
            "den/prod/snapshots/kept.tar.zst".to_owned()
        ]
    );
    assert!(store.exists("kept").await.expect("exists"));

    // The records cannot be read: nothing is deleted.
    let file = world.file("orphan2", 10);
    store.put("orphan2", &file).await.expect("put");
    let failed = store
        .sweep_orphans(Duration::ZERO, || async {
            Err::<HashSet<String>, _>("database down")
        })
        .await;
    assert!(failed.is_err());
    assert!(store.exists("orphan2").await.expect("exists"));
}

#[tokio::test]
async fn credentials_never_appear_in_errors_or_debug_output() {
    let world = World::new().await;
    let mut settings = world.settings();
    let wrong_secret = "wrong-secret-Zm9vYmFyYmF6cXV4";
    for (key, value) in &mut settings.options {
        if key == "AWS_SECRET_ACCESS_KEY" {
            *value = wrong_secret.to_owned();
        }
    }
    let store = S3ArtifactStore::new(settings.clone()).expect("store");
    let file = world.file("x", 100);
    let err = store
        .put("x", &file)
        .await
        .expect_err("a wrong secret is refused");
    let big = world.file("y", MIN_PART_SIZE + 1);
    let big_err = store.put("y", &big).await.expect_err("refused");
    let fetch_err = store.fetch("x").await.expect_err("refused");
    let exists_err = store.exists("x").await.expect_err("refused");
    for text in [
        err.to_string(),
        big_err.to_string(),
        fetch_err.to_string(),
        exists_err.to_string(),
        format!("{err:?}"),
        format!("{store:?}"),
        format!("{settings:?}"),
    ] {
        assert!(!text.contains(ACCESS_KEY), "{text}");
        assert!(!text.contains(wrong_secret), "{text}");
        assert!(!text.contains(SECRET_KEY), "{text}");
    }
    // It still says what went wrong.
    assert!(err.to_string().contains("snapshot storage"), "{err}");
}

#[tokio::test]
async fn bad_settings_are_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let refused = S3ArtifactStore::new(S3Settings::new("file:///tmp/x", dir.path()));
    assert!(
        refused
            .as_ref()
            .is_err_and(|err| err.to_string().contains("not an s3://bucket")),
        "{refused:?}"
    );
    let mut small = S3Settings::new("s3://b/p", dir.path());
    small.part_size = 1024;
    assert!(S3ArtifactStore::new(small).is_err());
}
