//! The `snapshots` suite: storing and fetching a 100 MB snapshot in S3-compatible object
//! storage (den's `S3ArtifactStore` against a real S3 server, s3s-fs in process on loopback),
//! with a plain file copy of the same bytes on the same disk as the baseline, measured in the
//! same run. A put is what den does after a turn: a streamed multipart upload to a staging key,
//! then the server-side create-only copy to the snapshot's key; a get streams it back to a file.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use den_s3::{LocalS3Server, S3ArtifactStore};
use den_sandbox::ArtifactStore;

use super::{Metric, median};
use crate::config::Settings;

/// The snapshot's size: the 100 MB.
const SNAPSHOT_BYTES: usize = 100 * 1000 * 1000;

pub(crate) async fn run(settings: &Settings, quick: bool) -> anyhow::Result<Vec<Metric>> {
    let runs = if quick { 3 } else { 7 };
    let dir = tempfile::tempdir().context("making the benchmark's directory")?;
    let server = LocalS3Server::start(
        &dir.path().join("s3"),
        "den-bench",
        "AKIDBENCH",
        "bench-secret-key",
    )
    .await
    .context("starting the local S3 server")?;
    let mut s3 = server.settings("s3://den-bench/snapshots", &dir.path().join("downloads"));
    s3.part_size = settings.snapshots.part_size_mb.saturating_mul(1024 * 1024);
    let store = S3ArtifactStore::new(s3)?;

    let source = dir.path().join("snapshot.tar.zst");
    write_incompressible(&source, SNAPSHOT_BYTES)?;

    let (mut put, mut get, mut copy_put, mut copy_get) = (vec![], vec![], vec![], vec![]);
    for run in 0..runs {
        let copy = dir.path().join(format!("copy-{run}"));
        let back = dir.path().join(format!("back-{run}"));
        copy_put.push(timed_ms(tokio::fs::copy(&source, &copy)).await?);
        copy_get.push(timed_ms(tokio::fs::copy(&copy, &back)).await?);
        std::fs::remove_file(&copy)?;
        std::fs::remove_file(&back)?;

        let key = format!("bench-{run}");
        put.push(timed_ms(store.upload_file(&key, &source)).await?);
        let started = Instant::now();
        let fetched = store.fetch(&key).await?;
        get.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            std::fs::metadata(fetched.path())?.len() == SNAPSHOT_BYTES as u64,
            "the fetched snapshot has the wrong size"
        );
        drop(fetched);
        store.delete(&key).await?;
    }
    let note = format!(
        "{} MB, {runs} runs, loopback s3s-fs",
        SNAPSHOT_BYTES / 1_000_000
    );
    Ok(vec![
        Metric::new("cluster.snapshot_copy_put_ms_p50", median(copy_put), "ms")
            .note("plain file copy of the same bytes"),
        Metric::new("cluster.snapshot_put_ms_p50", median(put), "ms")
            .against("cluster.snapshot_copy_put_ms_p50")
            .note(note.clone()),
        Metric::new("cluster.snapshot_copy_get_ms_p50", median(copy_get), "ms")
            .note("plain file copy of the same bytes"),
        Metric::new("cluster.snapshot_get_ms_p50", median(get), "ms")
            .against("cluster.snapshot_copy_get_ms_p50")
            .note(note),
    ])
}

async fn timed_ms<T, E>(work: impl Future<Output = Result<T, E>>) -> anyhow::Result<f64>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    work.await?;
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

/// `len` bytes that zstd cannot shrink, like a real (compressed) snapshot: xorshift output.
fn write_incompressible(path: &Path, len: usize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut written = 0;
    let mut block = vec![0_u8; 1 << 20];
    while written < len {
        for chunk in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes());
        }
        let n = block.len().min(len - written);
        file.write_all(&block[..n])?;
        written += n;
    }
    file.flush()?;
    Ok(())
}
