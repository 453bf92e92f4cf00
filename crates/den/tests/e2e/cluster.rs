//! Several den nodes (real processes on loopback) on one real PostgreSQL: a session is owned by
//! one node at a time, any node serves it, and no client misses or repeats an event across an
//! owner change. Nodes on one machine share the local snapshot directory here (several
//! machines would share object storage). The lease TTL is short (config) to keep failovers
//! quick.

use std::time::Duration;

use den_protocol::events::{SequencedEvent, SessionEvent, TurnOutcome};
use den_test_support::{Gate, Turn};
use sqlx::Connection;

use crate::harness::{Den, WITHIN, seqs};

const SHORT_LEASE: &str = "[cluster]\nlease_ttl_ms = 3000\n";

/// The session's lease as stored: owner node, epoch, expired.
async fn lease(den: &Den, session: &str) -> (Option<String>, i64, bool) {
    let mut db = sqlx::PgConnection::connect(den.database_url.as_deref().unwrap())
        .await
        .unwrap();
    let id: uuid::Uuid = session.parse().unwrap();
    sqlx::query_as(
        "SELECT owner_node, epoch, expires_at_ms < CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) \
         FROM session_leases WHERE session_id = $1",
    )
    .bind(id)
    .fetch_one(&mut db)
    .await
    .unwrap()
}

