use std::time::Duration;

use anyhow::Context as _;
use den_opencode::{
    Event, EventStream, KNOWN_EVENT_TYPES, ModelRef, OpencodeClient, OpencodeConfig, Target,
};
use den_test_support::{
    OPENAI_MODEL, OPENAI_PROVIDER, OpencodeServer, ScriptedModel, scripted_config,
};
use futures::StreamExt;
use tokio::time::Instant;

/// First start of OpenCode takes 3-5 s on this machine; allow for a loaded CI box.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// A scripted turn finishes in well under a second; this only bounds a hang.
pub(crate) const TURN_WITHIN: Duration = Duration::from_secs(90);

pub(crate) const PASSWORD: &str = "den-test-password";

pub(crate) struct Live {
    pub(crate) model: ScriptedModel,
    pub(crate) server: OpencodeServer,
    pub(crate) client: OpencodeClient,
}

impl Live {
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let model = ScriptedModel::start()
            .await
            .context("start scripted model")?;
        // Every live test runs OpenCode secured, as den does, so basic auth is always exercised.
        let config = scripted_config(&model.base_url());
        let server = OpencodeServer::start_with_password(&config, Some(PASSWORD))
            .await
            .context("start opencode")?;
        let target = Target::Tcp(server.base_url().to_owned());
        let client = OpencodeClient::new(OpencodeConfig::new(target).with_password(PASSWORD))?;
        let health = client
            .wait_ready(Instant::now() + READY_WITHIN)
            .await
            .with_context(|| format!("opencode did not get ready; log:\n{}", server.log()))?;
        assert_eq!(health.version, den_test_support::OPENCODE_VERSION);
        Ok(Self {
            model,
            server,
            client,
        })
    }
}

pub(crate) fn openai_model() -> Option<ModelRef> {
    Some(ModelRef {
        provider_id: OPENAI_PROVIDER.to_owned(),
        model_id: OPENAI_MODEL.to_owned(),
    })
}

/// The next event of `session_id`. Fails on a stream error, on a known event type that did
/// not parse into its variant, or at `deadline`.
pub(crate) async fn next_event(
    events: &mut EventStream,
    session_id: &str,
    deadline: Instant,
    server: &OpencodeServer,
) -> Event {
    loop {
        let next = tokio::time::timeout_at(deadline, events.next()).await;
        let envelope = match next {
            Ok(Some(Ok(envelope))) => envelope,
            Ok(Some(Err(error))) => panic!("event stream error: {error:#}"),
            Ok(None) => panic!("event stream ended"),
            Err(_) => panic!("no event in time; opencode log:\n{}", server.log()),
        };
        let event = envelope.event;
        if let Event::Unknown { kind, properties } = &event {
            assert!(
                !KNOWN_EVENT_TYPES.contains(&kind.as_str()),
                "{kind} did not parse: {properties}"
            );
        }
        if event.session_id() == Some(session_id) {
            return event;
        }
    }
}

/// Reads events of `session_id` until it goes idle, within `TURN_WITHIN`.
pub(crate) async fn until_idle(
    events: &mut EventStream,
    session_id: &str,
    server: &OpencodeServer,
) -> Vec<Event> {
    let deadline = Instant::now() + TURN_WITHIN;
    let mut seen = Vec::new();
    loop {
        let event = next_event(events, session_id, deadline, server).await;
        let idle = matches!(&event, Event::SessionIdle { .. });
        seen.push(event);
        if idle {
            return seen;
        }
    }
}

/// The streamed text deltas, concatenated.
pub(crate) fn streamed_text(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|event| match event {
            Event::MessagePartDelta { field, delta, .. } if field == "text" => Some(delta.as_str()),
            _ => None,
        })
        .collect()
}
