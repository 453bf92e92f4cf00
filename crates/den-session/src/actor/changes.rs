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

    /// Commits and pushes the session's branch, between turns.
    pub(super) async fn push(
        &mut self,
        author: &crate::push::Author,
        message: Option<String>,
    ) -> Result<den_protocol::changes::PushResult> {
        if self.turn.is_some() {
            return Err(crate::SessionError::Conflict(
                "a turn is running: push once it finished".to_owned(),
            ));
        }
        let Some(sandbox) = self.live.as_ref().map(|live| live.sandbox.id.clone()) else {
            return Err(crate::SessionError::Conflict(
                "the session has no running sandbox: resume it to push".to_owned(),
            ));
        };
        if !workspace::uses_git_gateway(&self.services.config, &self.record) {
            return Err(crate::SessionError::Conflict(
                "this session's repository is not on a git host den pushes to".to_owned(),
            ));
        }
        let message = message.unwrap_or_else(|| self.record.title.clone());
        crate::push::commit_and_push(
            self.services.runtime.as_ref(),
            &sandbox,
            &self.record.work_branch,
            author,
            &message,
        )
        .await
    }
}
