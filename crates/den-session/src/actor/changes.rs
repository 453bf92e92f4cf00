//! The session's diff: answered without holding up the actor, and recomputed after each turn.

use den_protocol::changes::SessionDiff;
use tokio::sync::oneshot;

use super::SessionActor;
use crate::changes;
use crate::error::Result;
use crate::workspace;

impl SessionActor {
    /// Answers a diff request from a task of its own (git may take a while on a large
    /// repository). With a running sandbox the diff is computed there; without one, or if the
    /// sandbox went away meanwhile, it is the one saved when the last turn ended.
    pub(super) fn diff(&self, reply: oneshot::Sender<Result<SessionDiff>>) {
        let saved_dir = workspace::snapshots_dir(&self.services.config, self.session_id());
        let live = self
            .live
            .as_ref()
            .map(|live| (live.sandbox.id.clone(), live.base_commit.clone()));
        let runtime = self.services.runtime.clone();
        tokio::spawn(async move {
            let result = match live {
                Some((sandbox, base)) => {
                    match changes::compute(runtime.as_ref(), &sandbox, &base).await {
                        Ok(diff) => Ok(diff),
                        Err(crate::SessionError::Sandbox(err)) => {
                            tracing::info!(error = %err, "no sandbox for the diff; using the saved one");
                            changes::load_saved(&saved_dir).await
                        }
                        Err(err) => Err(err),
                    }
                }
                None => changes::load_saved(&saved_dir).await,
            };
            let _ = reply.send(result);
        });
    }

    /// Commits and pushes the session's branch, between turns, from a child task (git may
    /// take a while): the next turn waits for it; `reply` hears how it went.
    pub(super) fn push(
        &mut self,
        author: crate::push::Author,
        message: Option<String>,
        reply: tokio::sync::oneshot::Sender<Result<den_protocol::changes::PushResult>>,
    ) {
        let refusal = if self.turn.is_some() {
            Some("a turn is running: push once it finished")
        } else if self.pushing {
            Some("a push is under way: wait for it to finish")
        } else if self.live.is_none() {
            Some("the session has no running sandbox: resume it to push")
        } else if !workspace::uses_git_gateway(&self.services.config, &self.record) {
            Some("this session's repository is not on a git host den pushes to")
        } else {
            None
        };
        let Some(sandbox) = self.live.as_ref().map(|live| live.sandbox.id.clone()) else {
            let _ = reply.send(Err(crate::SessionError::Conflict(
                refusal.unwrap_or_default().to_owned(),
            )));
            return;
        };
        if let Some(refusal) = refusal {
            let _ = reply.send(Err(crate::SessionError::Conflict(refusal.to_owned())));
            return;
        }
        let message = message.unwrap_or_else(|| self.record.title.clone());
        let runtime = self.services.runtime.clone();
        let branch = self.record.work_branch.clone();
        self.pushing = true;
        self.spawn_work(async move {
            let result = crate::push::commit_and_push(
                runtime.as_ref(),
                &sandbox,
                &branch,
                &author,
                &message,
            )
            .await;
            super::Work::Pushed { result, reply }
        });
    }
}
