//! The scripted model's wire formats, queue, recording, errors and holds, checked with a
//! plain HTTP client.

use std::time::Duration;

use den_test_support::{Api, Gate, RequestKind, SIDE_REPLY, ScriptedModel, Turn};
use futures::StreamExt;
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(10);

fn agent_body() -> Value {
    json!({"model": "m", "stream": true, "tools": [{"type": "function"}],
        "messages": [{"role": "user", "content": "hello there"}]})
}

async fn post(
    model: &ScriptedModel,
    path: &str,
    body: &Value,
) -> anyhow::Result<reqwest::Response> {
    let url = format!("{}{path}", model.base_url());
    Ok(reqwest::Client::new().post(url).json(body).send().await?)
}

/// The JSON payloads of every `data:` line, with `[DONE]` kept as a string.
fn data_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_owned())))
        .collect()
}

#[tokio::test]
async fn openai_turns_stream_text_and_tool_call_deltas() -> anyhow::Result<()> {
    let model = ScriptedModel::start().await?;
    model.push(Turn::new().say("Hello world").write("a.txt", "A"));
    let response = post(&model, "/chat/completions", &agent_body()).await?;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let chunks = data_lines(&response.text().await?);

    assert_eq!(chunks.last(), Some(&json!("[DONE]")));
    let text: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello world");
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(calls[0]["function"]["name"], "write");
    assert!(
        calls[0]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("call_"))
    );
    let arguments: String = calls
        .iter()
        .filter_map(|call| call["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments)?,
        json!({"filePath": "a.txt", "content": "A"})
    );
    let finish: Vec<&Value> = chunks
        .iter()
        .map(|chunk| &chunk["choices"][0]["finish_reason"])
        .filter(|reason| !reason.is_null())
        .collect();
    assert_eq!(finish, [&json!("tool_calls")]);

    let recorded = model.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0].api, recorded[0].kind),
        (Api::OpenAi, RequestKind::Agent)
    );
    assert!(recorded[0].transcript().contains("hello there"));
    assert_eq!(model.remaining_turns(), 0);
    Ok(())
}

#[tokio::test]
async fn anthropic_turns_stream_content_blocks() -> anyhow::Result<()> {
    let model = ScriptedModel::start().await?;
    model.push(Turn::new().say("Hi").bash("ls", "list files"));
    let text = post(&model, "/messages", &agent_body())
        .await?
        .text()
        .await?;
    let names: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("event: "))
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let events = data_lines(&text);
    assert_eq!(events[4]["content_block"]["type"], "tool_use");
    assert_eq!(events[4]["content_block"]["name"], "bash");
    let input: String = events[5..7]
        .iter()
        .filter_map(|event| event["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&input)?["command"], "ls");
    assert_eq!(events[8]["delta"]["stop_reason"], "tool_use");
    assert_eq!(model.requests()[0].api, Api::Anthropic);
    Ok(())
}

#[tokio::test]
async fn side_requests_get_a_fixed_reply_without_using_a_turn() -> anyhow::Result<()> {
    let model = ScriptedModel::start().await?;
    model.push(Turn::text("scripted"));
    let title = json!({"model": "m", "stream": true, "messages": [
        {"role": "system", "content": "You are a title generator. You output ONLY a thread title."},
        {"role": "user", "content": "Generate a title for this conversation:\n"}]});
    let text = post(&model, "/chat/completions", &title)
        .await?
        .text()
        .await?;
    let reply: String = data_lines(&text)
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(reply, SIDE_REPLY);
    assert_eq!(model.remaining_turns(), 1);
    assert_eq!(model.requests()[0].kind, RequestKind::Title);
    assert!(model.agent_requests().is_empty());
    Ok(())
}

#[tokio::test]
async fn error_turns_answer_in_each_providers_format() -> anyhow::Result<()> {
    let model = ScriptedModel::start().await?;
    model.push(Turn::error(429, "slow down"));
    model.push(Turn::error(401, "bad key"));
    let response = post(&model, "/chat/completions", &agent_body()).await?;
    assert_eq!(response.status(), 429);
    let body: Value = response.json().await?;
    assert_eq!(body["error"]["message"], "slow down");
    let response = post(&model, "/messages", &agent_body()).await?;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await?;
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "authentication_error", "message": "bad key"}})
    );
    Ok(())
}

#[tokio::test]
async fn a_held_stream_waits_for_release() -> anyhow::Result<()> {
    let model = ScriptedModel::start().await?;
    let gate = Gate::new();
    model.push(Turn::new().say("before").hold(&gate).say("after"));
    let response = post(&model, "/chat/completions", &agent_body()).await?;
    let mut body = response.bytes_stream();
    let mut received = String::new();
    while !received.contains("before") {
        let chunk = tokio::time::timeout(WITHIN, body.next())
            .await?
            .expect("more body")?;
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    tokio::time::timeout(WITHIN, gate.reached()).await?;
    // Nothing more may arrive while held; a short wait proves only the negative here.
    let early = tokio::time::timeout(Duration::from_millis(200), body.next()).await;
    assert!(early.is_err(), "the stream went on before release");
    gate.release();
    while let Some(chunk) = tokio::time::timeout(WITHIN, body.next()).await? {
        received.push_str(&String::from_utf8_lossy(&chunk?));
    }
    assert!(received.contains("after") && received.ends_with("data: [DONE]\n\n"));
    Ok(())
}

#[tokio::test]
async fn long_outputs_and_an_empty_queue_still_stream() -> anyhow::Result<()> {
    let model = ScriptedModel::start().await?;
    model.push(Turn::new().say_long(300_000));
    let text = post(&model, "/chat/completions", &agent_body())
        .await?
        .text()
        .await?;
    let streamed: usize = data_lines(&text)
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .map(str::len)
        .sum();
    assert!(streamed >= 300_000, "{streamed}");
    let text = post(&model, "/chat/completions", &agent_body())
        .await?
        .text()
        .await?;
    let reply: String = data_lines(&text)
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(reply.contains("no turn left"), "{reply}");
    model.wait_for_requests(2).await;
    Ok(())
}
