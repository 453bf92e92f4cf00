//! A real S3 server in process: s3s (the S3 protocol, SigV4 checked) over s3s-fs (objects as
//! files in a directory), on a loopback port. For tests and `den bench snapshots`; MinIO is not
//! installable offline, and s3s-fs implements what den relies on: multipart uploads,
//! `If-None-Match: *` on `PUT` and on `CompleteMultipartUpload`, `UploadPartCopy`, listing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use abort::AbortOnDrop;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;

use crate::S3Settings;

/// A running server; stops when dropped.
pub struct LocalS3Server {
    address: SocketAddr,
    root: PathBuf,
    access_key: String,
    secret_key: String,
    _task: AbortOnDrop,
}

impl std::fmt::Debug for LocalS3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalS3Server")
            .field("address", &self.address)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl LocalS3Server {
    /// Serves the buckets under `root` (each a directory; `bucket` is made) on 127.0.0.1,
    /// accepting only requests signed with this key pair.
    pub async fn start(
        root: &Path,
        bucket: &str,
        access_key: &str,
        secret_key: &str,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.join(bucket))?;
        let fs = s3s_fs::FileSystem::new(root)
            .map_err(|err| std::io::Error::other(format!("{err:?}")))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(access_key, secret_key));
        let service = builder.build();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            while let Ok((socket, _)) = listener.accept().await {
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        Ok(Self {
            address,
            root: root.to_owned(),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            _task: AbortOnDrop(task),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The directory holding the buckets.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `AWS_*` settings a client of this server needs, as den reads them from its
    /// environment.
    pub fn environment(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".to_owned(), self.endpoint()),
            ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID".to_owned(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), self.secret_key.clone()),
            ("AWS_ALLOW_HTTP".to_owned(), "true".to_owned()),
        ]
    }

    /// Settings for a store at `url` on this server.
    pub fn settings(&self, url: &str, download_dir: &Path) -> S3Settings {
        let mut settings = S3Settings::new(url, download_dir);
        settings.options = self.environment();
        settings
    }
}

mod abort {
    /// Aborts the server's accept loop when the server is dropped.
    pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
}
