//! Snapshots in S3-compatible object storage: an [`ArtifactStore`] over `object_store`'s S3
//! client, chosen by `snapshots.url = "s3://bucket/prefix"`.
//!
//! - Uploads stream from the file: one `PUT` for an artifact that fits in one part, else a
//!   multipart upload, never more than `max_concurrency` parts in memory.
//! - Writes are create-only: the one-part `PUT` carries `If-None-Match: *`; a multipart upload
//!   goes to a unique staging key first and is then copied to its key with a create-only copy
//!   (`UploadPartCopy` + `CompleteMultipartUpload` with `If-None-Match: *`), since object_store
//!   completes its own multipart uploads unconditionally. A key is therefore never overwritten,
//!   and a node fenced out of a session cannot replace a newer snapshot.
//! - [`S3ArtifactStore::sweep_orphans`] deletes objects under the prefix that no session record
//!   points at (staging leftovers, snapshots of a fenced-out writer) once they are older than a
//!   grace period.
//! - Credentials come from the caller (the binary reads the `AWS_*` environment, as AWS SDKs
//!   do) and are scrubbed from every message this crate produces.
//!
//! Not production code: `local-server` adds [`LocalS3Server`], a real S3 server (s3s-fs) over a
//! directory, for tests and `den bench snapshots`.

mod redact;
mod sweep;

#[cfg(feature = "local-server")]
mod local_server;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use den_sandbox::{ArtifactInfo, ArtifactStore, BoxFuture, FetchedArtifact, SandboxError};
use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut, S3CopyIfNotExists};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[cfg(feature = "local-server")]
pub use local_server::LocalS3Server;
pub use redact::Redactor;
pub use sweep::SweepReport;

/// S3's smallest part (but the last); den's default is larger to keep request counts low.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// Where and how snapshots are stored.
#[derive(Clone)]
pub struct S3Settings {
    /// `s3://bucket` or `s3://bucket/prefix`.
    pub url: String,
    /// `AWS_*` settings as AWS SDKs read them from the environment (lowercase or not):
    /// `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`, … Unknown names are ignored.
    pub options: Vec<(String, String)>,
    /// Where fetched snapshots are downloaded to before a restore.
    pub download_dir: PathBuf,
    /// Bytes per multipart part (at least [`MIN_PART_SIZE`]).
    pub part_size: usize,
    /// Parts uploaded at once; memory use is at most `part_size × max_concurrency`.
    pub max_concurrency: usize,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.options.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("S3Settings")
            .field("url", &self.url)
            .field("options", &names)
            .field("download_dir", &self.download_dir)
            .field("part_size", &self.part_size)
            .field("max_concurrency", &self.max_concurrency)
            .finish()
    }
}

impl S3Settings {
    pub fn new(url: impl Into<String>, download_dir: impl Into<PathBuf>) -> Self {
        Self {
            url: url.into(),
            options: Vec::new(),
            download_dir: download_dir.into(),
            part_size: 8 * 1024 * 1024,
            max_concurrency: 4,
        }
    }

    /// Adds one `AWS_*` setting.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push((key.into(), value.into()));
        self
    }
}

/// Why the store could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum S3ConfigError {
    /// Holds the URL without any user or password part.
    #[error(
        "snapshots.url {0:?} is not an s3://bucket[/prefix] URL (credentials go in the AWS_* environment, never in the URL)"
    )]
    BadUrl(String),
    #[error("snapshots: part size {0} is below S3's minimum of 5 MiB")]
    PartTooSmall(usize),
    #[error("snapshot storage: {0}")]
    Client(String),
}

/// Snapshots as objects under `s3://bucket/prefix`: `snapshots/<key>.tar.zst` for artifacts,
/// `uploads/` for multipart uploads not yet copied to their key.
pub struct S3ArtifactStore {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    location: String,
    prefix: ObjectPath,
    download_dir: PathBuf,
    part_size: usize,
    max_concurrency: usize,
    redactor: Redactor,
}

