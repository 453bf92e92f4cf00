//! Following a session's events until the turn the command waits for ends.
//!
//! The stream (den-client) resumes after the last event across dropped connections; this
//! module decides when to stop, from the events alone:
//! - `den run`: the session's first turn ends (or the session fails before it starts);
//! - `den prompt`: the turn of the accepted prompt ends;
//! - `den attach`: nothing runs or waits any more: no open turn, no queued prompt, and the
//!   last thing that happened was a finished turn or a stop (a session that has just started
//!   is about to begin its turn, so it is not settled).

use den_client::{Client, EventStream, StreamItem};
use den_protocol::events::{SessionEvent, TurnOutcome};
use den_protocol::sessions::SessionStatus;
use uuid::Uuid;

use super::FollowArgs;
use super::render::Output;

/// When to stop following.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Until {
    FirstTurn,
    Turn(String),
    Settled,
    /// The history so far (`den show`).
    CaughtUp,
    Forever,
}

/// How following ended.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ending {
    /// A turn ended.
    Turn {
        outcome: TurnOutcome,
        error: Option<String>,
    },
    /// The session went to `error` without a turn to report it.
    SessionError(String),
    /// Nothing was running (attach to a settled session that never ran a turn).
    Nothing,
    /// The person pressed Ctrl-C.
    Interrupted { stopped: bool },
}

/// What the events so far say about the session.
#[derive(Debug, Default)]
struct Fold {
    open_turn: Option<String>,
    queued: usize,
    status: Option<SessionStatus>,
    /// Why the session is in `error`, when it is.
    status_error: Option<String>,
    /// The last status change, turn start or turn end: whether it was a turn's end.
    last_was_turn_end: bool,
    last_turn: Option<(TurnOutcome, Option<String>)>,
}

impl Fold {
    fn apply(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::TurnStarted { turn_id, .. } => {
                self.open_turn = Some(turn_id.clone());
                self.last_was_turn_end = false;
            }
            SessionEvent::TurnFinished { outcome, error, .. } => {
                self.open_turn = None;
                self.last_turn = Some((*outcome, error.clone()));
                self.last_was_turn_end = true;
            }
            SessionEvent::Queue { items } => self.queued = items.len(),
            SessionEvent::Status { status, error, .. } => {
                self.status = Some(*status);
                self.status_error.clone_from(error);
                self.last_was_turn_end = false;
            }
            _ => {}
        }
    }

    fn settled(&self) -> bool {
        self.open_turn.is_none()
            && self.queued == 0
            && (self.last_was_turn_end
                || matches!(
                    self.status,
                    None | Some(SessionStatus::Idle | SessionStatus::Paused | SessionStatus::Error)
                ))
    }

    fn ending(&self) -> Ending {
        match (&self.last_turn, self.status) {
            (_, Some(SessionStatus::Error)) if !self.last_was_turn_end => Ending::SessionError(
                self.status_error
                    .clone()
                    .unwrap_or_else(|| "the session is in error".to_owned()),
            ),
            (Some((outcome, error)), _) => Ending::Turn {
                outcome: *outcome,
                error: error.clone(),
            },
            (None, _) => Ending::Nothing,
        }
    }
}

/// Reads (without printing) up to the live edge: what `den prompt` does before it sends, so
/// that everything after is the new turn's.
pub(super) async fn catch_up(stream: &mut EventStream) -> anyhow::Result<()> {
    loop {
        if let StreamItem::CaughtUp { .. } = stream.next().await? {
            return Ok(());
        }
    }
}

/// Prints events until `until` is met (or Ctrl-C).
pub(super) async fn follow(
    client: &Client,
    id: Uuid,
    mut stream: EventStream,
    until: Until,
    args: &FollowArgs,
) -> anyhow::Result<Ending> {
    let mut output = Output::new(args.json);
    let mut fold = Fold::default();
    // Registered now, before any event is printed: a Ctrl-C from then on is always seen.
    let mut interrupted =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        let item = tokio::select! {
            item = stream.next() => item?,
            _ = interrupted.recv() => {
                output.end_line();
                let stopped = args.stop && client.abort(id).await.is_ok();
                return Ok(Ending::Interrupted { stopped });
            }
        };
        match item {
            StreamItem::Event(event) => {
                output.event(&event)?;
                fold.apply(&event.event);
                if let Some(ending) = ends(&until, &fold, &event.event) {
                    output.end_line();
                    return Ok(ending);
                }
            }
            StreamItem::CaughtUp { .. } => {
                if until == Until::CaughtUp {
                    output.end_line();
                    return Ok(Ending::Nothing);
                }
                if until == Until::Settled && fold.settled() {
                    output.end_line();
                    return Ok(fold.ending());
                }
            }
            StreamItem::Reconnecting { after, reason } => {
                output.reconnecting(after, &reason);
            }
        }
    }
}

