use std::time::Duration;

use den_protocol::events::{SessionEvent, TurnOutcome};
use den_protocol::pause::PauseReason;
use den_protocol::sessions::SessionStatus;
use den_session::SessionError;
use den_test_support::{FAKE_AGENT_SESSION, FakeReply};

use crate::{Db, PATIENCE, Watch, World, jump_clock};

async fn after_several_turns_exactly_one_snapshot_remains_and_the_record_points_at_it(db: Db) {
    let world = World::new(db).await;
    let session = world.session().await;
    let mut watch = Watch::new(&session);
    for n in 1..=3 {
        session.prompt(format!("turn {n}")).await.unwrap();
        assert_eq!(watch.turn_finished().await, (TurnOutcome::Completed, None));
    }
    // The pause waits for the snapshot still being written, and needs no other.
    session.pause().await.unwrap();
    assert_eq!(world.status(&session).await, SessionStatus::Paused);
    let reason = watch
        .until("the pause", |event| match event {
            SessionEvent::Status {
                status: SessionStatus::Paused,
                pause,
                ..
            } => Some(*pause),
            _ => None,
        })
        .await;
    assert_eq!(reason, Some(PauseReason::Person));
    // A turn that ends while the previous turn's snapshot is written shares the next one.
    let taken = world.runtime.counts(|c| c.snapshots);
    assert!((1..=3).contains(&taken), "{taken} snapshots");
    let files = world.snapshot_files();
    assert_eq!(files.len(), 1, "one snapshot remains: {files:?}");
    let kept = std::fs::read_to_string(world.config.snapshots_dir.join(&files[0])).unwrap();
    assert_eq!(
        kept,
        format!("snapshot {taken}"),
        "the last one taken is kept"
    );
    let key = world
        .snapshot_key(&session)
        .await
        .expect("a snapshot is recorded");
    assert!(
        !key.contains('/'),
        "the record holds a key, not a path: {key}"
    );
    assert_eq!(files[0], format!("{key}.tar.zst"));

    // A prompt resumes from exactly that snapshot.
    session.prompt("again".to_owned()).await.unwrap();
    assert_eq!(watch.turn_finished().await.0, TurnOutcome::Completed);
    let restored = world.runtime.counts(|c| c.restores.clone());
    assert_eq!(restored.len(), 1);
    assert!(restored[0].ends_with(&files[0]), "{restored:?}");
}

async fn a_failed_snapshot_keeps_the_previous_one_and_a_pause_that_cannot_snapshot_says_so(db: Db) {
    let world = World::new(db).await;
    let session = world.session().await;
    let mut watch = Watch::new(&session);
    session.prompt("one".to_owned()).await.unwrap();
    watch.turn_finished().await;
    // The first snapshot is recorded before the pause below can finish.
    session.pause().await.unwrap();
    let first = world.snapshot_key(&session).await.expect("first snapshot");

    world.runtime.fail_snapshots(true);
    session.prompt("two".to_owned()).await.unwrap();
    assert_eq!(watch.turn_finished().await.0, TurnOutcome::Completed);
    let message = watch
        .until("snapshot_failed", |event| match event {
            SessionEvent::Error { code, message } if code == "snapshot_failed" => {
                Some(message.clone())
            }
            _ => None,
        })
        .await;
    assert!(message.contains("previous snapshot is kept"), "{message}");
    assert_eq!(
        world.snapshot_key(&session).await.as_deref(),
        Some(first.as_str())
    );
    assert_eq!(world.snapshot_files(), [format!("{first}.tar.zst")]);

    // Pausing now would lose the second turn's work: refused, and the session keeps running.
    let refused = session.pause().await.unwrap_err();
    assert!(matches!(refused, SessionError::Snapshot(_)), "{refused:?}");
    assert_eq!(world.status(&session).await, SessionStatus::Running);
    assert_eq!(world.snapshot_files(), [format!("{first}.tar.zst")]);

    world.runtime.fail_snapshots(false);
    session.pause().await.unwrap();
    let second = world.snapshot_key(&session).await.unwrap();
    assert_ne!(second, first);
    assert_eq!(world.snapshot_files(), [format!("{second}.tar.zst")]);
}

