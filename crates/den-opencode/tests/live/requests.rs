use den_opencode::{
    CreateSession, Event, PermissionAction, PermissionReply, PermissionRule, PromptRequest,
};
use den_test_support::Turn;
use serde_json::json;
use tokio::time::Instant;

use crate::live::harness::{Live, TURN_WITHIN, next_event, openai_model};

#[tokio::test]
async fn permission_and_question_requests_are_answered_through_the_client() -> anyhow::Result<()> {
    let live = Live::start().await?;
    live.model
        .push(Turn::new().bash("echo asked > asked.txt", "write a file"));
    let question = json!({"questions": [{"question": "Which colour?", "header": "Colour",
        "options": [{"label": "Red", "description": "warm"}, {"label": "Blue", "description": "cool"}]}]});
    live.model.push(Turn::new().tool_call("question", question));
    live.model.push(Turn::text("Blue it is."));
    let ask_for_bash = CreateSession {
        title: None,
        permission: Some(vec![PermissionRule {
            permission: "bash".into(),
            pattern: "*".into(),
            action: PermissionAction::Ask,
        }]),
    };
    let session = live.client.create_session(&ask_for_bash).await?;
    let mut events = live.client.subscribe().await?;
    let prompt = PromptRequest::text("ask me things", openai_model());
    live.client.prompt_async(&session.id, &prompt).await?;

    let deadline = Instant::now() + TURN_WITHIN;
    let (mut permissions, mut questions) = (Vec::new(), Vec::new());
    loop {
        match next_event(&mut events, &session.id, deadline, &live.server).await {
            Event::PermissionAsked(request) => {
                assert!(
                    !live.server.repo().join("asked.txt").exists(),
                    "ran before approval"
                );
                assert!(
                    live.client
                        .reply_permission(&request.id, PermissionReply::Once, None)
                        .await?
                );
                permissions.push(request);
            }
            Event::QuestionAsked(request) => {
                let answers = vec![vec!["Blue".to_owned()]];
                assert!(live.client.reply_question(&request.id, &answers).await?);
                questions.push(request);
            }
            Event::SessionIdle { .. } => break,
            _ => {}
        }
    }
    assert_eq!(permissions.len(), 1);
    assert_eq!(permissions[0].permission, "bash");
    assert!(permissions[0].tool.is_some());
    assert_eq!(questions.len(), 1);
    assert_eq!(questions[0].questions[0].options[1].label, "Blue");
    assert!(live.server.repo().join("asked.txt").exists());
    let agent = live.model.agent_requests();
    assert_eq!(agent.len(), 3);
    assert!(
        agent[2].transcript().contains("Blue"),
        "the answer reached the model"
    );

    // Answering again is an error OpenCode reports as not found.
    let again = live
        .client
        .reply_permission(&permissions[0].id, PermissionReply::Once, None)
        .await;
    assert!(
        again.as_ref().is_err_and(|error| error.is_not_found()),
        "{again:?}"
    );
    live.server.stop().await?;
    Ok(())
}