/// Whether `event` (already folded) ends the wait.
fn ends(until: &Until, fold: &Fold, event: &SessionEvent) -> Option<Ending> {
    match (until, event) {
        (Until::Forever | Until::CaughtUp, _) => None,
        (Until::FirstTurn | Until::Settled, SessionEvent::TurnFinished { outcome, error, .. })
            if *until == Until::FirstTurn || fold.queued == 0 =>
        {
            Some(Ending::Turn {
                outcome: *outcome,
                error: error.clone(),
            })
        }
        (
            Until::Turn(wanted),
            SessionEvent::TurnFinished {
                turn_id,
                outcome,
                error,
                ..
            },
        ) if turn_id == wanted => Some(Ending::Turn {
            outcome: *outcome,
            error: error.clone(),
        }),
        // A session that fails before the turn begins (a bad branch, a sandbox that cannot
        // start) reports it only in its status.
        (
            _,
            SessionEvent::Status {
                status: SessionStatus::Error,
                error,
                ..
            },
        ) if fold.open_turn.is_none() => Some(Ending::SessionError(
            error
                .clone()
                .unwrap_or_else(|| "the session failed".to_owned()),
        )),
        (Until::Settled, SessionEvent::Status { .. }) if fold.settled() => Some(fold.ending()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(turn: &str, outcome: TurnOutcome) -> SessionEvent {
        SessionEvent::TurnFinished {
            turn_id: turn.to_owned(),
            outcome,
            tokens: Default::default(),
            cost: 0.0,
            error: None,
        }
    }

    fn started(turn: &str) -> SessionEvent {
        SessionEvent::TurnStarted {
            turn_id: turn.to_owned(),
            prompt: "p".to_owned(),
            model: None,
        }
    }

    fn status(status: SessionStatus) -> SessionEvent {
        SessionEvent::Status {
            status,
            error: None,
            pause: None,
        }
    }

    #[test]
    fn a_session_that_just_started_running_is_about_to_begin_its_turn() {
        let mut fold = Fold::default();
        fold.apply(&status(SessionStatus::Starting));
        assert!(!fold.settled());
        fold.apply(&status(SessionStatus::Running));
        assert!(!fold.settled(), "the turn's start follows the status");
        fold.apply(&started("a"));
        assert!(!fold.settled());
        fold.apply(&finished("a", TurnOutcome::Completed));
        assert!(fold.settled());
        assert_eq!(
            fold.ending(),
            Ending::Turn {
                outcome: TurnOutcome::Completed,
                error: None
            }
        );
    }

    #[test]
    fn a_queued_prompt_keeps_attach_following_past_the_first_turn() {
        let mut fold = Fold::default();
        fold.apply(&started("a"));
        fold.apply(&SessionEvent::Queue {
            items: vec![den_protocol::events::QueuedPrompt {
                id: "b".to_owned(),
                text: "next".to_owned(),
                model: None,
            }],
        });
        let first = finished("a", TurnOutcome::Completed);
        fold.apply(&first);
        assert_eq!(ends(&Until::Settled, &fold, &first), None);
        assert!(ends(&Until::FirstTurn, &fold, &first).is_some());
        assert_eq!(ends(&Until::Turn("b".to_owned()), &fold, &first), None);
        fold.apply(&SessionEvent::Queue { items: vec![] });
        fold.apply(&started("b"));
        let second = finished("b", TurnOutcome::Failed);
        fold.apply(&second);
        assert!(matches!(
            ends(&Until::Settled, &fold, &second),
            Some(Ending::Turn {
                outcome: TurnOutcome::Failed,
                ..
            })
        ));
        assert!(ends(&Until::Turn("b".to_owned()), &fold, &second).is_some());
        assert_eq!(ends(&Until::Forever, &fold, &second), None);
    }

    #[test]
    fn a_start_that_fails_before_the_turn_ends_with_the_reason() {
        let mut fold = Fold::default();
        fold.apply(&status(SessionStatus::Starting));
        let failed = SessionEvent::Status {
            status: SessionStatus::Error,
            error: Some("branch nope does not exist".to_owned()),
            pause: None,
        };
        fold.apply(&failed);
        assert_eq!(
            ends(&Until::FirstTurn, &fold, &failed),
            Some(Ending::SessionError(
                "branch nope does not exist".to_owned()
            ))
        );
    }
}