impl std::fmt::Debug for S3ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3ArtifactStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl S3ArtifactStore {
    pub fn new(settings: S3Settings) -> Result<Self, S3ConfigError> {
        if settings.part_size < MIN_PART_SIZE {
            return Err(S3ConfigError::PartTooSmall(settings.part_size));
        }
        let (bucket, prefix) = parse_url(&settings.url)?;
        let redactor = Redactor::from_options(&settings.options);
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_copy_if_not_exists(S3CopyIfNotExists::Multipart);
        for (key, value) in &settings.options {
            if let Ok(config_key) = AmazonS3ConfigKey::from_str(&key.to_ascii_lowercase()) {
                builder = builder.with_config(config_key, value);
            }
        }
        let store = builder
            .build()
            .map_err(|err| S3ConfigError::Client(redactor.scrub(&err.to_string())))?;
        Ok(Self {
            store: Arc::new(store),
            location: format!("s3://{bucket}/{prefix}"),
            bucket,
            prefix: ObjectPath::from(prefix),
            download_dir: settings.download_dir,
            part_size: settings.part_size,
            max_concurrency: settings.max_concurrency.max(1),
            redactor,
        })
    }

    /// `s3://bucket/prefix`, for logs.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn object(&self, key: &str) -> Result<ObjectPath, SandboxError> {
        check_key(key)?;
        Ok(self
            .prefix
            .clone()
            .join("snapshots")
            .join(format!("{key}.tar.zst")))
    }

    fn staging(&self, key: &str) -> ObjectPath {
        self.prefix
            .clone()
            .join("uploads")
            .join(format!("{key}.{}.partial", uuid::Uuid::now_v7()))
    }

    /// The artifact key an object under the prefix belongs to (`None`: a staging upload or a
    /// stranger).
    fn key_of(&self, object: &ObjectPath) -> Option<String> {
        let mut parts = object.prefix_match(&self.prefix)?;
        if parts.next()?.as_ref() != "snapshots" {
            return None;
        }
        let name = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        name.as_ref().strip_suffix(".tar.zst").map(str::to_owned)
    }

    fn storage_error(&self, what: &str, err: &object_store::Error) -> SandboxError {
        SandboxError::ArtifactStorage(self.redactor.scrub(&format!("{what}: {err}")))
    }

    fn io_error(&self, what: &str, err: &std::io::Error) -> SandboxError {
        SandboxError::ArtifactStorage(format!("{what}: {err}"))
    }

    /// Uploads `file` to `object` create-only. Returns the number of parts it took (1: a single
    /// conditional `PUT`). `precheck` looks the key up before a multipart upload, to refuse
    /// early; the server's create-only condition is what guarantees it.
    async fn upload(
        &self,
        key: &str,
        object: &ObjectPath,
        file: &Path,
        precheck: bool,
    ) -> Result<(u64, usize), SandboxError> {
        let mut source = tokio::fs::File::open(file)
            .await
            .map_err(|err| self.io_error("open the snapshot", &err))?;
        let size = source
            .metadata()
            .await
            .map_err(|err| self.io_error("read the snapshot's size", &err))?
            .len();
        let exists = |err: object_store::Error| match err {
            object_store::Error::AlreadyExists { .. } => {
                SandboxError::ArtifactExists(key.to_owned())
            }
            other => self.storage_error("upload the snapshot", &other),
        };
        if size <= self.part_size as u64 {
            // Bounded by the part size: read it whole and PUT it with If-None-Match: *.
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            source
                .read_to_end(&mut bytes)
                .await
                .map_err(|err| self.io_error("read the snapshot", &err))?;
            let options = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            self.store
                .put_opts(object, PutPayload::from(bytes), options)
                .await
                .map_err(exists)?;
            return Ok((size, 1));
        }
        // Refuse early (and cheaply) when the key is taken; the create-only copy below is what
        // guarantees it against a concurrent writer.
        if precheck && self.head(object).await?.is_some() {
            return Err(SandboxError::ArtifactExists(key.to_owned()));
        }
        let staging = self.staging(key);
        let parts = match self.multipart(&staging, &mut source).await {
            Ok(parts) => parts,
            Err(err) => {
                let _ = self.store.delete(&staging).await;
                return Err(err);
            }
        };
        let copied = self.store.copy_if_not_exists(&staging, object).await;
        if let Err(err) = self.store.delete(&staging).await {
            tracing::warn!(error = %self.redactor.scrub(&err.to_string()), "cannot delete a staging upload; the sweeper will");
        }
        copied.map_err(exists)?;
        Ok((size, parts))
    }

    /// Streams `source` into a multipart upload at `staging`, `max_concurrency` parts at most
    /// in flight. Returns the number of parts.
    async fn multipart(
        &self,
        staging: &ObjectPath,
        source: &mut tokio::fs::File,
    ) -> Result<usize, SandboxError> {
        let upload = self
            .store
            .put_multipart(staging)
            .await
            .map_err(|err| self.storage_error("start a multipart upload", &err))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        let mut buffer = vec![0_u8; 1024 * 1024];
        let mut parts = 0_usize;
        let mut in_part = 0_usize;
        loop {
            let read = match source.read(&mut buffer).await {
                Ok(read) => read,
                Err(err) => {
                    let _ = writer.abort().await;
                    return Err(self.io_error("read the snapshot", &err));
                }
            };
            if read == 0 {
                break;
            }
            if let Err(err) = writer.wait_for_capacity(self.max_concurrency).await {
                let _ = writer.abort().await;
                return Err(self.storage_error("upload a part", &err));
            }
            writer.write(&buffer[..read]);
            // Counted here rather than read from the ETag: not every server says it there.
            in_part += read;
            while in_part >= self.part_size {
                parts += 1;
                in_part -= self.part_size;
            }
        }
        if in_part > 0 {
            parts += 1;
        }
        writer
            .finish()
            .await
            .map_err(|err| self.storage_error("complete the multipart upload", &err))?;
        Ok(parts)
    }

    async fn head(
        &self,
        object: &ObjectPath,
    ) -> Result<Option<object_store::ObjectMeta>, SandboxError> {
        match self.store.head(object).await {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(self.storage_error("look the snapshot up", &err)),
        }
    }

    /// Uploads `file` under `key` and says how many parts it took (1: one `PUT`); the file is
    /// left in place. For tests and the benchmark; den itself uses [`ArtifactStore::put`].
    pub async fn upload_file(&self, key: &str, file: &Path) -> Result<(u64, usize), SandboxError> {
        let object = self.object(key)?;
        self.upload(key, &object, file, true).await
    }

    /// Downloads `key` to `dest`, streaming.
    pub async fn download_to(&self, key: &str, dest: &Path) -> Result<u64, SandboxError> {
        let object = self.object(key)?;
        let result = match self.store.get(&object).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(SandboxError::MissingArtifact {
                    path: PathBuf::from(format!("{}/snapshots/{key}.tar.zst", self.location)),
                });
            }
            Err(err) => return Err(self.storage_error("download the snapshot", &err)),
        };
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(|err| self.io_error("create the download", &err))?;
        let mut stream = result.into_stream();
        let mut written = 0_u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|err| self.storage_error("download the snapshot", &err))?;
            file.write_all(&chunk)
                .await
                .map_err(|err| self.io_error("write the download", &err))?;
            written += chunk.len() as u64;
        }
        file.flush()
            .await
            .map_err(|err| self.io_error("write the download", &err))?;
        Ok(written)
    }
}

