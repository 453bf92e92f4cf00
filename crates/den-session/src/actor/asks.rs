//! The person in the loop: the agent's permission asks and questions, relayed to the session's
//! clients as events and answered through `SessionCommand::Answer`.
//!
//! OpenCode asks before every file edit and shell command (den's sandbox config says so); in
//! `auto` the actor allows each at once, in `ask` it records the ask and waits for the person.
//! Questions always wait for the person. An ask is closed exactly once, by an answer, by its
//! deadline (`SessionConfig::ask_timeout`), or by the end of its turn; each close is an event
//! that says how and by whom. While anything waits for the person, the turn's inactivity
//! deadline does not run (waiting is not a hang).

use std::collections::{BTreeMap, HashSet};

use den_opencode::{PermissionReply, PermissionRequest, QuestionRequest};
use den_protocol::asks::{
    AgentQuestion, ApprovalMode, AskClosed, AskOutcome, AskReply, MAX_ASK_TEXT, PermissionAsk,
    QuestionAsk, QuestionChoice,
};
use den_protocol::events::SessionEvent;
use tokio::time::Instant;

use super::SessionActor;
use super::work::Work;
use crate::error::{Result, SessionError};

/// What waits for the person.
#[derive(Default)]
pub(crate) struct PendingAsks {
    pending: BTreeMap<String, Pending>,
    /// Asks this actor closed, so a late second answer hears "already answered" rather than
    /// "unknown".
    closed: HashSet<String>,
}

struct Pending {
    kind: PendingKind,
    deadline: Instant,
}

enum PendingKind {
    Permission,
    Question(Vec<AgentQuestion>),
}

impl PendingAsks {
    pub(crate) fn is_waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// When the first pending ask expires.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|pending| pending.deadline).min()
    }
}

/// What an answer sends to the agent.
#[derive(Debug)]
pub(crate) enum AgentAnswer {
    Permission {
        reply: PermissionReply,
        message: Option<String>,
    },
    Answers(Vec<Vec<String>>),
    Dismiss,
}

impl SessionActor {
    /// An agent event that asks something of the person; other events pass through.
    pub(super) async fn on_ask_event(&mut self, event: &den_opencode::Event) {
        match event {
            den_opencode::Event::PermissionAsked(request) => self.on_permission(request).await,
            den_opencode::Event::QuestionAsked(request) => self.on_question(request).await,
            _ => {}
        }
    }

