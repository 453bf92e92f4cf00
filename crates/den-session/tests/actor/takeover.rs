//! Two nodes on one database, in one process: when the node owning a session stops renewing
//! its lease, another node takes the session over on the next command.

use den_protocol::events::{SessionEvent, TurnOutcome};
use den_session::{SessionConfig, SessionManager};
use den_test_support::FakeReply;

use crate::{Db, Watch, World};

async fn a_session_taken_over_from_a_stopped_node_closes_its_turn_and_keeps_its_queue(db: Db) {
    let world = World::new(db).await;
    let on_a = world.session().await;
    let mut watch_a = Watch::new(&on_a);
    // Node A: a turn the agent never ends, and a prompt queued behind it.
    world
        .agent
        .script([FakeReply::Silent, FakeReply::Recorded, FakeReply::Recorded]);
    on_a.prompt("one".to_owned()).await.unwrap();
    watch_a
        .until("the first turn's start", |event| {
            matches!(event, SessionEvent::TurnStarted { .. }).then_some(())
        })
        .await;
    let queued = on_a.prompt("two".to_owned()).await.unwrap();
    assert!(queued.queued);

    // Node A stops renewing (paused, cut off): its lease expires.
    let node_a = world.config.runner.clone();
    assert_eq!(world.store.expire_leases_of(&node_a).await.unwrap(), 1);
    let config_b = SessionConfig {
        runner: "nodeb".to_owned(),
        ..world.config.clone()
    };
    let node_b = SessionManager::new(world.store.clone(), world.runtime.clone(), config_b);
    let on_b = node_b.session(world.owner, on_a.id()).await.unwrap();
    let mut watch_b = Watch::new(&on_b);

    // The next command, on B, takes it over: A's turn ends as interrupted, the kept queue runs
    // first, then the new prompt.
    on_b.prompt("three".to_owned()).await.unwrap();
    let (outcome, why) = watch_b.turn_finished().await;
    assert_eq!(outcome, TurnOutcome::Interrupted);
    assert!(why.unwrap().contains("node"), "says why");
    let mut started = Vec::new();
    for _ in 0..2 {
        started.push(
            watch_b
                .until("a turn's start", |event| match event {
                    SessionEvent::TurnStarted { prompt, .. } => Some(prompt.clone()),
                    _ => None,
                })
                .await,
        );
        assert_eq!(watch_b.turn_finished().await.0, TurnOutcome::Completed);
    }
    assert_eq!(started, ["two", "three"], "the queue was kept, in order");
    let lease = world.store.lease(on_a.id()).await.unwrap().unwrap();
    assert_eq!(lease.epoch, 2);
    assert!(world.store.queue(on_a.id()).await.unwrap().is_empty());

    // One numbering across both owners: no gap, no repeat.
    let sequence: Vec<i64> = {
        let events = world.store.events_after(on_a.id(), 0, 1000).await.unwrap();
        events.iter().map(|e| e.seq).collect()
    };
    assert_eq!(sequence, (1..=sequence.len() as i64).collect::<Vec<_>>());
}

crate::on_both_databases!(
    a_session_taken_over_from_a_stopped_node_closes_its_turn_and_keeps_its_queue
);