impl ArtifactStore for S3ArtifactStore {
    fn put<'a>(
        &'a self,
        key: &'a str,
        file: &'a Path,
    ) -> BoxFuture<'a, den_sandbox::Result<ArtifactInfo>> {
        Box::pin(async move {
            let object = self.object(key)?;
            let (size_bytes, parts) = self.upload(key, &object, file, true).await?;
            tracing::debug!(key, size_bytes, parts, "snapshot stored in object storage");
            let _ = tokio::fs::remove_file(file).await;
            Ok(ArtifactInfo {
                path: PathBuf::from(format!("s3://{}/{object}", self.bucket)),
                size_bytes,
            })
        })
    }

    fn fetch<'a>(&'a self, key: &'a str) -> BoxFuture<'a, den_sandbox::Result<FetchedArtifact>> {
        Box::pin(async move {
            check_key(key)?;
            tokio::fs::create_dir_all(&self.download_dir)
                .await
                .map_err(|err| self.io_error("create the download directory", &err))?;
            // A unique name: two restores of one key never share (or delete) one download.
            let dest = self
                .download_dir
                .join(format!("{key}.{}.tar.zst", uuid::Uuid::now_v7()));
            let fetched = FetchedArtifact::temporary(&dest);
            self.download_to(key, &dest).await?;
            Ok(fetched)
        })
    }

    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, den_sandbox::Result<bool>> {
        Box::pin(async move {
            let object = self.object(key)?;
            Ok(self.head(&object).await?.is_some())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, den_sandbox::Result<()>> {
        Box::pin(async move {
            let object = self.object(key)?;
            match self.store.delete(&object).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(err) => Err(self.storage_error("delete the snapshot", &err)),
            }
        })
    }
}

/// The same rule as the local store: keys become object names and file names.
fn check_key(key: &str) -> Result<(), SandboxError> {
    let ok = !key.is_empty()
        && key.len() <= 200
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(SandboxError::InvalidArtifactKey(key.to_owned()))
    }
}

