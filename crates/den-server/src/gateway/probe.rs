//! "Test key": one tiny model request (one output token, or the Responses API's minimum) with
//! a person's key, sent the provider's own way, to tell them whether the provider accepts it.
//! It goes out like the gateway's requests: to den's or the admin's upstream, or to a person's
//! endpoint only at the addresses its check pinned, never following a redirect.

use den_protocol::models::KeyTestResult;
use den_session::ProviderKind;
use serde_json::{Value, json};

/// The longest provider message passed on.
const MAX_MESSAGE: usize = 300;

/// What to test.
pub(crate) struct Probe<'a> {
    pub(crate) kind: ProviderKind,
    /// The provider's name as the person knows it, for messages.
    pub(crate) display_name: &'a str,
    pub(crate) base_url: &'a str,
    pub(crate) model: &'a str,
    pub(crate) key: Option<&'a str>,
}

/// The path and body of the smallest request the provider's API takes for `model`.
fn request_for(kind: ProviderKind, model: &str) -> (&'static str, Value) {
    let say = "Say OK.";
    let messages = || json!([{"role": "user", "content": say}]);
    let path = match kind {
        ProviderKind::Anthropic => "messages",
        ProviderKind::OpenAi => "responses",
        // Zen serves each model family on its own API, as OpenCode calls it.
        ProviderKind::Zen if model.starts_with("claude") => "messages",
        ProviderKind::Zen if model.starts_with("gpt") => "responses",
        ProviderKind::Zen | ProviderKind::OpenAiCompatible => "chat/completions",
    };
    let body = match path {
        "messages" => json!({"model": model, "max_tokens": 1, "messages": messages()}),
        "responses" => json!({"model": model, "input": say, "max_output_tokens": 16}),
        _ => json!({"model": model, "max_tokens": 1, "messages": messages()}),
    };
    (path, body)
}

/// Sends the probe with `http` and reports what the provider said.
pub(crate) async fn run(http: &reqwest::Client, probe: Probe<'_>) -> KeyTestResult {
    let (path, body) = request_for(probe.kind, probe.model);
    let url = format!("{}/{path}", probe.base_url.trim_end_matches('/'));
    let mut request = http
        .post(url)
        .header("anthropic-version", "2023-06-01")
        .timeout(std::time::Duration::from_secs(20))
        .json(&body);
    if let Some(key) = probe.key {
        request = if probe.kind.key_in_x_api_key(path) {
            request.header("x-api-key", key)
        } else {
            request.bearer_auth(key)
        };
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) => {
            return KeyTestResult {
                ok: false,
                status: None,
                message: scrub(
                    &format!(
                        "den could not reach {}: {}",
                        probe.display_name,
                        err.without_url()
                    ),
                    probe.key,
                ),
            };
        }
    };
    let status = response.status();
    if status.is_success() {
        return KeyTestResult {
            ok: true,
            status: Some(status.as_u16()),
            message: format!(
                "the key works: {} answered {}",
                probe.display_name, probe.model
            ),
        };
    }
    // Both envelopes (Anthropic's and OpenAI's) put the reason in `error.message`.
    let text = response.text().await.unwrap_or_default();
    let reason = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|body| body["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("HTTP {status}"));
    KeyTestResult {
        ok: false,
        status: Some(status.as_u16()),
        message: scrub(
            &format!("{} refused it: {reason}", probe.display_name),
            probe.key,
        ),
    }
}

/// Shortens a message and takes out the key, should a provider echo it.
fn scrub(message: &str, key: Option<&str>) -> String {
    let mut text = match key {
        Some(key) if !key.is_empty() => message.replace(key, "…"),
        _ => message.to_owned(),
    };
    if text.chars().count() > MAX_MESSAGE {
        text = text.chars().take(MAX_MESSAGE).collect::<String>() + "…";
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_api_gets_its_own_smallest_request() {
        let (path, body) = request_for(ProviderKind::Anthropic, "claude-sonnet-4-5");
        assert_eq!((path, body["max_tokens"].as_u64()), ("messages", Some(1)));
        let (path, body) = request_for(ProviderKind::OpenAi, "gpt-5.2");
        assert_eq!(
            (path, body["max_output_tokens"].as_u64()),
            ("responses", Some(16))
        );
        assert_eq!(request_for(ProviderKind::Zen, "gpt-5-nano").0, "responses");
        assert_eq!(
            request_for(ProviderKind::Zen, "claude-haiku-4-5").0,
            "messages"
        );
        assert_eq!(
            request_for(ProviderKind::Zen, "big-pickle").0,
            "chat/completions"
        );
        assert_eq!(
            request_for(ProviderKind::OpenAiCompatible, "llama-3").0,
            "chat/completions"
        );
    }

    #[test]
    fn an_echoed_key_is_taken_out_and_long_messages_are_cut() {
        let said = scrub(
            "Incorrect API key provided: sk-secret-123",
            Some("sk-secret-123"),
        );
        assert_eq!(said, "Incorrect API key provided: …");
        assert_eq!(
            scrub(&"x".repeat(400), None).chars().count(),
            MAX_MESSAGE + 1
        );
    }
}
