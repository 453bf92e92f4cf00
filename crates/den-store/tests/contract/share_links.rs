//! The contract of share links (found by hash only while neither revoked nor expired, managed
//! only by their owner) and of the event copy a fork starts with.

use super::{Duration, StoreError, Uuid, now, session, stores, user};
use den_store::NewShareLink;

fn link<'a>(session_id: Uuid, owner_id: Uuid, hash: &'a str) -> NewShareLink<'a> {
    NewShareLink {
        id: Uuid::now_v7(),
        session_id,
        owner_id,
        token_hash: hash,
        expires_at: None,
    }
}

#[tokio::test]
async fn share_links_work_until_revoked_or_expired_and_belong_to_the_sessions_owner() {
    let (stores, _dir) = stores().await;
    for store in stores {
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let id = session(&store, alice, "shared").await;
        let backend = store.backend_name();

        // Bob cannot share Alice's session.
        let refused = store.create_share_link(link(id, bob, "h-bob")).await;
        assert!(matches!(refused, Err(StoreError::NotFound)), "{backend}");

        let made = store
            .create_share_link(link(id, alice, "h1"))
            .await
            .unwrap();
        assert_eq!(store.live_share_link("h1").await.unwrap().id, made.id);
        assert!(matches!(
            store.create_share_link(link(id, alice, "h1")).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store.live_share_link("h-unknown").await,
            Err(StoreError::NotFound)
        ));

        // Only the owner revokes; revoked, the hash finds nothing.
        assert!(matches!(
            store.revoke_share_link(bob, id, made.id).await,
            Err(StoreError::NotFound)
        ));
        assert!(store.live_share_link("h1").await.is_ok(), "{backend}");
        store.revoke_share_link(alice, id, made.id).await.unwrap();
        store.revoke_share_link(alice, id, made.id).await.unwrap();
        assert!(matches!(
            store.live_share_link("h1").await,
            Err(StoreError::NotFound)
        ));

        // Expired: found no more, still listed.
        let mut expiring = link(id, alice, "h2");
        expiring.expires_at = Some(now() - Duration::seconds(1));
        store.create_share_link(expiring).await.unwrap();
        assert!(matches!(
            store.live_share_link("h2").await,
            Err(StoreError::NotFound)
        ));
        let mut later = link(id, alice, "h3");
        later.expires_at = Some(now() + Duration::hours(1));
        store.create_share_link(later).await.unwrap();
        assert!(store.live_share_link("h3").await.is_ok(), "{backend}");

        let listed = store.share_links_of(alice, id).await.unwrap();
        assert_eq!(listed.len(), 3, "{backend}");
        assert!(listed.iter().any(|l| l.revoked_at.is_some()));
        assert!(store.share_links_of(bob, id).await.unwrap().is_empty());

        // Deleting the session takes its links.
        store.delete_session(alice, id).await.unwrap();
        assert!(matches!(
            store.live_share_link("h3").await,
            Err(StoreError::NotFound)
        ));
    }
}

#[tokio::test]
async fn a_fork_copies_its_sources_events_up_to_the_last_finished_turn() {
    let (stores, _dir) = stores().await;
    for store in stores {
        let alice = user(&store, "alice").await;
        let source = session(&store, alice, "source").await;
        let fork = session(&store, alice, "fork").await;
        let kinds = [
            "status",
            "turn_started",
            "text_delta",
            "turn_finished",
            "turn_started",
        ];
        for (n, kind) in kinds.iter().enumerate() {
            let payload = serde_json::json!({"n": n, "text": "ünïcode ✓"});
            store
                .append_event(source, n as i64 + 1, kind, &payload, now())
                .await
                .unwrap();
        }
        let up_to = store.last_finished_turn_seq(source).await.unwrap();
        assert_eq!(up_to, 4);
        assert_eq!(store.copy_events(source, fork, up_to).await.unwrap(), 4);
        let copied = store.events_after(fork, 0, 100).await.unwrap();
        let original = store.events_after(source, 0, 4).await.unwrap();
        assert_eq!(copied, original, "{}", store.backend_name());
        assert_eq!(store.events_after(source, 0, 100).await.unwrap().len(), 5);
        // The fork goes on numbering after the copy.
        let next = store
            .append_next_event(fork, "status", &serde_json::json!({}), now())
            .await
            .unwrap();
        assert_eq!(next, 5);
        assert_eq!(
            store.last_finished_turn_seq(Uuid::now_v7()).await.unwrap(),
            0
        );
    }
}