    async fn on_permission(&mut self, request: &PermissionRequest) {
        let mode = self.record.approval_mode().unwrap_or_default();
        if mode == ApprovalMode::Auto || !matches!(request.permission.as_str(), "bash" | "edit") {
            // The sandbox is the boundary: allowed as the config would have (and in `ask`,
            // anything that is neither a command nor a file change, as reads are).
            self.send_answer(
                request.id.clone(),
                AgentAnswer::Permission {
                    reply: PermissionReply::Once,
                    message: None,
                },
            );
            return;
        }
        let metadata = &request.metadata;
        let text = |key: &str| {
            metadata
                .get(key)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let file = text("filepath").or_else(|| text("filePath")).map(|path| {
            path.strip_prefix(&format!("{}/", den_sandbox::WORKSPACE_DIR))
                .map(str::to_owned)
                .unwrap_or(path)
        });
        let deadline = Instant::now() + self.services.config.ask_timeout;
        let ask = PermissionAsk {
            ask_id: request.id.clone(),
            permission: request.permission.clone(),
            command: text("command"),
            file,
            diff: text("diff"),
            patterns: request.patterns.clone(),
            always: request.always.clone(),
            expires_at: expires_at(self.services.config.ask_timeout),
        };
        self.asks.pending.insert(
            request.id.clone(),
            Pending {
                kind: PendingKind::Permission,
                deadline,
            },
        );
        self.emit(SessionEvent::PermissionAsked(ask)).await;
    }

    async fn on_question(&mut self, request: &QuestionRequest) {
        let questions: Vec<AgentQuestion> = request
            .questions
            .iter()
            .map(|question| AgentQuestion {
                question: question.question.clone(),
                header: question.header.clone(),
                options: question
                    .options
                    .iter()
                    .map(|option| QuestionChoice {
                        label: option.label.clone(),
                        description: option.description.clone(),
                    })
                    .collect(),
                multiple: question.multiple.unwrap_or(false),
                // OpenCode's default: a typed answer is allowed unless the agent said not.
                free_text: question.custom.unwrap_or(true),
            })
            .collect();
        let ask = QuestionAsk {
            ask_id: request.id.clone(),
            questions: questions.clone(),
            expires_at: expires_at(self.services.config.ask_timeout),
        };
        self.asks.pending.insert(
            request.id.clone(),
            Pending {
                kind: PendingKind::Question(questions),
                deadline: Instant::now() + self.services.config.ask_timeout,
            },
        );
        self.emit(SessionEvent::QuestionAsked(ask)).await;
    }

    /// The person's answer to a pending ask: checked, recorded, then sent to the agent.
    pub(super) async fn answer(&mut self, ask_id: &str, reply: AskReply, by: String) -> Result<()> {
        let Some(pending) = self.asks.pending.get(ask_id) else {
            return Err(if self.asks.closed.contains(ask_id) {
                SessionError::Conflict("that ask was already answered".to_owned())
            } else {
                SessionError::AskNotFound
            });
        };
        let (outcome, message, answers, to_agent) = checked_answer(&pending.kind, reply)?;
        self.asks.pending.remove(ask_id);
        self.asks.closed.insert(ask_id.to_owned());
        self.emit(SessionEvent::AskClosed(AskClosed {
            ask_id: ask_id.to_owned(),
            outcome,
            by: Some(by),
            message,
            answers,
        }))
        .await;
        self.resume_turn_clock();
        self.send_answer(ask_id.to_owned(), to_agent);
        Ok(())
    }

    /// Closes every ask whose deadline passed, as refused.
    pub(super) async fn expire_asks(&mut self) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .asks
            .pending
            .iter()
            .filter(|(_, pending)| pending.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            tracing::info!(ask = %id, "nobody answered the ask in time");
            self.close_ask(&id, AskOutcome::Expired, true).await;
        }
        self.resume_turn_clock();
    }

    /// The turn ended (or the sandbox went away): nothing it asked can be answered any more.
    /// `outcome` says why; `tell_agent` refuses them on the agent's side too, when it runs.
    pub(super) async fn close_all_asks(&mut self, outcome: AskOutcome, tell_agent: bool) {
        let ids: Vec<String> = self.asks.pending.keys().cloned().collect();
        for id in ids {
            self.close_ask(&id, outcome, tell_agent).await;
        }
    }

    async fn close_ask(&mut self, id: &str, outcome: AskOutcome, tell_agent: bool) {
        let Some(pending) = self.asks.pending.remove(id) else {
            return;
        };
        self.asks.closed.insert(id.to_owned());
        self.emit(SessionEvent::AskClosed(AskClosed {
            ask_id: id.to_owned(),
            outcome,
            by: None,
            message: None,
            answers: None,
        }))
        .await;
        if tell_agent {
            let refusal = match pending.kind {
                PendingKind::Permission => AgentAnswer::Permission {
                    reply: PermissionReply::Reject,
                    message: None,
                },
                PendingKind::Question(_) => AgentAnswer::Dismiss,
            };
            self.send_answer(id.to_owned(), refusal);
        }
    }

    /// An answer of the agent's own, or a reply it saw from elsewhere (its web UI): the ask is
    /// no longer pending.
    pub(super) async fn on_ask_settled_by_agent(&mut self, event: &den_opencode::Event) {
        let (id, outcome) = match event {
            den_opencode::Event::PermissionReplied {
                request_id, reply, ..
            } => (
                request_id,
                match reply {
                    PermissionReply::Once => AskOutcome::Once,
                    PermissionReply::Always => AskOutcome::Always,
                    PermissionReply::Reject => AskOutcome::Rejected,
                },
            ),
            den_opencode::Event::QuestionReplied { request_id, .. } => {
                (request_id, AskOutcome::Answered)
            }
            den_opencode::Event::QuestionRejected { request_id, .. } => {
                (request_id, AskOutcome::Dismissed)
            }
            _ => return,
        };
        if self.asks.pending.contains_key(id) {
            self.close_ask(&id.clone(), outcome, false).await;
            self.resume_turn_clock();
        }
    }

