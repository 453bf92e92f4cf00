//! Property tests (`scripts/fuzz` runs them longer) of the mapping from OpenCode's events, which
//! come from inside the sandbox and are untrusted: the recorded 1.18.33 turn, mutated at random
//! (any value anywhere replaced by any JSON, events dropped, repeated and reordered), never
//! panics the mapper, and what it produces always serialises.

use proptest::prelude::*;
use serde_json::Value;

use super::TurnMapper;

const RECORDED: &str = include_str!("../../den-opencode/tests/fixtures/live-events.jsonl");
/// The conversation of the recorded turn.
const AGENT_SESSION: &str = "ses_df2e96209ffewlNYjhnCfRGqM9";

fn recorded() -> Vec<Value> {
    RECORDED
        .lines()
        .map(|line| serde_json::from_str(line).expect("a recorded event"))
        .collect()
}

/// Any JSON value, with the awkward ones likely: huge and negative numbers, long strings, deep
/// nesting, and the session id itself (so mutated events still reach the mapper).
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(Value::from(AGENT_SESSION)),
        ".{0,40}".prop_map(Value::from),
        "[a-z.]{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Replaces the value at the `pick`-th node (pre-order, wrapping) of `value` with `with`.
fn replace_node(value: &mut Value, pick: usize, with: Value) {
    fn walk(value: &mut Value, pick: &mut usize, with: &mut Option<Value>) {
        if with.is_none() {
            return;
        }
        if *pick == 0 {
            *value = with.take().unwrap_or(Value::Null);
            return;
        }
        *pick -= 1;
        match value {
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, pick, with)),
            Value::Object(map) => map.values_mut().for_each(|v| walk(v, pick, with)),
            _ => {}
        }
    }
    let count = count_nodes(value);
    let mut pick = pick % count;
    walk(value, &mut pick, &mut Some(with));
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

proptest! {
    #[test]
    fn mutated_opencode_events_never_panic_the_mapper(
        order in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<usize>(), any_json()), 0..12),
    ) {
        let events = recorded();
        let mut stream: Vec<Value> = order.iter().map(|i| events[i.index(events.len())].clone()).collect();
        if stream.is_empty() {
            stream = events;
        }
        for (which, node, with) in mutations {
            let len = stream.len();
            replace_node(&mut stream[which.index(len)], node, with);
        }
        let mut mapper = TurnMapper::new(AGENT_SESSION);
        for value in stream {
            let Ok(envelope) = serde_json::from_value::<den_opencode::EventEnvelope>(value) else {
                continue;
            };
            for event in mapper.map(envelope.into_event()) {
                prop_assert!(serde_json::to_string(&event).is_ok());
            }
        }
        let _ = mapper.usage();
    }
}