async fn a_stop_is_answered_while_a_snapshot_is_still_being_written(db: Db) {
    let world = World::new(db).await;
    let session = world.session().await;
    let mut watch = Watch::new(&session);
    session.prompt("one".to_owned()).await.unwrap();
    watch.turn_finished().await;
    session.pause().await.unwrap();

    // The next turn's snapshot hangs; meanwhile a new turn starts and is stopped.
    world.runtime.hold_snapshots().await;
    world.agent.script([FakeReply::Recorded, FakeReply::Silent]);
    session.prompt("two".to_owned()).await.unwrap();
    watch.turn_finished().await;
    session.prompt("three".to_owned()).await.unwrap();
    watch
        .until("the third turn's start", |event| {
            matches!(event, SessionEvent::TurnStarted { prompt, .. } if prompt == "three")
                .then_some(())
        })
        .await;
    tokio::time::timeout(PATIENCE, session.abort())
        .await
        .expect("the stop is answered during the snapshot")
        .unwrap();
    assert_eq!(watch.turn_finished().await.0, TurnOutcome::Aborted);
    assert_eq!(world.agent.aborts(), 1);

    // A pause waits for the snapshot; it finishes once the snapshot may.
    let pause = tokio::spawn({
        let session = session.clone();
        async move { session.pause().await }
    });
    world.runtime.release_snapshots();
    tokio::time::timeout(PATIENCE, pause)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(world.status(&session).await, SessionStatus::Paused);
    assert_eq!(world.snapshot_files().len(), 1);
}

