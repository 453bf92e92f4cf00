//! What den's git gateway (the route in den-server) reads of a push and how it refuses one,
//! with no process started and nothing read but the bytes given: the ref update commands at the
//! start of a `git-receive-pack` request (pkt-lines, see gitprotocol-pack(5)), and a refusal
//! written as git's own report-status, so the agent's `git push` prints a readable
//! `! [remote rejected] … (reason)` instead of an opaque HTTP error.

/// One ref update a client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub old: String,
    pub new: String,
    pub name: String,
}

impl Command {
    pub fn is_delete(&self) -> bool {
        self.new.bytes().all(|b| b == b'0')
    }
}

/// The commands and the client's capabilities (from the first command, after a NUL).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PushRequest {
    pub commands: Vec<Command>,
    pub capabilities: Vec<String>,
}

impl PushRequest {
    fn has(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

/// Whether `head`, the start of a push's body, holds its whole command list (up to the flush
/// packet), may once more arrives, or cannot be one.
#[derive(Debug, PartialEq, Eq)]
pub enum CommandList {
    Complete,
    Incomplete,
    Invalid,
}

pub fn command_list(head: &[u8]) -> CommandList {
    let mut rest = head;
    loop {
        let Some(prefix) = rest.get(..4) else {
            return CommandList::Incomplete;
        };
        let Some(length) = std::str::from_utf8(prefix)
            .ok()
            .and_then(|p| usize::from_str_radix(p, 16).ok())
        else {
            return CommandList::Invalid;
        };
        if length == 0 {
            return CommandList::Complete;
        }
        if length < 4 {
            return CommandList::Invalid;
        }
        if length > rest.len() {
            return CommandList::Incomplete;
        }
        rest = &rest[length..];
    }
}

/// Parses the command list up to its flush packet; `None` if the request is not one.
pub fn parse(body: &[u8]) -> Option<PushRequest> {
    let mut request = PushRequest::default();
    let mut rest = body;
    loop {
        let length = usize::from_str_radix(std::str::from_utf8(rest.get(..4)?).ok()?, 16).ok()?;
        if length == 0 {
            break;
        }
        if length < 4 || length > rest.len() {
            return None;
        }
        let line = &rest[4..length];
        rest = &rest[length..];
        let (command, capabilities) = match line.iter().position(|b| *b == 0) {
            Some(at) => (&line[..at], Some(&line[at + 1..])),
            None => (line, None),
        };
        if let Some(capabilities) = capabilities {
            request.capabilities = String::from_utf8_lossy(capabilities)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        }
        let text = std::str::from_utf8(command).ok()?;
        let mut fields = text.trim_end_matches('\n').splitn(3, ' ');
        let (old, new, name) = (fields.next()?, fields.next()?, fields.next()?);
        let is_id = |id: &str| id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_id(old) || !is_id(new) || name.is_empty() {
            return None;
        }
        request.commands.push(Command {
            old: old.to_owned(),
            new: new.to_owned(),
            name: name.to_owned(),
        });
    }
    (!request.commands.is_empty()).then_some(request)
}

/// Why den refuses `command` for a session whose branch is `work_branch`; `None` allows it.
/// Only the session's own branch may be updated (force-pushes to it included: it is the
/// agent's), and it may not be deleted.
pub fn refusal(command: &Command, work_branch: &str) -> Option<String> {
    let allowed = format!("refs/heads/{work_branch}");
    if command.name != allowed {
        return Some(format!("den allows pushes only to {allowed}"));
    }
    if command.is_delete() {
        return Some(format!("den does not delete {allowed}"));
    }
    None
}

fn pkt(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The whole push refused: a report-status with `ng` for every command (the push is all or
/// nothing, so allowed ones are refused too), in side-band channel 1 when the client asked for
/// side-band, with the first reason also shown as a `remote:` line.
pub fn refusal_report(request: &PushRequest, reasons: &[Option<String>]) -> Vec<u8> {
    let first = reasons.iter().flatten().next().cloned().unwrap_or_default();
    let mut report = pkt(b"unpack ok\n");
    for (command, reason) in request.commands.iter().zip(reasons) {
        let reason = reason
            .clone()
            .unwrap_or_else(|| "not pushed: another ref in this push was refused".to_owned());
        report.extend(pkt(format!("ng {} {reason}\n", command.name).as_bytes()));
    }
    report.extend_from_slice(b"0000");
    if !(request.has("side-band-64k") || request.has("side-band")) {
        return report;
    }
    // Side-band packets carry at most 1000 bytes (65520 with side-band-64k) including the band.
    let max = if request.has("side-band-64k") {
        65515
    } else {
        995
    };
    let mut out = Vec::new();
    out.extend(pkt(format!("\x02{first}\n").as_bytes()));
    for chunk in report.chunks(max) {
        let mut payload = vec![1u8];
        payload.extend_from_slice(chunk);
        out.extend(pkt(&payload));
    }
    out.extend_from_slice(b"0000");
    out
}

/// An empty old id (a branch the remote does not have yet).
#[cfg(test)]
fn zero() -> String {
    "0".repeat(40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_list_is_complete_only_at_its_flush_packet() {
        let line = format!(
            "{} {} refs/heads/den/x\0report-status\n",
            "0".repeat(40),
            "1".repeat(40)
        );
        let packet = format!("{:04x}{line}", line.len() + 4);
        assert_eq!(command_list(b""), CommandList::Incomplete);
        assert_eq!(
            command_list(&packet.as_bytes()[..10]),
            CommandList::Incomplete
        );
        assert_eq!(command_list(packet.as_bytes()), CommandList::Incomplete);
        let whole = format!("{packet}0000PACK...");
        assert_eq!(command_list(whole.as_bytes()), CommandList::Complete);
        assert_eq!(command_list(b"zzzz"), CommandList::Invalid);
        assert_eq!(command_list(b"0002"), CommandList::Invalid);
    }

    fn body(lines: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            out.extend(pkt(line.as_bytes()));
        }
        out.extend_from_slice(b"0000PACK....");
        out
    }

    const A: &str = "1111111111111111111111111111111111111111";

    #[test]
    fn commands_and_capabilities_are_read_up_to_the_flush() {
        let request = parse(&body(&[
            &format!(
                "{} {A} refs/heads/den/abc\0report-status side-band-64k agent=git/2",
                zero()
            ),
            &format!("{A} {} refs/heads/main\n", zero()),
        ]))
        .unwrap();
        assert_eq!(request.commands.len(), 2);
        assert_eq!(request.commands[0].name, "refs/heads/den/abc");
        assert!(request.commands[1].is_delete());
        assert!(request.has("side-band-64k") && request.has("report-status"));
        assert_eq!(parse(b"0000"), None);
        assert_eq!(parse(b"zzzz"), None);
        assert_eq!(parse(&body(&["not a command"])), None);
    }

    #[test]
    fn only_the_session_branch_may_change_and_it_may_not_be_deleted() {
        let update = |name: &str, new: &str| Command {
            old: A.to_owned(),
            new: new.to_owned(),
            name: name.to_owned(),
        };
        assert_eq!(refusal(&update("refs/heads/den/abc", A), "den/abc"), None);
        assert!(refusal(&update("refs/heads/main", A), "den/abc").is_some());
        assert!(refusal(&update("refs/heads/den/abcd", A), "den/abc").is_some());
        assert!(refusal(&update("refs/tags/v1", A), "den/abc").is_some());
        assert!(refusal(&update("refs/heads/den/abc", &zero()), "den/abc").is_some());
    }

    #[test]
    fn a_refusal_is_a_report_status_in_side_band_when_asked() {
        let request = parse(&body(&[&format!(
            "{} {A} refs/heads/main\0report-status side-band-64k",
            zero()
        )]))
        .unwrap();
        let report = refusal_report(&request, &[Some("den allows pushes only to x".into())]);
        let text = String::from_utf8_lossy(&report);
        assert!(text.contains("\x02den allows pushes only to x\n"), "{text}");
        assert!(text.contains("\x01000eunpack ok\n"), "{text}");
        assert!(text.contains("ng refs/heads/main den allows pushes only to x\n"));
        assert!(text.ends_with("00000000"), "{text}");
        let plain = PushRequest {
            capabilities: vec!["report-status".into()],
            ..request
        };
        let report = refusal_report(&plain, &[Some("no".into())]);
        assert_eq!(
            String::from_utf8_lossy(&report),
            "000eunpack ok\n001ang refs/heads/main no\n0000"
        );
    }
}
