//! Prompts, the queue, and turns: one prompt answered by the agent, from start to finish.

use den_opencode::{EventEnvelope, ModelRef, OpencodeError, PromptRequest};
use den_protocol::events::{PromptAccepted, QueuedPrompt, Role, SessionEvent, TurnOutcome};
use den_protocol::models::UsageTotals;
use den_protocol::sessions::SessionStatus;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::work::{Reconciliation, Work};
use super::{AGENT_CALL_TIMEOUT, SessionActor, Stopping, Turn};
use crate::error::{Result, SessionError};
use crate::mapping::TurnMapper;

impl SessionActor {
    /// Accepts a prompt: it runs now if the agent is free, otherwise it waits in the queue. A
    /// session that is not running is started (or resumed) first.
    pub(super) async fn prompt(
        &mut self,
        text: String,
        model: Option<String>,
    ) -> Result<PromptAccepted> {
        let text = self.checked_prompt(&text)?;
        if self.queue.len() >= self.services.config.max_queue {
            return Err(SessionError::Conflict(
                "too many prompts are waiting; remove some first".to_owned(),
            ));
        }
        // A session nobody named takes its title from its first prompt.
        if self.record.title == crate::title::for_repository(&self.record.repository)
            && let Some(title) = crate::title::from_prompt(&text)
            && let Err(err) = self.rename(title).await
        {
            tracing::warn!(error = %err, "cannot title the session after its first prompt");
        }
        let queued = self.turn.is_some() || !self.queue.is_empty() || self.pausing.is_some();
        let item = QueuedPrompt {
            id: uuid::Uuid::now_v7().to_string(),
            text,
            model,
        };
        let accepted = PromptAccepted {
            id: item.id.clone(),
            queued,
        };
        self.queue.push_back(item);
        if queued {
            self.emit_queue().await;
        }
        if self.pausing.is_some() {
            // The pause finishes first; the queue then starts the session again.
        } else if self.live.is_some() {
            self.run_next_turn().await;
        } else {
            if self.starting.is_none() && self.record.status().ok() != Some(SessionStatus::Starting)
            {
                self.set_status(SessionStatus::Starting, None).await;
            }
            self.begin_start();
        }
        Ok(accepted)
    }