async fn an_idle_session_pauses_and_its_actor_exits(db: Db) {
    let world = World::new(db).await;
    let session = world.session().await;
    let mut watch = Watch::new(&session);
    session.prompt("one".to_owned()).await.unwrap();
    watch.turn_finished().await;
    assert_eq!(world.manager.running_actors(), 1);

    jump_clock(world.config.idle_timeout - Duration::from_secs(5)).await;
    session.rename("still here".to_owned()).await.unwrap();
    assert_eq!(world.status(&session).await, SessionStatus::Running);

    jump_clock(Duration::from_secs(10)).await;
    // The status event says why, so the page can write "Paused at 14:02 — idle for 5 minutes".
    let reason = watch
        .until("the idle pause", |event| match event {
            SessionEvent::Status {
                status: SessionStatus::Paused,
                pause,
                ..
            } => Some(*pause),
            _ => None,
        })
        .await;
    assert_eq!(reason, Some(PauseReason::Idle { minutes: 5 }));
    assert!(world.snapshot_key(&session).await.is_some());
    assert_eq!(world.runtime.counts(|c| c.destroys), 1);
    let exited = async {
        while world.manager.running_actors() > 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(PATIENCE, exited)
        .await
        .expect("the paused session's actor exits");

    // The subscription outlives the actor; the next prompt starts a new one it also hears.
    session.prompt("two".to_owned()).await.unwrap();
    assert_eq!(watch.turn_finished().await.0, TurnOutcome::Completed);
}

async fn a_turn_the_agent_never_ends_fails_at_the_inactivity_deadline_and_the_queue_goes_on(
    db: Db,
) {
    let world = World::new(db).await;
    let session = world.session().await;
    let mut watch = Watch::new(&session);
    world.agent.script([FakeReply::Silent]);
    session.prompt("hang".to_owned()).await.unwrap();
    watch
        .until("the turn's start", |event| {
            matches!(event, SessionEvent::TurnStarted { .. }).then_some(())
        })
        .await;
    let queued = session.prompt("after".to_owned()).await.unwrap();
    assert!(queued.queued);

    // The clock moves a minute at a time until the turn fails: never before the deadline.
    let timeout = world.config.turn_inactivity_timeout;
    let mut advanced = Duration::ZERO;
    let message = loop {
        assert!(advanced < timeout * 3, "no turn_timeout after {advanced:?}");
        jump_clock(Duration::from_secs(60)).await;
        advanced += Duration::from_secs(60);
        // A command's answer means the actor handled what was due before it.
        session.rename(format!("after {advanced:?}")).await.unwrap();
        let stored = world
            .store
            .events_after(session.id(), 0, 1000)
            .await
            .unwrap();
        if let Some(event) = stored
            .iter()
            .find(|event| event.payload.0["code"] == "turn_timeout")
        {
            assert!(advanced >= timeout, "failed after only {advanced:?}");
            break event.payload.0["message"].as_str().unwrap().to_owned();
        }
    };
    assert!(message.contains("no activity for 10 minutes"), "{message}");
    let (outcome, error) = watch.turn_finished().await;
    assert_eq!(outcome, TurnOutcome::Failed);
    assert_eq!(error.as_deref(), Some(message.as_str()));
    // The queued prompt runs next, and the agent was told to stop the first.
    assert_eq!(watch.turn_finished().await, (TurnOutcome::Completed, None));
    assert_eq!(world.agent.prompts(), ["hang", "after"]);
    assert_eq!(world.agent.aborts(), 1);
}

async fn the_queue_is_limited_and_a_refused_prompt_changes_nothing(db: Db) {
    let world = World::with(db, |config| config.max_queue = 2).await;
    let session = world.session().await;
    let mut watch = Watch::new(&session);
    world.agent.script([FakeReply::Silent]);
    session.prompt("running".to_owned()).await.unwrap();
    watch
        .until("the turn's start", |event| {
            matches!(event, SessionEvent::TurnStarted { .. }).then_some(())
        })
        .await;
    session.prompt("queued 1".to_owned()).await.unwrap();
    session.prompt("queued 2".to_owned()).await.unwrap();
    let events_before = world.store.last_event_seq(session.id()).await.unwrap();
    let refused = session.prompt("one too many".to_owned()).await.unwrap_err();
    assert!(
        matches!(&refused, SessionError::Conflict(message) if message.contains("too many prompts")),
        "{refused:?}"
    );
    assert_eq!(
        world.store.last_event_seq(session.id()).await.unwrap(),
        events_before
    );

    world.agent.finish_turn();
    for _ in 0..3 {
        assert_eq!(watch.turn_finished().await.0, TurnOutcome::Completed);
    }
    assert_eq!(world.agent.prompts(), ["running", "queued 1", "queued 2"]);
}

async fn a_turn_that_ended_while_the_event_stream_was_down_is_read_back_from_the_agent(db: Db) {
    let world = World::new(db).await;
    let session = world.session().await;
    let mut watch = Watch::new(&session);
    world.agent.script([FakeReply::EndsWhileDisconnected]);
    session.prompt("write hello.txt".to_owned()).await.unwrap();
    let (outcome, error) = watch.turn_finished().await;
    assert_eq!((outcome, error), (TurnOutcome::Completed, None));
    // What the stream never carried came from the conversation: the tool call and the text.
    assert!(
        watch.seen.iter().any(|event| matches!(
            event,
            SessionEvent::Tool(call) if call.tool == "write"
        )),
        "{:#?}",
        watch.seen
    );
    // And the session goes on normally.
    session.prompt("again".to_owned()).await.unwrap();
    assert_eq!(watch.turn_finished().await.0, TurnOutcome::Completed);
}

async fn a_prompt_the_agent_refuses_fails_its_turn_with_the_reason(db: Db) {
    let world = World::new(db).await;
    let session = world.session().await;
    let mut watch = Watch::new(&session);
    world.agent.script([FakeReply::Refuse]);
    session.prompt("refused".to_owned()).await.unwrap();
    let (outcome, error) = watch.turn_finished().await;
    assert_eq!(outcome, TurnOutcome::Failed);
    assert!(error.unwrap().contains("500"));
    session.prompt("accepted".to_owned()).await.unwrap();
    assert_eq!(watch.turn_finished().await.0, TurnOutcome::Completed);
}

async fn recovery_takes_only_this_dens_stale_sessions_and_says_when_a_snapshot_is_missing(db: Db) {
    let world = World::new(db).await;
    let store = &world.store;
    let running = |session: &den_session::SessionHandle| {
        let (store, id) = (store.clone(), session.id());
        async move {
            store
                .set_session_status(id, SessionStatus::Running, None)
                .await
                .unwrap();
        }
    };
    // Ran here with a snapshot and a turn in flight; nobody recorded a runner (older den).
    let with_turn = world.session().await;
    running(&with_turn).await;
    let artifact = world.dir.path().join("artifact");
    tokio::fs::write(&artifact, "snapshot").await.unwrap();
    let key = format!("{}-1", with_turn.id());
    den_sandbox::ArtifactStore::put(
        &den_sandbox::LocalArtifactStore::new(world.config.snapshots_dir.clone()),
        &key,
        &artifact,
    )
    .await
    .unwrap();
    store
        .set_session_agent_state(with_turn.id(), Some("ses_x"), Some(&key))
        .await
        .unwrap();
    let started = serde_json::json!({"type": "turn_started", "turnId": "t1", "prompt": "p"});
    store
        .append_event(
            with_turn.id(),
            1,
            "turn_started",
            &started,
            den_store::now(),
        )
        .await
        .unwrap();
    // Was starting here, no snapshot yet.
    let starting = world.session().await;
    store
        .set_session_status(starting.id(), SessionStatus::Starting, None)
        .await
        .unwrap();
    store
        .set_session_runner(starting.id(), "den")
        .await
        .unwrap();
    // Runs on another den: not ours to touch.
    let elsewhere = world.session().await;
    running(&elsewhere).await;
    store
        .set_session_runner(elsewhere.id(), "den-2")
        .await
        .unwrap();
    // Ran here, but its snapshot is gone.
    let lost = world.session().await;
    running(&lost).await;
    store.set_session_runner(lost.id(), "den").await.unwrap();
    store
        .set_session_agent_state(lost.id(), Some("ses_y"), Some(&format!("{}-9", lost.id())))
        .await
        .unwrap();
    // Paused: nothing to recover.
    let paused = world.session().await;
    store
        .set_session_status(paused.id(), SessionStatus::Paused, None)
        .await
        .unwrap();

    assert_eq!(world.manager.recover().await.unwrap(), 3);
    assert_eq!(world.status(&with_turn).await, SessionStatus::Paused);
    let events = store.events_after(with_turn.id(), 1, 10).await.unwrap();
    assert_eq!(events[0].kind, "turn_finished");
    assert_eq!(events[0].payload.0["outcome"], "interrupted");
    assert_eq!(world.status(&starting).await, SessionStatus::Idle);
    assert_eq!(world.status(&elsewhere).await, SessionStatus::Running);
    assert_eq!(world.status(&paused).await, SessionStatus::Paused);
    let lost_record = store.session_of(world.owner, lost.id()).await.unwrap();
    assert_eq!(lost_record.status().unwrap(), SessionStatus::Error);
    assert!(lost_record.error.unwrap().contains("snapshot is missing"));
    assert_eq!(lost_record.snapshot_id, None);
    // A second recovery finds nothing left.
    assert_eq!(world.manager.recover().await.unwrap(), 0);

    // The session whose snapshot was lost starts again from the repository.
    let mut watch = Watch::new(&lost);
    lost.prompt("start over".to_owned()).await.unwrap();
    assert_eq!(watch.turn_finished().await.0, TurnOutcome::Completed);
    assert_eq!(
        world.runtime.counts(|c| (c.creates, c.restores.len())),
        (1, 0)
    );
}

/// A snapshot an older den recorded as a host path moves into the artifact store at start and
/// the session resumes from it; a recorded file that is gone is said so on its session.
async fn snapshots_recorded_as_host_paths_move_into_the_artifact_store_and_a_lost_one_is_reported(
    db: Db,
) {
    let world = World::new(db).await;
    let store = &world.store;
    let old_style = |session: &den_session::SessionHandle, path: std::path::PathBuf| {
        let (store, id) = (store.clone(), session.id());
        async move {
            store
                .set_session_agent_state(id, Some(FAKE_AGENT_SESSION), path.to_str())
                .await
                .unwrap();
            store
                .set_session_status(id, SessionStatus::Paused, None)
                .await
                .unwrap();
        }
    };
    let kept = world.session().await;
    let old_dir = world.config.snapshots_dir.join(kept.id().to_string());
    tokio::fs::create_dir_all(&old_dir).await.unwrap();
    let old_file = old_dir.join("snapshot.tar.zst");
    tokio::fs::write(&old_file, "snapshot").await.unwrap();
    old_style(&kept, old_file.clone()).await;
    let lost = world.session().await;
    old_style(&lost, world.dir.path().join("gone/snapshot.tar.zst")).await;

    let report = world.manager.migrate_host_path_snapshots().await.unwrap();
    assert_eq!(report, den_session::SnapshotMigration { moved: 1, lost: 1 });
    let key = world.snapshot_key(&kept).await.unwrap();
    assert!(!key.contains('/'), "{key}");
    assert!(!old_file.exists(), "the old file moved into the store");
    assert_eq!(world.snapshot_files(), [format!("{key}.tar.zst")]);
    let lost_record = store.session_of(world.owner, lost.id()).await.unwrap();
    assert_eq!(lost_record.status().unwrap(), SessionStatus::Error);
    assert!(lost_record.error.unwrap().contains("snapshot is missing"));
    assert_eq!(lost_record.snapshot_id, None);
    // Nothing is left to move on the next start.
    let again = world.manager.migrate_host_path_snapshots().await.unwrap();
    assert_eq!(again, den_session::SnapshotMigration::default());

    // The kept session resumes from its moved snapshot; the lost one starts from the repository.
    let mut watch = Watch::new(&kept);
    kept.prompt("go on".to_owned()).await.unwrap();
    assert_eq!(watch.turn_finished().await.0, TurnOutcome::Completed);
    let restored = world.runtime.counts(|c| c.restores.clone());
    assert_eq!(restored.len(), 1);
    assert!(
        restored[0].ends_with(format!("{key}.tar.zst")),
        "{restored:?}"
    );
    let mut watch = Watch::new(&lost);
    lost.prompt("start over".to_owned()).await.unwrap();
    assert_eq!(watch.turn_finished().await.0, TurnOutcome::Completed);
    assert_eq!(
        world.runtime.counts(|c| (c.creates, c.restores.len())),
        (1, 1)
    );
}

crate::on_both_databases!(
    snapshots_recorded_as_host_paths_move_into_the_artifact_store_and_a_lost_one_is_reported,
    after_several_turns_exactly_one_snapshot_remains_and_the_record_points_at_it,
    a_failed_snapshot_keeps_the_previous_one_and_a_pause_that_cannot_snapshot_says_so,
    a_stop_is_answered_while_a_snapshot_is_still_being_written,
    an_idle_session_pauses_and_its_actor_exits,
    a_turn_the_agent_never_ends_fails_at_the_inactivity_deadline_and_the_queue_goes_on,
    the_queue_is_limited_and_a_refused_prompt_changes_nothing,
    a_turn_that_ended_while_the_event_stream_was_down_is_read_back_from_the_agent,
    a_prompt_the_agent_refuses_fails_its_turn_with_the_reason,
    recovery_takes_only_this_dens_stale_sessions_and_says_when_a_snapshot_is_missing,
);
