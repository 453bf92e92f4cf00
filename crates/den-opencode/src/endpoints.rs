//! The one list of OpenCode endpoints den calls. The client builds every URL from these
//! entries, and the contract test checks each against the pinned OpenAPI document, so the
//! two cannot drift apart.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Put,
    Delete,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Endpoint {
    /// The OpenAPI `operationId`; also used to name the call in errors.
    pub(crate) operation: &'static str,
    pub(crate) method: Method,
    /// The OpenAPI path template; `{name}` segments are filled by [`Endpoint::path_with`].
    pub(crate) path: &'static str,
}

impl Endpoint {
    /// Fills the template's `{...}` segments in order. Ids come from OpenCode itself, but they
    /// are still percent-encoded so a hostile id cannot change the path.
    pub(crate) fn path_with(&self, params: &[&str]) -> String {
        let mut out = String::with_capacity(self.path.len() + 32);
        let mut params = params.iter();
        let mut rest = self.path;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .map_or(rest.len(), |i| start + i + 1);
            if let Some(value) = params.next() {
                out.extend(value.bytes().map(encode_path_byte));
            }
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }
}

fn encode_path_byte(byte: u8) -> String {
    if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
        char::from(byte).to_string()
    } else {
        format!("%{byte:02X}")
    }
}

const fn get(operation: &'static str, path: &'static str) -> Endpoint {
    Endpoint {
        operation,
        method: Method::Get,
        path,
    }
}

const fn post(operation: &'static str, path: &'static str) -> Endpoint {
    Endpoint {
        operation,
        method: Method::Post,
        path,
    }
}

const fn put(operation: &'static str, path: &'static str) -> Endpoint {
    Endpoint {
        operation,
        method: Method::Put,
        path,
    }
}

const fn delete(operation: &'static str, path: &'static str) -> Endpoint {
    Endpoint {
        operation,
        method: Method::Delete,
        path,
    }
}

pub(crate) const HEALTH: Endpoint = get("global.health", "/global/health");
pub(crate) const EVENTS: Endpoint = get("event.subscribe", "/event");
pub(crate) const SESSION_CREATE: Endpoint = post("session.create", "/session");
pub(crate) const SESSION_LIST: Endpoint = get("session.list", "/session");
pub(crate) const SESSION_STATUS: Endpoint = get("session.status", "/session/status");
pub(crate) const SESSION_GET: Endpoint = get("session.get", "/session/{sessionID}");
pub(crate) const SESSION_PROMPT_ASYNC: Endpoint =
    post("session.prompt_async", "/session/{sessionID}/prompt_async");
pub(crate) const SESSION_ABORT: Endpoint = post("session.abort", "/session/{sessionID}/abort");
pub(crate) const SESSION_MESSAGES: Endpoint =
    get("session.messages", "/session/{sessionID}/message");
pub(crate) const SESSION_DIFF: Endpoint = get("session.diff", "/session/{sessionID}/diff");
pub(crate) const PERMISSION_REPLY: Endpoint =
    post("permission.reply", "/permission/{requestID}/reply");
pub(crate) const QUESTION_REPLY: Endpoint = post("question.reply", "/question/{requestID}/reply");
pub(crate) const QUESTION_REJECT: Endpoint =
    post("question.reject", "/question/{requestID}/reject");
pub(crate) const PTY_CREATE: Endpoint = post("pty.create", "/pty");
pub(crate) const PTY_UPDATE: Endpoint = put("pty.update", "/pty/{ptyID}");
pub(crate) const PTY_REMOVE: Endpoint = delete("pty.remove", "/pty/{ptyID}");
/// A WebSocket: terminal output out, keystrokes in (`pty.rs`).
pub(crate) const PTY_CONNECT: Endpoint = get("pty.connect", "/pty/{ptyID}/connect");

/// Every endpoint the client uses, by name; the contract test walks this list and checks
/// that `client.rs` names no endpoint missing from it.
#[cfg(test)]
pub(crate) const ALL: &[(&str, Endpoint)] = &[
    ("HEALTH", HEALTH),
    ("EVENTS", EVENTS),
    ("SESSION_CREATE", SESSION_CREATE),
    ("SESSION_LIST", SESSION_LIST),
    ("SESSION_STATUS", SESSION_STATUS),
    ("SESSION_GET", SESSION_GET),
    ("SESSION_PROMPT_ASYNC", SESSION_PROMPT_ASYNC),
    ("SESSION_ABORT", SESSION_ABORT),
    ("SESSION_MESSAGES", SESSION_MESSAGES),
    ("SESSION_DIFF", SESSION_DIFF),
    ("PERMISSION_REPLY", PERMISSION_REPLY),
    ("QUESTION_REPLY", QUESTION_REPLY),
    ("QUESTION_REJECT", QUESTION_REJECT),
    ("PTY_CREATE", PTY_CREATE),
    ("PTY_UPDATE", PTY_UPDATE),
    ("PTY_REMOVE", PTY_REMOVE),
    ("PTY_CONNECT", PTY_CONNECT),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_with_fills_and_encodes_segments() {
        assert_eq!(
            SESSION_PROMPT_ASYNC.path_with(&["ses_1"]),
            "/session/ses_1/prompt_async"
        );
        assert_eq!(SESSION_GET.path_with(&["a/b?c"]), "/session/a%2Fb%3Fc");
        assert_eq!(HEALTH.path_with(&[]), "/global/health");
    }
}