    /// Waiting for the person is not inactivity: the turn's deadline starts over once nothing
    /// waits.
    fn resume_turn_clock(&mut self) {
        if !self.asks.is_waiting()
            && let Some(turn) = &mut self.turn
        {
            turn.last_activity = Instant::now();
        }
    }

    /// Sends an answer to the agent from a child task; a failure comes back as
    /// [`Work::AskDelivered`].
    pub(super) fn send_answer(&self, id: String, answer: AgentAnswer) {
        let Some(live) = &self.live else {
            return;
        };
        let client = live.client.clone();
        self.spawn_work(async move {
            let result = match &answer {
                AgentAnswer::Permission { reply, message } => {
                    client
                        .reply_permission(&id, *reply, message.as_deref())
                        .await
                }
                AgentAnswer::Answers(answers) => client.reply_question(&id, answers).await,
                AgentAnswer::Dismiss => client.reject_question(&id).await,
            };
            Work::AskDelivered {
                id,
                result: result.map(|_| ()).map_err(|err| err.to_string()),
            }
        });
    }

    pub(super) async fn on_ask_delivered(
        &mut self,
        id: &str,
        result: std::result::Result<(), String>,
    ) {
        if let Err(err) = result {
            tracing::warn!(ask = %id, error = %err, "the agent did not take the answer");
            self.emit(SessionEvent::Error {
                code: "answer_failed".to_owned(),
                message: format!("the agent did not take the answer: {err}"),
            })
            .await;
        }
    }

    /// Switches the approval mode; what already waits keeps waiting for the person.
    pub(super) async fn set_approval_mode(&mut self, mode: ApprovalMode, by: String) -> Result<()> {
        if self.record.approval_mode().ok() == Some(mode) {
            return Ok(());
        }
        self.record = self
            .services
            .store
            .set_session_approval_mode(self.record.owner_id, self.record.id, mode)
            .await?;
        self.emit(SessionEvent::ApprovalModeChanged { mode, by })
            .await;
        self.announce();
        Ok(())
    }
}

fn expires_at(after: std::time::Duration) -> chrono::DateTime<chrono::Utc> {
    den_store::now() + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX)
}

type Checked = (
    AskOutcome,
    Option<String>,
    Option<Vec<Vec<String>>>,
    AgentAnswer,
);

/// Whether `reply` answers an ask of `kind`, and what it means for the event and the agent.
fn checked_answer(kind: &PendingKind, reply: AskReply) -> Result<Checked> {
    let invalid = |message: &str| Err(SessionError::InvalidAnswer(message.to_owned()));
    match (kind, reply) {
        (PendingKind::Permission, AskReply::Once {}) => Ok((
            AskOutcome::Once,
            None,
            None,
            AgentAnswer::Permission {
                reply: PermissionReply::Once,
                message: None,
            },
        )),
        (PendingKind::Permission, AskReply::Always {}) => Ok((
            AskOutcome::Always,
            None,
            None,
            AgentAnswer::Permission {
                reply: PermissionReply::Always,
                message: None,
            },
        )),
        (PendingKind::Permission, AskReply::Reject { message }) => {
            let message = checked_text(message)?;
            Ok((
                AskOutcome::Rejected,
                message.clone(),
                None,
                AgentAnswer::Permission {
                    reply: PermissionReply::Reject,
                    message,
                },
            ))
        }
        (PendingKind::Permission, AskReply::Answer { .. }) => {
            invalid("a permission ask takes once, always or reject, not answers")
        }
        (PendingKind::Question(_), AskReply::Reject { .. }) => {
            Ok((AskOutcome::Dismissed, None, None, AgentAnswer::Dismiss))
        }
        (PendingKind::Question(questions), AskReply::Answer { answers }) => {
            check_answers(questions, &answers)?;
            Ok((
                AskOutcome::Answered,
                None,
                Some(answers.clone()),
                AgentAnswer::Answers(answers),
            ))
        }
        (PendingKind::Question(_), AskReply::Once {} | AskReply::Always {}) => {
            invalid("a question takes answers (or reject to dismiss it)")
        }
    }
}

