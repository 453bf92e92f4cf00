//! Where snapshot archives are kept between pause and resume. Local directory now; object
//! storage later, behind the same trait. The session layer records an artifact's key, never
//! its path, so moving snapshots elsewhere changes only the store.

use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result, SandboxError};
use crate::runtime::{ArtifactInfo, BoxFuture};

pub trait ArtifactStore: Send + Sync {
    /// Moves (or uploads) the file at `file` under `key`, replacing any previous one.
    fn put<'a>(&'a self, key: &'a str, file: &'a Path) -> BoxFuture<'a, Result<ArtifactInfo>>;
    /// A local path holding the artifact, ready for `SandboxRuntime::restore`.
    fn fetch<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<PathBuf>>;
    /// Deleting a key that does not exist is not an error.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>>;
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
            // rename is atomic, so a reader never sees half an artifact; it fails across file
            // systems, where a copy to a temporary name followed by a rename does the same.
            if tokio::fs::rename(file, &dest).await.is_err() {
                let tmp = dest.with_extension("partial");
                tokio::fs::copy(file, &tmp).await.ctx(what)?;
                tokio::fs::rename(&tmp, &dest).await.ctx(what)?;
                tokio::fs::remove_file(file).await.ctx(what)?;
            }
            let size_bytes = tokio::fs::metadata(&dest).await.ctx(what)?.len();
            Ok(ArtifactInfo {
                path: dest,
                size_bytes,
            })
        })
    }

    fn fetch<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<PathBuf>> {
        Box::pin(async move {
            let path = self.path(key)?;
            if !path.is_file() {
                return Err(SandboxError::MissingArtifact { path });
            }
            Ok(path)
        })
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
            std::fs::read(store.fetch("s1").await.unwrap()).unwrap(),
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