    /// A prompt's text, trimmed; refused when empty or too long.
    fn checked_prompt(&self, text: &str) -> Result<String> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SessionError::InvalidPrompt(
                "the prompt is empty".to_owned(),
            ));
        }
        let max = self.services.config.max_prompt_bytes;
        if text.len() > max {
            return Err(SessionError::InvalidPrompt(format!(
                "the prompt is longer than {max} bytes"
            )));
        }
        Ok(text.to_owned())
    }

    /// Replaces the text of a prompt still waiting in the queue.
    pub(super) async fn edit_queued(&mut self, id: &str, text: &str) -> Result<()> {
        let text = self.checked_prompt(text)?;
        let Some(item) = self.queue.iter_mut().find(|item| item.id == id) else {
            return Err(SessionError::Conflict(
                "that prompt is not in the queue (it may have started)".to_owned(),
            ));
        };
        if item.text != text {
            item.text = text;
            self.emit_queue().await;
        }
        Ok(())
    }

    /// Starts the next queued prompt if the agent is free. The prompt goes to the agent from a
    /// child task; its answer comes back as [`Work::PromptSent`].
    pub(super) async fn run_next_turn(&mut self) {
        if self.turn.is_some() || self.pausing.is_some() || self.settling.is_some() || self.pushing
        {
            return;
        }
        let Some(live) = &self.live else {
            return;
        };
        let agent_session_id = live.agent_session_id.clone();
        let client = live.client.clone();
        let Some(item) = self.queue.pop_front() else {
            self.idle_deadline = Some(Instant::now() + self.services.config.idle_timeout);
            return;
        };
        self.idle_deadline = None;
        if self.queue_shown {
            self.emit_queue().await;
        }
        self.changes += 1;
        // The gateway allows the session's model, read per request: a switch is stored before
        // the prompt goes out (by the same child task, in that order).
        let switch_model = item
            .model
            .clone()
            .filter(|model| *model != self.record.model);
        if let Some(model) = &switch_model {
            self.record.model.clone_from(model);
        }
        self.turn = Some(Turn {
            id: item.id.clone(),
            started_at: den_store::now(),
            mapper: TurnMapper::new(&agent_session_id),
            sending: None,
            accepted: false,
            stopping: None,
            last_activity: Instant::now(),
        });
        self.prompt_title = crate::title::from_prompt(&item.text);
        let user = self
            .emit(SessionEvent::Message {
                message_id: item.id.clone(),
                role: Role::User,
                text: Some(item.text.clone()),
            })
            .await;
        let started = self
            .emit(SessionEvent::TurnStarted {
                turn_id: item.id.clone(),
                prompt: item.text.clone(),
                model: Some(self.record.model.clone()),
            })
            .await;
        if user.is_none() || started.is_none() {
            Box::pin(self.fail_turn("den could not record the turn")).await;
            return;
        }
        self.touch();
        self.announce();
        let request = PromptRequest::text(item.text, model_ref(&self.record.model));
        let store = self.services.store.clone();
        let (owner_id, session_id) = (self.record.owner_id, self.record.id);
        let turn_id = item.id;
        let task = self.spawn_work(async move {
            let result = async {
                let record = match switch_model {
                    Some(model) => Some(Box::new(
                        store
                            .set_session_model(owner_id, session_id, &model)
                            .await
                            .map_err(|err| {
                                tracing::warn!(error = %err, "cannot switch the session's model");
                                "den could not switch the session's model".to_owned()
                            })?,
                    )),
                    None => None,
                };
                match tokio::time::timeout(
                    AGENT_CALL_TIMEOUT,
                    client.prompt_async(&agent_session_id, &request),
                )
                .await
                {
                    Ok(Ok(())) => Ok(record),
                    Ok(Err(err)) => Err(err.to_string()),
                    Err(_) => Err("the agent did not accept the prompt in time".to_owned()),
                }
            }
            .await;
            Work::PromptSent { turn_id, result }
        });
        if let Some(turn) = &mut self.turn {
            turn.sending = Some(task);
        }
    }

    pub(super) async fn on_prompt_sent(
        &mut self,
        turn_id: &str,
        result: std::result::Result<Option<Box<den_store::SessionRecord>>, String>,
    ) {
        let Some(turn) = self.turn.as_mut().filter(|turn| turn.id == turn_id) else {
            return;
        };
        turn.sending = None;
        match result {
            Ok(record) => {
                turn.accepted = true;
                turn.last_activity = Instant::now();
                if let Some(record) = record {
                    self.record = *record;
                }
            }
            Err(message) => {
                self.emit(SessionEvent::Error {
                    code: "prompt_failed".to_owned(),
                    message: message.clone(),
                })
                .await;
                self.close_turn(TurnOutcome::Failed, Some(message)).await;
                self.run_next_turn().await;
            }
        }
    }

    /// Stops the running turn: the request goes to the agent from a child task, and `reply`
    /// hears its answer (a second stop waits for the same answer). OpenCode then reports the
    /// turn aborted and it closes.
    pub(super) fn abort(&mut self, reply: oneshot::Sender<Result<()>>) {
        let (Some(turn), Some(live)) = (&self.turn, &self.live) else {
            let _ = reply.send(Ok(()));
            return;
        };
        if turn.stopping.is_some() {
            if let Some(stopping) = self.turn.as_mut().and_then(|turn| turn.stopping.as_mut()) {
                stopping.waiters.push(reply);
            }
            return;
        }
        let (client, agent_session_id, turn_id) = (
            live.client.clone(),
            live.agent_session_id.clone(),
            turn.id.clone(),
        );
        let task = self.spawn_work(async move {
            let result =
                match tokio::time::timeout(AGENT_CALL_TIMEOUT, client.abort(&agent_session_id))
                    .await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(err)) => Err(format!("the agent refused the stop request: {err}")),
                    Err(_) => Err("the agent did not answer the stop request".to_owned()),
                };
            Work::StopAnswered { turn_id, result }
        });
        if let Some(turn) = &mut self.turn {
            turn.stopping = Some(Stopping {
                task,
                waiters: vec![reply],
            });
        }
    }

    pub(super) async fn on_stop_answered(
        &mut self,
        turn_id: &str,
        result: std::result::Result<(), String>,
    ) {
        if self.settling.as_deref() == Some(turn_id) {
            if let Err(err) = &result {
                tracing::warn!(error = %err, "the agent did not stop a failed turn");
            }
            self.settling = None;
            self.run_next_turn().await;
            return;
        }
        let Some(turn) = self.turn.as_mut().filter(|turn| turn.id == turn_id) else {
            return;
        };
        let Some(stopping) = turn.stopping.take() else {
            return;
        };
        if result.is_ok() {
            turn.mapper.aborted = true;
        }
        for waiter in stopping.waiters {
            let answer = result.clone().map_err(SessionError::AgentUnreachable);
            let _ = waiter.send(answer);
        }
    }

    pub(super) async fn on_agent_event(
        &mut self,
        event: Option<std::result::Result<EventEnvelope, OpencodeError>>,
    ) {
        match event {
            Some(Ok(envelope)) => {
                if matches!(envelope.event, den_opencode::Event::ServerConnected {})
                    && std::mem::take(&mut self.stream_broken)
                {
                    self.reconcile();
                }
                self.on_ask_event(&envelope.event).await;
                self.on_ask_settled_by_agent(&envelope.event).await;
                self.take_agent_title(&envelope.event).await;
                let Some(turn) = &mut self.turn else {
                    return;
                };
                if envelope.event.session_id() == Some(turn.mapper.agent_session_id()) {
                    turn.last_activity = Instant::now();
                }
                let mapped = turn.mapper.map(envelope.event);
                let finished = turn.mapper.finished;
                for event in mapped {
                    if self.emit(event).await.is_none() {
                        self.fail_turn("den could not record the turn's events")
                            .await;
                        return;
                    }
                }
                if finished {
                    self.finish_turn().await;
                }
            }
            // The stream reconnects by itself; what happened meanwhile is read back from the
            // agent once it is connected again.
            Some(Err(err)) => {
                tracing::warn!(error = %err, "the agent's event stream broke");
                self.stream_broken = true;
            }
            None => {
                let err =
                    SessionError::AgentUnreachable("lost the connection to the agent".to_owned());
                self.fail(&err).await;
            }
        }
    }

    /// The agent's account of a turn after its event stream came back: still busy, the turn
    /// goes on; idle, the turn ended while nobody listened, and its end is read from the
    /// conversation.
    pub(super) async fn on_reconciled(
        &mut self,
        turn_id: &str,
        result: std::result::Result<Reconciliation, String>,
    ) {
        let Some(turn) = self.turn.as_mut().filter(|turn| turn.id == turn_id) else {
            return;
        };
        let reconciliation = match result {
            Ok(reconciliation) => reconciliation,
            Err(err) => {
                // The deadline still bounds the turn.
                tracing::warn!(error = %err, "cannot read the turn back from the agent");
                return;
            }
        };
        // Busy is no sign of progress (a hung agent is busy too): the deadline still runs.
        if reconciliation.busy || turn.mapper.finished {
            return;
        }
        let agent_session_id = turn.mapper.agent_session_id().to_owned();
        let replies = replies_to_last_prompt(reconciliation.messages);
        let mut mapped = Vec::new();
        for message in replies {
            if let den_opencode::Message::Assistant(assistant) = &message.info
                && let Some(error) = &assistant.error
            {
                if error.name == "MessageAbortedError" {
                    turn.mapper.aborted = true;
                } else {
                    let text = error.message().unwrap_or(&error.name).to_owned();
                    turn.mapper.error = Some(text);
                }
            }
            mapped.extend(turn.mapper.map(den_opencode::Event::MessageUpdated {
                session_id: agent_session_id.clone(),
                info: message.info,
            }));
            for part in message.parts {
                mapped.extend(turn.mapper.map(den_opencode::Event::MessagePartUpdated {
                    session_id: agent_session_id.clone(),
                    part,
                }));
            }
        }
        for event in mapped {
            if self.emit(event).await.is_none() {
                self.fail_turn("den could not record the turn's events")
                    .await;
                return;
            }
        }
        self.finish_turn().await;
    }

    /// The agent showed no sign of life on the running turn for the configured time.
    pub(super) async fn on_turn_inactive(&mut self) {
        let minutes = self.services.config.turn_inactivity_timeout.as_secs() / 60;
        let message = if minutes > 0 {
            format!("the agent showed no activity for {minutes} minutes; the turn was stopped")
        } else {
            let seconds = self.services.config.turn_inactivity_timeout.as_secs();
            format!("the agent showed no activity for {seconds} seconds; the turn was stopped")
        };
        tracing::warn!("turn inactivity deadline passed");
        self.emit(SessionEvent::Error {
            code: "turn_timeout".to_owned(),
            message: message.clone(),
        })
        .await;
        self.fail_turn(&message).await;
    }

    /// Ends the running turn as failed with `message` and asks the agent to stop it (so it
    /// does not go on unseen). The queue goes on once the agent answered: its echo of the
    /// stop must not land in the next turn.
    pub(super) async fn fail_turn(&mut self, message: &str) {
        let turn_id = self.turn.as_ref().map(|turn| turn.id.clone());
        if let (Some(live), Some(turn_id)) = (&self.live, turn_id) {
            let (client, agent_session_id) = (live.client.clone(), live.agent_session_id.clone());
            self.settling = Some(turn_id.clone());
            self.spawn_work(async move {
                let result =
                    match tokio::time::timeout(AGENT_CALL_TIMEOUT, client.abort(&agent_session_id))
                        .await
                    {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(err)) => Err(err.to_string()),
                        Err(_) => Err("the agent did not answer the stop request".to_owned()),
                    };
                Work::StopAnswered { turn_id, result }
            });
        }
        self.close_turn(TurnOutcome::Failed, Some(message.to_owned()))
            .await;
        self.run_next_turn().await;
    }

    /// OpenCode titles a conversation it was given no title for (it asks the model, after the
    /// first prompt) and says so in `session.updated`. A session nobody named takes that title
    /// in place of its first prompt's first line; a person's own title is never replaced.
    async fn take_agent_title(&mut self, event: &den_opencode::Event) {
        let den_opencode::Event::SessionUpdated(info) = event else {
            return;
        };
        let ours = self
            .live
            .as_ref()
            .map(|live| live.agent_session_id.as_str());
        if ours != Some(info.session_id.as_str()) {
            return;
        }
        let Some(title) = crate::title::from_agent(&info.info.title) else {
            return;
        };
        let current = &self.record.title;
        let unnamed = *current == crate::title::for_repository(&self.record.repository)
            || Some(current) == self.prompt_title.as_ref();
        if unnamed
            && *current != title
            && let Err(err) = self.rename(title).await
        {
            tracing::warn!(error = %err, "cannot take the title the agent gave the session");
        }
    }

    /// The agent finished the turn: record it, snapshot and compute the diff in the
    /// background, and go on with the queue.
    async fn finish_turn(&mut self) {
        let Some(turn) = &self.turn else {
            return;
        };
        let outcome = if turn.mapper.aborted {
            TurnOutcome::Aborted
        } else if turn.mapper.error.is_some() {
            TurnOutcome::Failed
        } else {
            TurnOutcome::Completed
        };
        let error = turn.mapper.error.clone();
        self.close_turn(outcome, error).await;
        self.begin_snapshot(true);
        self.run_next_turn().await;
    }

    /// Records the end of the running turn, if any; its agent calls still under way end with
    /// it, and whoever waits for a stop hears that the turn is over.
    pub(super) async fn close_turn(&mut self, outcome: TurnOutcome, error: Option<String>) {
        // Nothing the turn asked can be answered after it: a den that stops expires them (the
        // person did not answer), any other end cancels them.
        let ask_outcome = if outcome == TurnOutcome::Interrupted {
            den_protocol::asks::AskOutcome::Expired
        } else {
            den_protocol::asks::AskOutcome::Cancelled
        };
        self.close_all_asks(ask_outcome, false).await;
        let Some(turn) = self.turn.take() else {
            return;
        };
        if let Some(sending) = &turn.sending {
            sending.abort();
        }
        if let Some(stopping) = turn.stopping {
            stopping.task.abort();
            for waiter in stopping.waiters {
                let _ = waiter.send(Ok(()));
            }
        }
        let (tokens, cost) = turn.mapper.usage();
        // The gateway records each request's usage before its stream ends, so the turn's
        // requests are all stored by now.
        match self
            .services
            .store
            .session_usage_since(self.record.owner_id, self.record.id, turn.started_at)
            .await
        {
            Ok(usage) if usage.requests > 0 => {
                self.emit(SessionEvent::TurnUsage {
                    turn_id: turn.id.clone(),
                    usage: UsageTotals {
                        requests: usage.requests,
                        input_tokens: usage.input_tokens,
                        output_tokens: usage.output_tokens,
                        reasoning_tokens: usage.reasoning_tokens,
                        cache_read_tokens: usage.cache_read_tokens,
                        cache_write_tokens: usage.cache_write_tokens,
                        cost_usd: usage.cost_usd,
                    },
                })
                .await;
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "cannot read the turn's metered usage"),
        }
        self.emit(SessionEvent::TurnFinished {
            turn_id: turn.id,
            outcome,
            tokens,
            cost,
            error,
        })
        .await;
        self.touch();
        self.announce();
    }

    /// Notes activity on the session's record, without holding up the loop.
    fn touch(&self) {
        let store = self.services.store.clone();
        let id = self.session_id();
        tokio::spawn(async move {
            if let Err(err) = store.touch_session(id).await {
                tracing::debug!(error = %err, "cannot note the session's activity");
            }
        });
    }
}

/// The messages that answer the conversation's last prompt: everything after its last user
/// message.
fn replies_to_last_prompt(
    mut messages: Vec<den_opencode::MessageWithParts>,
) -> Vec<den_opencode::MessageWithParts> {
    let last_user = messages
        .iter()
        .rposition(|message| matches!(message.info, den_opencode::Message::User(_)));
    match last_user {
        Some(index) => messages.split_off(index + 1),
        None => messages,
    }
}

/// `provider/model` as OpenCode's model reference.
fn model_ref(model: &str) -> Option<ModelRef> {
    let (provider, model) = model.split_once('/')?;
    Some(ModelRef {
        provider_id: provider.to_owned(),
        model_id: model.to_owned(),
    })
}
