//! The contract of session ownership across nodes: leases, their fencing epoch, nodes.

use std::time::Duration;

use den_protocol::events::QueuedPrompt;
use den_protocol::sessions::SessionStatus;
use den_store::{Fence, Keyring, LeaseOutcome};
use sqlx::Connection;

use super::{StoreError, fresh_postgres, now, session, stores, user};

const TTL: Duration = Duration::from_secs(30);

fn acquired(outcome: LeaseOutcome) -> Fence {
    match outcome {
        LeaseOutcome::Acquired(fence) => fence,
        LeaseOutcome::Held { owner, .. } => panic!("held by {owner}"),
    }
}

fn queued(id: &str) -> QueuedPrompt {
    QueuedPrompt {
        id: id.to_owned(),
        text: format!("prompt {id}"),
        model: None,
    }
}

#[tokio::test]
async fn a_session_has_one_owner_and_a_node_that_lost_its_lease_can_write_nothing() {
    let (stores, _dir) = stores().await;
    for store in stores {
        let backend = store.backend_name();
        let alice = user(&store, "alice").await;
        let id = session(&store, alice, "t").await;
        store
            .register_node("a", "http://127.0.0.1:1")
            .await
            .unwrap();
        store
            .register_node("b", "http://127.0.0.1:2")
            .await
            .unwrap();

        let a = acquired(store.acquire_lease(id, "a", TTL).await.unwrap());
        assert_eq!(a.epoch, 1, "{backend}");
        // B cannot take a lease A holds, and learns where A takes commands.
        assert_eq!(
            store.acquire_lease(id, "b", TTL).await.unwrap(),
            LeaseOutcome::Held {
                owner: "a".to_owned(),
                internal_url: Some("http://127.0.0.1:1".to_owned())
            },
            "{backend}"
        );
        let payload = serde_json::json!({"n": 1});
        assert_eq!(
            store
                .append_next_event_fenced(id, &a, "k", &payload, now())
                .await
                .unwrap(),
            1
        );
        store.replace_queue(id, &a, &[queued("q1")]).await.unwrap();

        // A stops renewing (paused, cut off): once its lease expired, B takes over.
        assert_eq!(store.expire_leases_of("a").await.unwrap(), 1);
        let b = acquired(store.acquire_lease(id, "b", TTL).await.unwrap());
        assert_eq!(
            b.epoch, 2,
            "{backend}: the epoch grows on every acquisition"
        );

        // Everything A still tries is refused and changes nothing.
        assert!(matches!(
            store
                .append_next_event_fenced(id, &a, "late", &payload, now())
                .await,
            Err(StoreError::Fenced)
        ));
        assert!(matches!(
            store
                .set_session_status_fenced(id, &a, SessionStatus::Error, Some("late"))
                .await,
            Err(StoreError::Fenced)
        ));
        assert!(matches!(
            store
                .set_session_agent_state_fenced(id, &a, Some("ses_late"), Some("snap_late"))
                .await,
            Err(StoreError::Fenced)
        ));
        assert!(matches!(
            store.replace_queue(id, &a, &[]).await,
            Err(StoreError::Fenced)
        ));
        assert!(!store.renew_lease(id, &a, TTL).await.unwrap());
        assert!(!store.release_lease(id, &a).await.unwrap());
        assert!(
            store.heartbeat("a", TTL).await.unwrap().is_empty(),
            "{backend}: A's heartbeat renews nothing of B's"
        );
        let record = store.session(id).await.unwrap();
        assert_eq!(record.status, "idle", "{backend}");
        assert_eq!(record.snapshot_id, None);
        assert_eq!(
            store.queue(id).await.unwrap(),
            [queued("q1")],
            "the queue is kept"
        );
        assert_eq!(store.last_event_seq(id).await.unwrap(), 1);

        // B writes under its own epoch, continuing the numbering.
        assert_eq!(
            store
                .append_next_event_fenced(id, &b, "k", &payload, now())
                .await
                .unwrap(),
            2
        );
        store
            .set_session_status_fenced(id, &b, SessionStatus::Running, None)
            .await
            .unwrap();
        store
            .set_session_agent_state_fenced(id, &b, Some("ses_1"), Some("snap_1"))
            .await
            .unwrap();
        store
            .replace_queue(id, &b, &[queued("q2"), queued("q3")])
            .await
            .unwrap();
        assert_eq!(store.queue(id).await.unwrap(), [queued("q2"), queued("q3")]);
        assert_eq!(store.heartbeat("b", TTL).await.unwrap(), [(id, 2)]);
        assert!(store.renew_lease(id, &b, TTL).await.unwrap());

        // A graceful release lets A take it back at once, without waiting for an expiry.
        assert!(store.release_lease(id, &b).await.unwrap());
        let lease = store.lease(id).await.unwrap().unwrap();
        assert_eq!(lease.owner_node, None);
        let a2 = acquired(store.acquire_lease(id, "a", TTL).await.unwrap());
        assert_eq!(a2.epoch, 3);
        // A node that restarted takes its own lease again, fencing its earlier run out.
        let a3 = acquired(store.acquire_lease(id, "a", TTL).await.unwrap());
        assert_eq!(a3.epoch, 4);
        assert!(matches!(
            store
                .append_next_event_fenced(id, &a2, "late", &payload, now())
                .await,
            Err(StoreError::Fenced)
        ));

        // Nodes: draining and removed ones are not live.
        let live = |nodes: Vec<den_store::NodeRecord>| {
            nodes.into_iter().map(|n| n.node_id).collect::<Vec<_>>()
        };
        assert_eq!(live(store.live_nodes(TTL).await.unwrap()), ["a", "b"]);
        store.set_node_draining("a", true).await.unwrap();
        store.remove_node("b").await.unwrap();
        assert!(store.live_nodes(TTL).await.unwrap().is_empty());

        // Deleting the session deletes its lease and queue.
        store.delete_session(alice, id).await.unwrap();
        assert_eq!(store.lease(id).await.unwrap(), None);
        assert!(store.queue(id).await.unwrap().is_empty());
    }
}

