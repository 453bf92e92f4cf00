//! Resource limits: processes, memory, lifetime; freeze and thaw.

use std::time::{Duration, Instant};

use crate::harness::Harness;
use den_sandbox::{ExitReason, Limits, SandboxRuntime, SandboxStatus};

async fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_bomb_stops_at_the_process_limit_and_den_stays_responsive() {
    let h = Harness::new().await;
    let mut spec = h.spec("bomb() { bomb | bomb & }; bomb; exec sleep 600");
    spec.limits = Limits {
        millicpus: 500,
        memory_bytes: 512 << 20,
        pids: 64,
    };
    let bomb = h.rt.create(spec, None).await.unwrap();
    let rt = h.rt.clone();
    let id = bomb.id.clone();
    wait_for("the pid limit to be hit", Duration::from_secs(60), || {
        rt.stats(&id).map(|s| s.pid_limit_hits > 0).unwrap_or(false)
    })
    .await;
    let stats = h.rt.stats(&bomb.id).unwrap();
    assert!(stats.pids <= 64, "{stats:?}");
    // den stays responsive: another sandbox starts and finishes promptly while the bomb runs.
    let t = Instant::now();
    let (reason, out) = h.run(h.spec("echo alive")).await;
    assert_eq!(
        (reason, out.as_str()),
        (ExitReason::Exited { code: 0 }, "alive\n")
    );
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "den was slowed down: {:?}",
        t.elapsed()
    );
    h.rt.destroy(&bomb.id).await.unwrap();
    h.finish().await;
}

#[tokio::test]
async fn a_memory_hog_is_killed_inside_the_sandbox_only() {
    let h = Harness::new().await;
    let limits = Limits {
        millicpus: 1000,
        memory_bytes: 128 << 20,
        pids: 64,
    };
    // The hog (tail keeping a 1 GiB "line") dies; the shell that started it survives.
    let mut spec =
        h.spec("head -c 1G /dev/zero | tail > /dev/null; echo \"hog status $?\"; echo survived");
    spec.limits = limits;
    let (reason, out) = h.run(spec).await;
    assert_eq!(reason, ExitReason::Exited { code: 0 }, "{out}");
    assert!(out.contains("hog status 137\nsurvived"), "{out}");
    // When the command itself is the hog, the sandbox reports running out of memory.
    let mut spec = h.spec("head -c 1G /dev/zero | tail");
    spec.limits = limits;
    let (reason, out) = h.run(spec).await;
    assert_eq!(reason, ExitReason::OutOfMemory, "{out}");
    h.finish().await;
}

#[tokio::test]
async fn the_lifetime_limit_kills_the_sandbox() {
    let h = Harness::new().await;
    let mut spec = h.spec("exec sleep 600");
    spec.lifetime = Duration::from_secs(1);
    let sb = h.rt.create(spec, None).await.unwrap();
    assert_eq!(
        h.wait_exit(&sb, Duration::from_secs(60)).await,
        ExitReason::LifetimeExceeded
    );
    h.rt.destroy(&sb.id).await.unwrap();
    h.finish().await;
}

#[tokio::test]
async fn freeze_stops_all_progress_and_thaw_resumes_it() {
    let h = Harness::new().await;
    let sb =
        h.rt.create(
            h.spec("i=0; while :; do i=$((i+1)); echo $i > /workspace/tick; done"),
            None,
        )
        .await
        .unwrap();
    let tick =
        h.rt.config()
            .root_dir
            .join("sandboxes")
            .join(sb.id.as_str())
            .join("ws/upper/tick");
    let read = || std::fs::read_to_string(&tick).unwrap_or_default();
    wait_for("the counter to start", Duration::from_secs(30), || {
        !read().is_empty()
    })
    .await;
    h.rt.freeze(&sb.id).await.unwrap();
    assert_eq!(h.rt.status(&sb.id).unwrap(), SandboxStatus::Frozen);
    let frozen_at = read();
    // Frozen means no change at all: give a running counter ample time to move.
    let moved = tokio::time::timeout(Duration::from_millis(500), async {
        while read() == frozen_at {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(moved.is_err(), "the counter moved while frozen");
    h.rt.thaw(&sb.id).await.unwrap();
    assert_eq!(h.rt.status(&sb.id).unwrap(), SandboxStatus::Running);
    wait_for(
        "the counter to move after thaw",
        Duration::from_secs(30),
        || read() != frozen_at,
    )
    .await;
    // A frozen sandbox can still be stopped.
    h.rt.freeze(&sb.id).await.unwrap();
    h.rt.destroy(&sb.id).await.unwrap();
    h.finish().await;
}

#[tokio::test]
async fn a_starting_sandbox_may_use_every_cpu_and_its_limit_applies_once_ready() {
    let h = Harness::new().await;
    let mut spec = h.spec("exec sleep 600");
    spec.limits.millicpus = 1000;
    let sb = h.rt.create(spec, None).await.unwrap();
    let host = std::thread::available_parallelism().unwrap().get() as u32 * 1000;
    assert_eq!(
        h.rt.stats(&sb.id).unwrap().cpu_millicpus,
        Some(host.max(1000)),
        "the start burst"
    );
    sb.start_slot.mark_ready();
    assert_eq!(
        h.rt.stats(&sb.id).unwrap().cpu_millicpus,
        Some(1000),
        "the spec's limit once ready"
    );
    h.rt.destroy(&sb.id).await.unwrap();
    h.finish().await;
}