/// Waits until the session's lease expired (its owner stopped renewing it).
async fn lease_expired(den: &Den, session: &str) {
    tokio::time::timeout(WITHIN, async {
        while !lease(den, session).await.2 {
            // The lease is on the database's clock: there is no event to wait on but time.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the dead owner's lease expires");
}

/// Waits until `den`'s log holds `text`.
async fn logged(den: &Den, text: &str) {
    tokio::time::timeout(WITHIN, async {
        while !den.log.lock().unwrap().contains(text) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("den never logged {text:?}"));
}

fn finished(outcome: TurnOutcome) -> impl Fn(&SessionEvent) -> bool {
    move |event| matches!(event, SessionEvent::TurnFinished { outcome: o, .. } if *o == outcome)
}

/// Every sequence number from 1 to the last, once each, in order.
fn assert_gapless(events: &[SequencedEvent], who: &str) {
    let seqs = seqs(events);
    let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "{who}: a gap or a duplicate");
}

fn as_json(events: &[SequencedEvent]) -> Vec<serde_json::Value> {
    events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

#[tokio::test]
async fn three_nodes_serve_one_session_and_survive_its_owner_killed_mid_turn() {
    let mut a = Den::start_first_node(SHORT_LEASE).await;
    let b = Den::join(&a, SHORT_LEASE).await;
    let c = Den::join(&a, SHORT_LEASE).await;

    // Created through A, streamed on B and C.
    a.model.push(Turn::text("first answer"));
    let session = a.create_session(Some("first")).await;
    let mut on_b = b.connect(&session, 0).await;
    let mut on_c = c.connect(&session, 0).await;
    on_b.until_turn_finished().await;
    on_c.until_turn_finished().await;
    assert_eq!(lease(&a, &session).await.0, Some(a.node_name()));

    // A prompt sent through C runs on the owner.
    a.model.push(Turn::text("second answer"));
    c.prompt(&session, "second").await;
    on_b.until_turn_finished().await;
    on_c.until_turn_finished().await;
    assert_eq!(
        lease(&a, &session).await.0,
        Some(a.node_name()),
        "the session stayed on its owner"
    );
    assert_eq!(
        as_json(&on_b.events),
        as_json(&on_c.events),
        "B and C saw the same"
    );
    assert!(crate::harness::assistant_text(&on_c.events).contains("second answer"));

    // The owner is killed in the middle of a turn sent through B.
    let gate = Gate::new();
    a.model
        .push(Turn::new().say("going ").hold(&gate).say("gone"));
    b.prompt(&session, "third").await;
    on_c.until(|e| matches!(e, SessionEvent::TextDelta { delta, .. } if delta.contains("going")))
        .await;
    gate.reached().await;
    let epoch_of_a = lease(&a, &session).await.1;
    a.kill().await;
    gate.release();

    // Once its lease expired, a prompt through B takes the session over there: the turn in
    // flight ends as interrupted, and the next one runs from the last snapshot.
    lease_expired(&a, &session).await;
    a.model.push(Turn::text("after failover"));
    b.prompt(&session, "fourth").await;
    for socket in [&mut on_b, &mut on_c] {
        socket.until(finished(TurnOutcome::Interrupted)).await;
        socket.until(finished(TurnOutcome::Completed)).await;
    }
    let (owner, epoch, _) = lease(&b, &session).await;
    assert_eq!(owner, Some(b.node_name()));
    assert!(epoch > epoch_of_a);
    assert_gapless(&on_b.events, "client on B");
    assert_gapless(&on_c.events, "client on C");
    assert_eq!(as_json(&on_b.events), as_json(&on_c.events));
    let last = a.model.agent_requests().last().unwrap().transcript();
    assert!(
        last.contains("second answer"),
        "the new owner resumed from the snapshot: {last}"
    );
}

#[tokio::test]
async fn an_owner_paused_past_its_lease_is_fenced_out_and_stops_its_actor() {
    let a = Den::start_first_node(SHORT_LEASE).await;
    let b = Den::join(&a, SHORT_LEASE).await;
    a.model.push(Turn::text("first answer"));
    let session = a.create_session(Some("first")).await;
    let mut on_b = b.connect(&session, 0).await;
    on_b.until_turn_finished().await;

    let gate = Gate::new();
    a.model
        .push(Turn::new().say("going ").hold(&gate).say("late words"));
    a.prompt(&session, "second").await;
    on_b.until(|e| matches!(e, SessionEvent::TextDelta { delta, .. } if delta.contains("going")))
        .await;
    gate.reached().await;
    a.signal("STOP").await;
    lease_expired(&a, &session).await;

    a.model.push(Turn::text("after takeover"));
    b.prompt(&session, "third").await;
    on_b.until(finished(TurnOutcome::Interrupted)).await;
    on_b.until(finished(TurnOutcome::Completed)).await;
    let (_, epoch_of_b, _) = lease(&b, &session).await;

    // A wakes up with the rest of its turn arriving from its agent: every write is refused.
    gate.release();
    a.signal("CONT").await;
    logged(&a, "lost the session's lease").await;

    let mut db = sqlx::PgConnection::connect(a.database_url.as_deref().unwrap())
        .await
        .unwrap();
    let id: uuid::Uuid = session.parse().unwrap();
    let late: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM session_events WHERE session_id = $1 AND epoch < $2 \
         AND seq > (SELECT MIN(seq) FROM session_events WHERE session_id = $1 AND epoch = $2)",
    )
    .bind(id)
    .bind(epoch_of_b)
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(late, 0, "an event of the old owner after the takeover");
    let text: String = sqlx::query_scalar(
        "SELECT string_agg(payload::text, ' ') FROM session_events WHERE session_id = $1",
    )
    .bind(id)
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert!(
        !text.contains("late words"),
        "the fenced node's words were stored"
    );
    assert_eq!(lease(&a, &session).await.0, Some(b.node_name()));
    assert_gapless(&on_b.events, "client on B");

    // B still serves the session.
    a.model.push(Turn::text("still here"));
    b.prompt(&session, "fourth").await;
    on_b.until(finished(TurnOutcome::Completed)).await;
    assert!(!crate::harness::assistant_text(&on_b.events).contains("late words"));
}

#[tokio::test]
async fn a_node_whose_database_listener_is_killed_recovers_it_and_misses_nothing_and_session_lists_follow_other_nodes()
 {
    let a = Den::start_first_node(SHORT_LEASE).await;
    let b = Den::join(&a, SHORT_LEASE).await;
    // B's live session list hears of a session created through A.
    let list_on_b = b.stream("/api/sessions/stream").await;
    a.model.push(Turn::text("first answer"));
    let session = a.create_session(Some("first")).await;
    let frames = crate::turns::sse_frames(list_on_b, |_, data| data.contains(&session)).await;
    let update: den_protocol::events::SessionListUpdate =
        serde_json::from_str(&frames.last().unwrap().2).unwrap();
    assert!(
        matches!(update, den_protocol::events::SessionListUpdate::Upsert { session: ref s } if s.id.to_string() == session),
        "{update:?}"
    );
    let mut on_b = b.connect(&session, 0).await;
    on_b.until_turn_finished().await;

    let mut db = sqlx::PgConnection::connect(a.database_url.as_deref().unwrap())
        .await
        .unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(format!("den-listener {}", b.node_name()))
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(killed, [true], "B's listening connection");

    a.model.push(Turn::text("said while B was reconnecting"));
    a.prompt(&session, "second").await;
    on_b.until(finished(TurnOutcome::Completed)).await;
    logged(&b, "the database listener reconnected").await;
    assert_gapless(&on_b.events, "client on B");
    assert!(crate::harness::assistant_text(&on_b.events).contains("said while B was reconnecting"));

    // And hints flow again through the new connection.
    a.model.push(Turn::text("after the reconnect"));
    a.prompt(&session, "third").await;
    on_b.until(finished(TurnOutcome::Completed)).await;
    assert_gapless(&on_b.events, "client on B");
}

#[tokio::test]
async fn a_node_told_to_stop_hands_its_sessions_over_without_waiting_for_the_lease() {
    // A lease far longer than the test: only a handover lets B take the session.
    let long_lease = "[cluster]\nlease_ttl_ms = 600000\n";
    let mut a = Den::start_first_node(long_lease).await;
    let b = Den::join(&a, long_lease).await;
    a.model.push(Turn::text("first answer"));
    let session = a.create_session(Some("first")).await;
    let mut on_b = b.connect(&session, 0).await;
    on_b.until_turn_finished().await;

    let status = a.terminate(Duration::from_secs(60)).await;
    assert!(status.success(), "{status:?}");
    let (owner, _, _) = lease(&b, &session).await;
    assert_eq!(owner, None, "A handed the lease back");

    a.model.push(Turn::text("answered on B"));
    b.prompt(&session, "second").await;
    on_b.until(finished(TurnOutcome::Completed)).await;
    assert_eq!(lease(&b, &session).await.0, Some(b.node_name()));
    assert_gapless(&on_b.events, "client on B");
    assert!(crate::harness::assistant_text(&on_b.events).contains("answered on B"));
}
