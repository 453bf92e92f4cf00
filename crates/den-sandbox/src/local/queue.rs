//! The create queue. Starting OpenCode costs ~3.6 CPU-seconds, so starting many sandboxes at
//! once only makes every one of them late; creates beyond a configured concurrency wait here, in
//! order, and each waiter hears its position whenever it changes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::runtime::ProgressSender;
use crate::spec::CreateProgress;

#[derive(Debug)]
pub(crate) struct CreateQueue {
    slots: Arc<Semaphore>,
    waiting: Mutex<VecDeque<u64>>,
    next: AtomicU64,
    changed: watch::Sender<()>,
}

/// Removes a waiter's ticket however its wait ends (including cancellation).
struct Ticket<'a> {
    queue: &'a CreateQueue,
    id: u64,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        crate::runtime::lock(&self.queue.waiting).retain(|t| *t != self.id);
        self.queue.changed.send_replace(());
    }
}

impl CreateQueue {
    pub(crate) fn new(concurrency: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: Mutex::new(VecDeque::new()),
            next: AtomicU64::new(0),
            changed: watch::channel(()).0,
        }
    }

    fn position(&self, id: u64) -> usize {
        crate::runtime::lock(&self.waiting)
            .iter()
            .position(|t| *t == id)
            .map_or(0, |p| p + 1)
    }

    /// Waits for a slot (FIFO: tokio's semaphore is fair). The permit frees the slot on drop.
    pub(crate) async fn acquire(&self, progress: Option<&ProgressSender>) -> OwnedSemaphorePermit {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        crate::runtime::lock(&self.waiting).push_back(id);
        let ticket = Ticket { queue: self, id };
        let mut changed = self.changed.subscribe();
        let acquire = self.slots.clone().acquire_owned();
        tokio::pin!(acquire);
        let mut last = None;
        loop {
            let pos = self.position(id);
            if last != Some(pos) {
                if let Some(p) = progress {
                    let _ = p.send(CreateProgress::Queued { position: pos });
                }
                last = Some(pos);
            }
            tokio::select! {
                permit = &mut acquire => {
                    drop(ticket);
                    // The semaphore is never closed, so this cannot fail.
                    return permit.expect("create queue semaphore closed");
                }
                _ = changed.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_hear_their_position_and_go_in_order() {
        let q = Arc::new(CreateQueue::new(1));
        let first = q.acquire(None).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (tx2, mut rx2) = tokio::sync::mpsc::unbounded_channel();
        let q1 = q.clone();
        let a = tokio::spawn(async move { q1.acquire(Some(&tx)).await });
        assert_eq!(
            rx.recv().await,
            Some(CreateProgress::Queued { position: 1 })
        );
        let q2 = q.clone();
        let b = tokio::spawn(async move { q2.acquire(Some(&tx2)).await });
        assert_eq!(
            rx2.recv().await,
            Some(CreateProgress::Queued { position: 2 })
        );
        drop(first);
        let permit_a = a.await.unwrap();
        assert_eq!(
            rx2.recv().await,
            Some(CreateProgress::Queued { position: 1 })
        );
        assert!(!b.is_finished());
        drop(permit_a);
        drop(b.await.unwrap());
    }
}
