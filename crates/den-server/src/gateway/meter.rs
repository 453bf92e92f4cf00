//! Metering: the token counts a provider reports in its own stream, read as the stream passes
//! through the gateway. Each format reports differently; all are normalised to OpenCode's
//! split (input without cached tokens, output without reasoning tokens). A field reported twice
//! keeps its last value (Anthropic repeats counts in `message_delta`): never added up.

use den_session::catalog::Price;
use serde_json::Value;

/// Tokens of one model request.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) input: u64,
    pub(crate) output: u64,
    pub(crate) reasoning: u64,
    pub(crate) cache_read: u64,
    pub(crate) cache_write: u64,
}

impl Usage {
    /// US dollars at `price` (per million tokens); reasoning is billed as output.
    pub(crate) fn cost(&self, price: Option<Price>) -> f64 {
        let Some(price) = price else { return 0.0 };
        let tokens = |n: u64| n as f64;
        (tokens(self.input) * price.input
            + tokens(self.output + self.reasoning) * price.output
            + tokens(self.cache_read) * price.cache_read.unwrap_or(price.input)
            + tokens(self.cache_write) * price.cache_write.unwrap_or(price.input))
            / 1e6
    }
}

/// Reads server-sent events as they pass and keeps the usage they report.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    pending: Vec<u8>,
    usage: Option<Usage>,
}

/// The longest line kept while waiting for its end (usage lines are short; a huge line is
/// streamed text, never usage).
const MAX_LINE: usize = 64 * 1024;

impl Meter {
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.line(&line);
        }
        if self.pending.len() > MAX_LINE {
            self.pending.clear();
        }
    }

    /// The usage seen, once any was reported.
    pub(crate) fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn line(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let Ok(event) = serde_json::from_slice::<Value>(data.trim_ascii()) else {
            return;
        };
        match event["type"].as_str() {
            Some("message_start") => self.anthropic(&event["message"]["usage"]),
            Some("message_delta") => self.anthropic(&event["usage"]),
            Some("response.completed" | "response.incomplete" | "response.failed") => {
                self.openai(&event["response"]["usage"], "input_tokens", "output_tokens")
            }
            _ if event["usage"].is_object() => {
                self.openai(&event["usage"], "prompt_tokens", "completion_tokens")
            }
            _ => {}
        }
    }

    fn anthropic(&mut self, usage: &Value) {
        if !usage.is_object() {
            return;
        }
        let seen = self.usage.get_or_insert_default();
        let set = |field: &str, slot: &mut u64| {
            if let Some(n) = usage[field].as_u64() {
                *slot = n;
            }
        };
        set("input_tokens", &mut seen.input);
        set("output_tokens", &mut seen.output);
        set("cache_read_input_tokens", &mut seen.cache_read);
        set("cache_creation_input_tokens", &mut seen.cache_write);
    }

    /// Responses (`input_tokens`) and chat completions (`prompt_tokens`) count cached tokens
    /// inside input and reasoning inside output.
    fn openai(&mut self, usage: &Value, input: &str, output: &str) {
        if !usage.is_object() {
            return;
        }
        let details = |name: &str, field: &str| {
            usage[format!("{name}_details")][field]
                .as_u64()
                .unwrap_or(0)
        };
        let input_name = input.trim_end_matches("_tokens");
        let output_name = output.trim_end_matches("_tokens");
        let cached = details(&format!("{input_name}_tokens"), "cached_tokens");
        let reasoning = details(&format!("{output_name}_tokens"), "reasoning_tokens");
        let total_in = usage[input].as_u64().unwrap_or(0);
        let total_out = usage[output].as_u64().unwrap_or(0);
        self.usage = Some(Usage {
            input: total_in.saturating_sub(cached),
            output: total_out.saturating_sub(reasoning),
            reasoning,
            cache_read: cached,
            cache_write: 0,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metered(stream: &str) -> Option<Usage> {
        let mut meter = Meter::default();
        // Cut anywhere: lines arrive split across chunks.
        for chunk in stream.as_bytes().chunks(7) {
            meter.feed(chunk);
        }
        meter.usage()
    }

    #[test]
    fn anthropic_usage_takes_the_last_value_of_each_field() {
        let stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1200,\"cache_creation_input_tokens\":300,\"cache_read_input_tokens\":500,\"output_tokens\":1}}}\n\n\
                      event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":42}}\n\n";
        assert_eq!(
            metered(stream),
            Some(Usage {
                input: 1200,
                output: 42,
                reasoning: 0,
                cache_read: 500,
                cache_write: 300
            })
        );
    }

    #[test]
    fn responses_and_chat_usage_split_cached_and_reasoning_tokens() {
        let responses = "data: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":1000,\"input_tokens_details\":{\"cached_tokens\":400},\"output_tokens\":50,\"output_tokens_details\":{\"reasoning_tokens\":20}}}}\n\n";
        assert_eq!(
            metered(responses),
            Some(Usage {
                input: 600,
                output: 30,
                reasoning: 20,
                cache_read: 400,
                cache_write: 0
            })
        );
        let chat = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":900,\"completion_tokens\":30,\"prompt_tokens_details\":{\"cached_tokens\":100}}}\n\ndata: [DONE]\n\n";
        assert_eq!(
            metered(chat),
            Some(Usage {
                input: 800,
                output: 30,
                reasoning: 0,
                cache_read: 100,
                cache_write: 0
            })
        );
        assert_eq!(metered("data: {\"choices\":[]}\n\n"), None);
    }

    #[test]
    fn cost_is_priced_per_million_tokens() {
        let usage = Usage {
            input: 1_000_000,
            output: 100_000,
            reasoning: 0,
            cache_read: 0,
            cache_write: 0,
        };
        let price = Price {
            input: 3.0,
            output: 15.0,
            cache_read: Some(0.3),
            cache_write: Some(3.75),
        };
        assert!((usage.cost(Some(price)) - 4.5).abs() < 1e-9);
        assert_eq!(usage.cost(None), 0.0);
    }
}
