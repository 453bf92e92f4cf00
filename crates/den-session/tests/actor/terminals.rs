use std::time::Duration;

use den_protocol::events::TurnOutcome;
use den_protocol::sessions::SessionStatus;
use den_session::{SessionError, TerminalClosing, TerminalSize};

use crate::{Db, PATIENCE, Watch, World, jump_clock};

async fn an_open_terminal_holds_off_the_idle_pause_until_it_closes(db: Db) {
    let world = World::new(db).await;
    let session = world.session().await;
    let mut watch = Watch::new(&session);
    // No sandbox yet: no shell to open.
    let refused = session.open_terminal(None).await.unwrap_err();
    assert!(matches!(refused, SessionError::Conflict(_)), "{refused:?}");

    session.prompt("one".to_owned()).await.unwrap();
    assert_eq!(watch.turn_finished().await.0, TurnOutcome::Completed);
    let size = TerminalSize { cols: 80, rows: 24 };
    let mut terminal = session.open_terminal(Some(size)).await.unwrap();
    terminal.send_input("echo hi").await.unwrap();
    assert_eq!(terminal.next_output().await.unwrap().unwrap(), "echo hi");

    // Past the idle timeout with the terminal open: the session stays up, the terminal works.
    jump_clock(world.config.idle_timeout + Duration::from_secs(10)).await;
    for n in 0..3 {
        session.rename(format!("still here {n}")).await.unwrap();
    }
    assert_eq!(world.status(&session).await, SessionStatus::Running);
    terminal.send_input("still open").await.unwrap();
    assert_eq!(terminal.next_output().await.unwrap().unwrap(), "still open");

    // Closed, it holds nothing off: the next idle timeout pauses the session.
    terminal.close().await;
    jump_clock(world.config.idle_timeout + Duration::from_secs(10)).await;
    watch.status(SessionStatus::Paused).await;
}

async fn a_pause_ends_every_open_terminal_and_says_why(db: Db) {
    let world = World::new(db).await;
    let session = world.session().await;
    let mut watch = Watch::new(&session);
    session.prompt("one".to_owned()).await.unwrap();
    watch.turn_finished().await;
    let first = session.open_terminal(None).await.unwrap();
    let second = session.open_terminal(None).await.unwrap();
    let (first_closing, second_closing) = (first.sandbox_closing(), second.sandbox_closing());

    session.pause().await.unwrap();
    for closing in [first_closing, second_closing] {
        let reason = tokio::time::timeout(PATIENCE, closing).await.unwrap();
        assert_eq!(reason, TerminalClosing::SandboxStopped);
    }
    // Paused: no new terminal.
    let refused = session.open_terminal(None).await.unwrap_err();
    assert!(matches!(refused, SessionError::Conflict(_)), "{refused:?}");
}

crate::on_both_databases!(
    an_open_terminal_holds_off_the_idle_pause_until_it_closes,
    a_pause_ends_every_open_terminal_and_says_why,
);