fn checked_text(message: Option<String>) -> Result<Option<String>> {
    let message = message
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty());
    if message
        .as_ref()
        .is_some_and(|text| text.len() > MAX_ASK_TEXT)
    {
        return Err(SessionError::InvalidAnswer(format!(
            "the message is longer than {MAX_ASK_TEXT} bytes"
        )));
    }
    Ok(message)
}

/// One list per question; each a choice among its options, or typed text where allowed.
fn check_answers(questions: &[AgentQuestion], answers: &[Vec<String>]) -> Result<()> {
    let invalid = |message: String| Err(SessionError::InvalidAnswer(message));
    if answers.len() != questions.len() {
        return invalid(format!(
            "expected {} answers (one per question), got {}",
            questions.len(),
            answers.len()
        ));
    }
    for (index, (question, chosen)) in questions.iter().zip(answers).enumerate() {
        let number = index + 1;
        if chosen.is_empty() {
            return invalid(format!("question {number} has no answer"));
        }
        if chosen.len() > 1 && !question.multiple {
            return invalid(format!("question {number} takes one answer"));
        }
        for answer in chosen {
            let is_option = question
                .options
                .iter()
                .any(|option| option.label == *answer);
            if is_option {
                continue;
            }
            if !question.free_text {
                return invalid(format!(
                    "{answer:?} is not one of question {number}'s options"
                ));
            }
            if answer.trim().is_empty() || answer.len() > MAX_ASK_TEXT {
                return invalid(format!(
                    "a typed answer to question {number} must be 1 to {MAX_ASK_TEXT} bytes"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(free_text: bool, multiple: bool) -> AgentQuestion {
        AgentQuestion {
            question: "Which colour?".into(),
            header: "Colour".into(),
            options: vec![
                QuestionChoice {
                    label: "blue".into(),
                    description: None,
                },
                QuestionChoice {
                    label: "red".into(),
                    description: None,
                },
            ],
            multiple,
            free_text,
        }
    }

    #[test]
    fn answers_must_fit_their_questions() {
        let strict = [question(false, false)];
        assert!(check_answers(&strict, &[vec!["blue".into()]]).is_ok());
        assert!(check_answers(&strict, &[vec!["green".into()]]).is_err());
        assert!(check_answers(&strict, &[vec!["blue".into(), "red".into()]]).is_err());
        assert!(check_answers(&strict, &[]).is_err());
        assert!(check_answers(&strict, &[vec![]]).is_err());
        let open = [question(true, true)];
        assert!(check_answers(&open, &[vec!["green".into(), "red".into()]]).is_ok());
        assert!(check_answers(&open, &[vec![" ".into()]]).is_err());
    }

    #[test]
    fn replies_must_fit_the_kind_of_ask() {
        let permission = PendingKind::Permission;
        assert!(checked_answer(&permission, AskReply::Answer { answers: vec![] }).is_err());
        let (outcome, message, ..) = checked_answer(
            &permission,
            AskReply::Reject {
                message: Some("  not that  ".into()),
            },
        )
        .unwrap();
        assert_eq!(outcome, AskOutcome::Rejected);
        assert_eq!(message.as_deref(), Some("not that"));
        let asked = PendingKind::Question(vec![question(false, false)]);
        assert!(checked_answer(&asked, AskReply::Once {}).is_err());
        let (outcome, ..) = checked_answer(&asked, AskReply::Reject { message: None }).unwrap();
        assert_eq!(outcome, AskOutcome::Dismissed);
    }
}
