//! Prompts, the queue, and turns: one prompt answered by the agent, from start to finish.

use den_opencode::{EventEnvelope, ModelRef, OpencodeError, PromptRequest};
use den_protocol::events::{PromptAccepted, QueuedPrompt, Role, SessionEvent, TurnOutcome};
use den_protocol::models::UsageTotals;
use den_protocol::sessions::SessionStatus;

use super::{AGENT_CALL_TIMEOUT, SessionActor, Turn};
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
        let queued = self.turn.is_some() || !self.queue.is_empty();
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
        if self.live.is_some() {
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

    /// Starts the next queued prompt if the agent is free.
    pub(super) async fn run_next_turn(&mut self) {
        if self.turn.is_some() {
            return;
        }
        let Some(live) = &self.live else {
            return;
        };
        let agent_session_id = live.agent_session_id.clone();
        let client = live.client.clone();
        let Some(item) = self.queue.pop_front() else {
            self.idle_deadline =
                Some(tokio::time::Instant::now() + self.services.config.idle_timeout);
            return;
        };
        self.idle_deadline = None;
        if self.queue_shown {
            self.emit_queue().await;
        }
        self.unsnapshotted = true;
        if let Some(model) = item.model.as_ref().filter(|m| **m != self.record.model) {
            // Stored before the prompt goes out: the gateway allows the session's model, read
            // per request.
            match self
                .services
                .store
                .set_session_model(self.record.owner_id, self.record.id, model)
                .await
            {
                Ok(record) => self.record = record,
                Err(err) => tracing::warn!(error = %err, "cannot switch the session's model"),
            }
        }
        self.turn = Some(Turn {
            id: item.id.clone(),
            started_at: den_store::now(),
            mapper: TurnMapper::new(&agent_session_id),
        });
        self.emit(SessionEvent::Message {
            message_id: item.id.clone(),
            role: Role::User,
            text: Some(item.text.clone()),
        })
        .await;
        self.emit(SessionEvent::TurnStarted {
            turn_id: item.id.clone(),
            prompt: item.text.clone(),
            model: Some(self.record.model.clone()),
        })
        .await;
        let _ = self.services.store.touch_session(self.session_id()).await;
        self.announce();
        let request = PromptRequest::text(item.text, model_ref(&self.record.model));
        let sent = tokio::time::timeout(
            AGENT_CALL_TIMEOUT,
            client.prompt_async(&agent_session_id, &request),
        )
        .await;
        let failure = match sent {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(err.to_string()),
            Err(_) => Some("the agent did not accept the prompt in time".to_owned()),
        };
        if let Some(message) = failure {
            self.emit(SessionEvent::Error {
                code: "prompt_failed".to_owned(),
                message: message.clone(),
            })
            .await;
            self.close_turn(TurnOutcome::Failed, Some(message)).await;
            Box::pin(self.run_next_turn()).await;
        }
    }

    /// Stops the running turn; OpenCode then reports it aborted and the turn closes.
    pub(super) async fn abort(&mut self) -> Result<()> {
        let (Some(_), Some(live)) = (&self.turn, &self.live) else {
            return Ok(());
        };
        let (client, agent_session_id) = (live.client.clone(), live.agent_session_id.clone());
        match tokio::time::timeout(AGENT_CALL_TIMEOUT, client.abort(&agent_session_id)).await {
            Ok(result) => {
                result?;
            }
            Err(_) => {
                return Err(SessionError::Conflict(
                    "the agent did not answer the stop request".to_owned(),
                ));
            }
        }
        if let Some(turn) = &mut self.turn {
            turn.mapper.aborted = true;
        }
        Ok(())
    }

    pub(super) async fn on_agent_event(
        &mut self,
        event: Option<std::result::Result<EventEnvelope, OpencodeError>>,
    ) {
        match event {
            Some(Ok(envelope)) => {
                self.allow_if_asked(&envelope.event);
                let Some(turn) = &mut self.turn else {
                    return;
                };
                let mapped = turn.mapper.map(envelope.event);
                let finished = turn.mapper.finished;
                for event in mapped {
                    self.emit(event).await;
                }
                if finished {
                    self.finish_turn().await;
                }
            }
            // The stream reconnects by itself; what happened meanwhile is lost to it.
            Some(Err(err)) => tracing::warn!(error = %err, "the agent's event stream broke"),
            None => {
                let err = SessionError::Conflict("lost the connection to the agent".to_owned());
                self.fail(&err).await;
            }
        }
    }

    /// The sandbox is the boundary, so OpenCode runs with every permission allowed; should it
    /// ask anyway (an agent defined in the repository can), nobody could answer and the turn
    /// would wait forever. Allow it once, as the config would have.
    fn allow_if_asked(&self, event: &den_opencode::Event) {
        let (den_opencode::Event::PermissionAsked(request), Some(live)) = (event, &self.live)
        else {
            return;
        };
        if request.session_id != live.agent_session_id {
            return;
        }
        tracing::info!(permission = %request.permission, "allowing what the agent asked for");
        let client = live.client.clone();
        let id = request.id.clone();
        tokio::spawn(async move {
            if let Err(err) = client
                .reply_permission(&id, den_opencode::PermissionReply::Once, None)
                .await
            {
                tracing::warn!(error = %err, "could not allow the agent's permission request");
            }
        });
    }

    /// The agent finished the turn: record it, snapshot, and go on with the queue.
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
        self.refresh_diff().await;
        if let Err(err) = self.snapshot().await {
            tracing::warn!(error = %err, "cannot snapshot after the turn");
            self.emit(SessionEvent::Error {
                code: "snapshot_failed".to_owned(),
                message: err.user_message(),
            })
            .await;
        }
        self.run_next_turn().await;
    }

    /// Records the end of the running turn, if any.
    pub(super) async fn close_turn(&mut self, outcome: TurnOutcome, error: Option<String>) {
        let Some(turn) = self.turn.take() else {
            return;
        };
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
        let _ = self.services.store.touch_session(self.session_id()).await;
        self.announce();
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