/// The race a row lock closes: a write that checked the epoch and has not committed yet must
/// be ordered before a steal, so the new owner's first read sees it. With `FOR SHARE` the
/// steal waits for the write's transaction; `FOR KEY SHARE` would let it through.
#[tokio::test]
async fn on_postgres_a_steal_waits_for_the_old_owners_write_in_flight() {
    let Some((store, url)) = fresh_postgres(Keyring::generate().unwrap()).await else {
        return;
    };
    let alice = user(&store, "alice").await;
    let id = session(&store, alice, "t").await;
    let a = acquired(store.acquire_lease(id, "a", TTL).await.unwrap());
    store.expire_leases_of("a").await.unwrap();

    // A's write in flight: it checked its epoch (the statement den's fenced writes use) and
    // holds the lease row until it commits.
    let mut old_owner = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut write = old_owner.begin().await.unwrap();
    let held: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM session_leases WHERE session_id = $1 \
         AND owner_node = $2 AND epoch = $3 FOR SHARE)",
    )
    .bind(id)
    .bind(&a.node)
    .bind(a.epoch)
    .fetch_one(&mut *write)
    .await
    .unwrap();
    assert!(held);
    sqlx::query(
        "INSERT INTO session_events (session_id, seq, epoch, kind, payload, created_at) \
         VALUES ($1, 1, $2, 'k', '{}', now())",
    )
    .bind(id)
    .bind(a.epoch)
    .execute(&mut *write)
    .await
    .unwrap();

    let steal = tokio::spawn({
        let store = store.clone();
        async move { store.acquire_lease(id, "b", TTL).await }
    });
    // The steal cannot finish while A's write is open.
    let mut steal = steal;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut steal)
            .await
            .is_err(),
        "the steal went through beside an uncommitted fenced write"
    );
    write.commit().await.unwrap();
    let b = acquired(steal.await.unwrap().unwrap());
    assert_eq!(b.epoch, a.epoch + 1);
    // So the new owner's numbering continues after A's last write.
    assert_eq!(store.last_event_seq(id).await.unwrap(), 1);
    let next = store
        .append_next_event_fenced(id, &b, "k", &serde_json::json!({}), now())
        .await
        .unwrap();
    assert_eq!(next, 2);
}
