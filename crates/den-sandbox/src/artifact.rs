//! Where snapshot archives are kept between pause and resume: a local directory here, object
//! storage in den-s3, behind the same trait. The session layer records an artifact's key, never
//! its path, so moving snapshots elsewhere changes only the store.

use std::ops::Deref;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result, SandboxError};
use crate::runtime::{ArtifactInfo, BoxFuture};

pub trait ArtifactStore: Send + Sync {
    /// Moves (or uploads) the file at `file` under `key`; the file is gone afterwards. Callers
    /// use a fresh key per snapshot; a store that can refuse to overwrite an existing key does
    /// ([`SandboxError::ArtifactExists`]), so a stale writer cannot replace a newer artifact.
    fn put<'a>(&'a self, key: &'a str, file: &'a Path) -> BoxFuture<'a, Result<ArtifactInfo>>;
    /// A local file holding the artifact, ready for `SandboxRuntime::restore`; a downloaded copy
    /// is removed when the returned value is dropped.
    fn fetch<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<FetchedArtifact>>;
    /// Whether `key` is stored, without fetching it.
    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>>;
    /// Deleting a key that does not exist is not an error.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>>;
}

/// A local file holding an artifact: the store's own file, or a temporary download of it that
/// is removed on drop.
#[derive(Debug)]
pub struct FetchedArtifact {
    path: PathBuf,
    temporary: bool,
}

impl FetchedArtifact {
    /// A file that stays after use (the local store's own, or a legacy snapshot path).
    pub fn kept(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            temporary: false,
        }
    }

    /// A downloaded copy, removed when this is dropped.
    pub fn temporary(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            temporary: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Deref for FetchedArtifact {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl Drop for FetchedArtifact {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[derive(Debug, Clone)]
pub struct LocalArtifactStore {
    dir: PathBuf,
}

impl LocalArtifactStore {
    /// Artifacts under `dir`, made when the first one is stored.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        let ok = !key.is_empty()
            && key.len() <= 200
            && !key.starts_with('.')
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok {
            return Err(SandboxError::InvalidArtifactKey(key.to_owned()));
        }
        Ok(self.dir.join(format!("{key}.tar.zst")))
    }
}

impl ArtifactStore for LocalArtifactStore {
    fn put<'a>(&'a self, key: &'a str, file: &'a Path) -> BoxFuture<'a, Result<ArtifactInfo>> {
        Box::pin(async move {
            let dest = self.path(key)?;
            tokio::fs::create_dir_all(&self.dir)
                .await
                .ctx(|| format!("create artifact dir {}", self.dir.display()))?;
            let what = || format!("store artifact {} as {}", file.display(), dest.display());
            // A hard link is atomic (a reader never sees half an artifact) and create-only (an
            // existing key is refused, never replaced); it fails across file systems, where a
            // copy to a temporary name followed by a link does the same.
            let linked = match tokio::fs::hard_link(file, &dest).await {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    let tmp = dest.with_extension(format!("{}.partial", uuid::Uuid::now_v7()));
                    tokio::fs::copy(file, &tmp).await.ctx(what)?;
                    let linked = tokio::fs::hard_link(&tmp, &dest).await;
                    let _ = tokio::fs::remove_file(&tmp).await;
                    linked
                }
                linked => linked,
            };
            match linked {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(SandboxError::ArtifactExists(key.to_owned()));
                }
                other => other.ctx(what)?,
            }
            tokio::fs::remove_file(file).await.ctx(what)?;
            let size_bytes = tokio::fs::metadata(&dest).await.ctx(what)?.len();
            Ok(ArtifactInfo {
                path: dest,
                size_bytes,
            })
        })
    }

    fn fetch<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<FetchedArtifact>> {
        Box::pin(async move {
            let path = self.path(key)?;
            if !path.is_file() {
                return Err(SandboxError::MissingArtifact { path });
            }
            Ok(FetchedArtifact::kept(path))
        })
    }

    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { Ok(self.path(key)?.is_file()) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let path = self.path(key)?;
            match tokio::fs::remove_file(&path).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(e).ctx(|| format!("delete artifact {}", path.display()))
                }
                _ => Ok(()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_fetch_delete_and_bad_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalArtifactStore::new(dir.path().join("store"));
        let src = dir.path().join("snap");
        std::fs::write(&src, b"abc").unwrap();
        let info = store.put("s1", &src).await.unwrap();
        assert_eq!(info.size_bytes, 3);
        assert_eq!(
            std::fs::read(store.fetch("s1").await.unwrap().path()).unwrap(),
            b"abc"
        );
        store.delete("s1").await.unwrap();
        store.delete("s1").await.unwrap();
        assert!(matches!(
            store.fetch("s1").await,
            Err(SandboxError::MissingArtifact { .. })
        ));
        assert!(matches!(
            store.fetch("../x").await,
            Err(SandboxError::InvalidArtifactKey(_))
        ));
    }
}
