use den_opencode::{
    CreateSession, Event, Message, ModelRef, OpencodeClient, OpencodeConfig, OpencodeError, Part,
    PromptRequest, SessionStatus, Target, ToolState,
};
use den_test_support::{ANTHROPIC_MODEL, ANTHROPIC_PROVIDER, Api, Gate, RequestKind, Turn};

use tokio::time::Instant;

use crate::live::harness::{
    Live, TURN_WITHIN, next_event, openai_model, streamed_text, until_idle,
};

/// The statuses a tool part went through, in order, deduplicated.
fn tool_statuses(events: &[Event], tool: &str) -> Vec<&'static str> {
    let mut statuses: Vec<&'static str> = Vec::new();
    for event in events {
        let Event::MessagePartUpdated {
            part: Part::Tool(part),
            ..
        } = event
        else {
            continue;
        };
        if part.tool != tool {
            continue;
        }
        let status = match part.state {
            ToolState::Pending { .. } => "pending",
            ToolState::Running { .. } => "running",
            ToolState::Completed { .. } => "completed",
            ToolState::Error { .. } => "error",
        };
        if statuses.last() != Some(&status) {
            statuses.push(status);
        }
    }
    statuses
}

#[tokio::test]
async fn a_write_turn_streams_text_runs_the_tool_and_remembers_it_next_turn() -> anyhow::Result<()>
{
    let live = Live::start().await?;
    live.model.push(
        Turn::new()
            .say("I will write it. ")
            .write("hello.txt", "hi from den\n"),
    );
    live.model.push(Turn::text("Done writing hello.txt."));

    let session = live
        .client
        .create_session(&CreateSession::default())
        .await?;
    let mut events = live.client.subscribe().await?;
    let prompt = PromptRequest::text("please write hello.txt", openai_model());
    live.client.prompt_async(&session.id, &prompt).await?;
    let first = until_idle(&mut events, &session.id, &live.server).await;

    let text = streamed_text(&first);
    assert!(text.contains("I will write it."), "deltas: {text:?}");
    assert!(text.contains("Done writing hello.txt."), "deltas: {text:?}");
    let statuses = tool_statuses(&first, "write");
    assert_eq!(statuses.last(), Some(&"completed"), "{statuses:?}");
    assert!(
        statuses.len() >= 2,
        "expected pending/running before completed: {statuses:?}"
    );
    assert!(first.iter().any(|event| matches!(
        event,
        Event::SessionStatus {
            status: SessionStatus::Busy,
            ..
        }
    )));
    assert!(first.iter().any(|event| matches!(
        event,
        Event::MessageUpdated {
            info: Message::User(_),
            ..
        }
    )));
    let written = std::fs::read_to_string(live.server.repo().join("hello.txt"))?;
    assert_eq!(written, "hi from den\n");

    live.model.push(Turn::text("Second answer."));
    let prompt = PromptRequest::text("and now a follow-up", openai_model());
    live.client.prompt_async(&session.id, &prompt).await?;
    let second = until_idle(&mut events, &session.id, &live.server).await;
    assert!(streamed_text(&second).contains("Second answer."));

    let agent = live.model.agent_requests();
    assert_eq!(
        agent.len(),
        3,
        "two steps for the first turn, one for the second"
    );
    let last = agent
        .last()
        .map(|request| request.transcript())
        .unwrap_or_default();
    for earlier in [
        "please write hello.txt",
        "I will write it.",
        "Done writing hello.txt.",
        "and now a follow-up",
    ] {
        assert!(last.contains(earlier), "last request lacks {earlier:?}");
    }
    assert!(
        agent
            .iter()
            .all(|request| request.session_id.as_deref() == Some(session.id.as_str()))
    );
    assert_eq!(live.model.remaining_turns(), 0);

    let messages = live.client.messages(&session.id).await?;
    let roles: Vec<&str> = messages
        .iter()
        .map(|message| match message.info {
            Message::User(_) => "user",
            Message::Assistant(_) => "assistant",
            Message::Other(_) => "other",
        })
        .collect();
    assert_eq!(
        roles,
        ["user", "assistant", "assistant", "user", "assistant"]
    );
    assert!(
        messages
            .iter()
            .flat_map(|message| &message.parts)
            .all(|part| !matches!(part, Part::Other(_)))
    );
    assert_eq!(live.client.session(&session.id).await?.id, session.id);
    assert!(
        live.client
            .sessions()
            .await?
            .iter()
            .any(|listed| listed.id == session.id)
    );
    live.client.diff(&session.id).await?;

    let target = Target::Tcp(live.server.base_url().to_owned());
    let anonymous = OpencodeClient::new(OpencodeConfig::new(target))?;
    let refused = anonymous.sessions().await;
    assert!(
        matches!(refused, Err(OpencodeError::Status { status: 401, .. })),
        "{refused:?}"
    );
    live.server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn abort_stops_a_turn_whose_stream_is_held_open() -> anyhow::Result<()> {
    let live = Live::start().await?;
    let gate = Gate::new();
    live.model.push(
        Turn::new()
            .say("Working on it ")
            .hold(&gate)
            .say("never shown"),
    );
    let session = live
        .client
        .create_session(&CreateSession::default())
        .await?;
    let mut events = live.client.subscribe().await?;
    live.client
        .prompt_async(
            &session.id,
            &PromptRequest::text("slow please", openai_model()),
        )
        .await?;
    tokio::time::timeout(TURN_WITHIN, gate.reached()).await?;
    // The model has sent its first words; wait until OpenCode has streamed them too, so the
    // abort lands mid-turn rather than before the reply started.
    let deadline = Instant::now() + TURN_WITHIN;
    let mut before = Vec::new();
    while !streamed_text(&before).contains("Working") {
        before.push(next_event(&mut events, &session.id, deadline, &live.server).await);
    }

    assert!(live.client.abort(&session.id).await?);
    let mut seen = until_idle(&mut events, &session.id, &live.server).await;
    seen.splice(0..0, before);
    gate.release();
    assert!(!streamed_text(&seen).contains("never shown"));
    // OpenCode reports the abort as a session.error, not on a message.updated event.
    let aborted_event = seen.iter().any(|event| {
        matches!(event, Event::SessionError { error: Some(error), .. } if error.is_aborted())
    });
    assert!(aborted_event, "no aborted session.error in {seen:#?}");
    let messages = live.client.messages(&session.id).await?;
    let aborted_message = messages.iter().any(|message| {
        matches!(&message.info, Message::Assistant(reply)
            if reply.error.as_ref().is_some_and(|error| error.is_aborted()))
    });
    assert!(
        aborted_message,
        "the transcript does not record the abort: {messages:#?}"
    );
    live.server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn the_anthropic_format_runs_a_tool_turn_too() -> anyhow::Result<()> {
    let live = Live::start().await?;
    live.model.push(
        Turn::new()
            .say("Writing. ")
            .write("claude.txt", "from claude\n"),
    );
    live.model.push(Turn::text("All done."));
    let model = Some(ModelRef {
        provider_id: ANTHROPIC_PROVIDER.to_owned(),
        model_id: ANTHROPIC_MODEL.to_owned(),
    });
    let session = live
        .client
        .create_session(&CreateSession::default())
        .await?;
    let mut events = live.client.subscribe().await?;
    live.client
        .prompt_async(&session.id, &PromptRequest::text("write claude.txt", model))
        .await?;
    let seen = until_idle(&mut events, &session.id, &live.server).await;

    assert!(streamed_text(&seen).contains("All done."));
    assert_eq!(tool_statuses(&seen, "write").last(), Some(&"completed"));
    assert_eq!(
        std::fs::read_to_string(live.server.repo().join("claude.txt"))?,
        "from claude\n"
    );
    let agent = live.model.agent_requests();
    assert_eq!(agent.len(), 2);
    assert!(agent.iter().all(|request| request.api == Api::Anthropic));
    live.server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_provider_error_surfaces_as_a_session_error() -> anyhow::Result<()> {
    let live = Live::start().await?;
    live.model.push(Turn::error(401, "invalid x-api-key"));
    let session = live
        .client
        .create_session(&CreateSession::default())
        .await?;
    let mut events = live.client.subscribe().await?;
    live.client
        .prompt_async(&session.id, &PromptRequest::text("hello", openai_model()))
        .await?;
    let seen = until_idle(&mut events, &session.id, &live.server).await;

    let error = seen.iter().find_map(|event| match event {
        Event::SessionError {
            error: Some(error), ..
        } => Some(error),
        _ => None,
    });
    let error = error.unwrap_or_else(|| panic!("no session.error in {seen:#?}"));
    assert!(
        error
            .message()
            .is_some_and(|message| message.contains("invalid x-api-key")),
        "{error:?}"
    );
    let kinds: Vec<RequestKind> = live
        .model
        .requests()
        .iter()
        .map(|request| request.kind)
        .collect();
    assert!(kinds.contains(&RequestKind::Agent));
    live.server.stop().await?;
    Ok(())
}