/// `raw` with anything between `://` and an `@` replaced, so a URL that (wrongly) holds a
/// credential can be quoted in an error.
fn without_userinfo(raw: &str) -> String {
    match (raw.find("://"), raw.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &raw[..scheme], &raw[at + 1..])
        }
        (None, Some(at)) => format!("…@{}", &raw[at + 1..]),
        _ => raw.to_owned(),
    }
}

/// `s3://bucket[/prefix]` → (bucket, prefix without slashes at either end).
fn parse_url(raw: &str) -> Result<(String, String), S3ConfigError> {
    let bad = || S3ConfigError::BadUrl(without_userinfo(raw));
    // Checked on the raw text: the URL parser resolves `..` away.
    if raw
        .split('/')
        .skip(3)
        .any(|part| part == "." || part == "..")
    {
        return Err(bad());
    }
    let url = url::Url::parse(raw).map_err(|_| bad())?;
    if url.scheme() != "s3"
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
        || url.port().is_some()
    {
        return Err(bad());
    }
    let bucket = url.host_str().filter(|b| !b.is_empty()).ok_or_else(bad)?;
    let prefix = url.path().trim_matches('/');
    Ok((bucket.to_owned(), prefix.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_or_refused() {
        assert_eq!(
            parse_url("s3://bucket/a/b/").unwrap(),
            ("bucket".to_owned(), "a/b".to_owned())
        );
        assert_eq!(
            parse_url("s3://bucket").unwrap(),
            ("bucket".to_owned(), String::new())
        );
        for bad in [
            "https://bucket/x",
            "s3://",
            "s3://key:secret@bucket/x",
            "s3://bucket/../x",
            "s3://bucket/x?y=1",
            "not a url",
        ] {
            assert!(
                matches!(parse_url(bad), Err(S3ConfigError::BadUrl(_))),
                "{bad}"
            );
        }
    }

    /// The guarantee is the server's condition, not den's look-up first: with the look-up
    /// skipped (as when another node writes the key between look-up and completion), both the
    /// one-`PUT` and the multipart path are refused and the first artifact stays.
    #[tokio::test]
    async fn the_server_refuses_a_second_write_of_a_key_without_the_lookup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server =
            LocalS3Server::start(&dir.path().join("s3"), "bucket", "AKIDUNIT", "unit-secret")
                .await
                .expect("server");
        let mut settings = server.settings("s3://bucket/p", &dir.path().join("dl"));
        settings.part_size = MIN_PART_SIZE;
        let store = S3ArtifactStore::new(settings).expect("store");
        let first = dir.path().join("first");
        std::fs::write(&first, b"first").expect("write");
        let object = store.object("k").expect("key");
        store
            .upload("k", &object, &first, false)
            .await
            .expect("first write");
        let small = dir.path().join("small");
        std::fs::write(&small, b"second").expect("write");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![7_u8; MIN_PART_SIZE + 1]).expect("write");
        for file in [&small, &big] {
            let refused = store.upload("k", &object, file, false).await;
            assert!(
                matches!(refused, Err(SandboxError::ArtifactExists(_))),
                "{refused:?}"
            );
        }
        let fetched = store.fetch("k").await.expect("fetch");
        assert_eq!(std::fs::read(fetched.path()).expect("read"), b"first");
    }

    #[test]
    fn a_url_with_credentials_is_not_echoed() {
        let err = parse_url("s3://AKIDEXAMPLE:topsecret@bucket/x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3://…@bucket/x"), "{err}");
        assert!(
            !err.contains("AKIDEXAMPLE") && !err.contains("topsecret"),
            "{err}"
        );
    }
}
