//! How the terminal commands print: text for people (colour only on a terminal, and never
//! with `NO_COLOR`), or JSON for scripts. The transcript goes to standard output; notices
//! (reconnecting, why a turn failed) go to standard error.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use chrono::Utc;
use den_protocol::changes::SessionDiff;
use den_protocol::events::{
    ProgressStep, Role, SequencedEvent, SessionEvent, StepState, TextKind, ToolState, TurnOutcome,
};
use den_protocol::sessions::Session;

use super::follow::Ending;

/// ANSI styles, or nothing when the output is not a terminal.
#[derive(Debug, Clone, Copy)]
struct Style {
    colour: bool,
}

impl Style {
    fn detect() -> Self {
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            colour: !no_colour && std::io::stdout().is_terminal(),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    fn red(self, text: &str) -> String {
        self.paint("31", text)
    }

    fn green(self, text: &str) -> String {
        self.paint("32", text)
    }
}

pub(super) struct Output {
    json: bool,
    style: Style,
    /// A text part is being streamed: the cursor is not at the start of a line.
    mid_line: bool,
    /// The text printed so far per part, so a part's whole text (sent at its end) adds only
    /// what the deltas missed.
    printed: HashMap<String, String>,
    /// The last state printed per tool call: one line per change.
    tools: HashMap<String, ToolState>,
}

impl Output {
    pub(super) fn new(json: bool) -> Self {
        Self {
            json,
            style: Style::detect(),
            mid_line: false,
            printed: HashMap::new(),
            tools: HashMap::new(),
        }
    }

    /// Ends a streamed line, if one is open.
    pub(super) fn end_line(&mut self) {
        if self.mid_line {
            println!();
            self.mid_line = false;
        }
    }

    fn line(&mut self, text: &str) {
        self.end_line();
        println!("{text}");
    }

    pub(super) fn event(&mut self, event: &SequencedEvent) -> anyhow::Result<()> {
        if self.json {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer(&mut out, event)?;
            writeln!(out)?;
            out.flush()?;
            return Ok(());
        }
        let style = self.style;
        match &event.event {
            SessionEvent::Progress {
                step,
                state,
                detail,
            } => {
                let step = match step {
                    ProgressStep::Sandbox => "sandbox",
                    ProgressStep::Clone => "repository",
                    ProgressStep::Restore => "snapshot",
                    ProgressStep::Agent => "agent",
                    ProgressStep::Ready => "ready",
                };
                let state = match state {
                    StepState::Started => "…".to_owned(),
                    StepState::Done => style.green("done"),
                    StepState::Failed => style.red("failed"),
                };
                let detail = detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                if step == "ready" {
                    self.line(&style.dim("· ready"));
                } else {
                    self.line(&style.dim(&format!("· {step} {state}{detail}")));
                }
            }
            SessionEvent::Status { status, error, .. } => {
                let text = match error {
                    Some(error) => format!("· session {}: {error}", status.as_str()),
                    None => format!("· session {}", status.as_str()),
                };
                self.line(&style.dim(&text));
            }
            SessionEvent::Renamed { title } => self.line(&style.dim(&format!("· title: {title}"))),
            SessionEvent::Message {
                role: Role::User,
                text: Some(text),
                ..
            } => self.line(&style.bold(&format!("> {text}"))),
            SessionEvent::TextDelta { part_id, delta, .. } => {
                self.printed
                    .entry(part_id.clone())
                    .or_default()
                    .push_str(delta);
                print!("{delta}");
                std::io::stdout().flush()?;
                self.mid_line = !delta.ends_with('\n');
            }
            SessionEvent::PartText {
                part_id,
                kind: TextKind::Text,
                text,
                ..
            } => {
                let printed = self.printed.insert(part_id.clone(), text.clone());
                let printed = printed.unwrap_or_default();
                // Deltas lost (or never sent): print what is missing.
                if let Some(rest) = text.strip_prefix(printed.as_str()) {
                    if !rest.is_empty() {
                        print!("{rest}");
                        self.mid_line = !rest.ends_with('\n');
                    }
                } else {
                    self.end_line();
                    print!("{text}");
                    self.mid_line = !text.ends_with('\n');
                }
                self.end_line();
            }
            SessionEvent::Tool(call) => {
                if self.tools.get(&call.call_id) == Some(&call.state) {
                    return Ok(());
                }
                self.tools.insert(call.call_id.clone(), call.state);
                let state = match call.state {
                    ToolState::Pending => style.dim("pending"),
                    ToolState::Running => style.dim("running"),
                    ToolState::Completed => style.green("completed"),
                    ToolState::Failed => style.red("failed"),
                };
                let title = call
                    .title
                    .as_deref()
                    .filter(|t| !t.is_empty())
                    .map(|t| format!(" {t}"))
                    .unwrap_or_default();
                let error = call
                    .error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                self.line(&format!("⚙ {}{title} {state}{error}", call.tool));
            }
            SessionEvent::Queue { items } if !items.is_empty() => {
                self.line(&style.dim(&format!("· {} prompt(s) queued", items.len())));
            }
            SessionEvent::Error { code, message } => {
                self.line(&style.red(&format!("error ({code}): {message}")));
            }
            SessionEvent::TurnFinished {
                outcome, tokens, ..
            } => {
                let outcome = match outcome {
                    TurnOutcome::Completed => style.green("completed"),
                    TurnOutcome::Aborted => style.red("stopped"),
                    TurnOutcome::Failed => style.red("failed"),
                    TurnOutcome::Interrupted => style.red("interrupted"),
                };
                let used = tokens.input + tokens.output + tokens.reasoning;
                self.line(&style.dim(&format!("· turn {outcome} ({used} tokens)")));
            }
            SessionEvent::DiffChanged { summary } => {
                self.line(&style.dim(&format!(
                    "· changes: {} file(s), +{} -{}",
                    summary.files, summary.additions, summary.deletions
                )));
            }
            // The terminal client cannot answer (yet): it says what waits, and where to answer.
            SessionEvent::PermissionAsked(ask) => {
                let what = ask
                    .command
                    .clone()
                    .or_else(|| ask.file.clone())
                    .unwrap_or_else(|| ask.permission.clone());
                self.line(&style.bold(&format!(
                    "? the agent asks to run/change: {what} (answer in the browser)"
                )));
            }
            SessionEvent::QuestionAsked(ask) => {
                for question in &ask.questions {
                    let options: Vec<&str> =
                        question.options.iter().map(|o| o.label.as_str()).collect();
                    self.line(&style.bold(&format!(
                        "? {} [{}] (answer in the browser)",
                        question.question,
                        options.join(" / ")
                    )));
                }
            }
            SessionEvent::AskClosed(closed) => {
                let by = closed
                    .by
                    .as_deref()
                    .map(|by| format!(" by {by}"))
                    .unwrap_or_default();
                self.line(&style.dim(&format!("· answered: {:?}{by}", closed.outcome)));
            }
            // Reasoning, todos, usage, empty queues and OpenCode's unmapped events are for the
            // web client and `--json`.
            _ => {}
        }
        Ok(())
    }

    pub(super) fn reconnecting(&mut self, after: i64, reason: &str) {
        self.end_line();
        eprintln!("den: connection lost ({reason}); resuming after event {after}");
    }

    /// Says how following ended and picks the exit code.
    pub(super) fn ending(&self, ending: &Ending) -> ExitCode {
        match ending {
            Ending::Turn {
                outcome: TurnOutcome::Completed,
                ..
            }
            | Ending::Nothing => ExitCode::SUCCESS,
            Ending::Turn { outcome, error } => {
                let what = match outcome {
                    TurnOutcome::Aborted => "was stopped",
                    TurnOutcome::Failed => "failed",
                    TurnOutcome::Interrupted => "was interrupted",
                    TurnOutcome::Completed => "completed",
                };
                match error {
                    Some(error) => eprintln!("den: the turn {what}: {error}"),
                    None => eprintln!("den: the turn {what}"),
                }
                ExitCode::from(1)
            }
            Ending::SessionError(reason) => {
                eprintln!("den: the session failed: {reason}");
                ExitCode::from(1)
            }
            Ending::Interrupted { stopped } => {
                if *stopped {
                    eprintln!("den: stopped the turn");
                } else {
                    eprintln!(
                        "den: stopped following; the turn goes on (`den attach` to follow it again)"
                    );
                }
                ExitCode::from(130)
            }
        }
    }

    pub(super) fn diff_summary(&self, diff: &SessionDiff) {
        let summary = diff.summary;
        if summary.files == 0 {
            println!("{}", self.style.dim("no changes"));
            return;
        }
        println!(
            "{} file(s) changed, {} {}",
            summary.files,
            self.style.green(&format!("+{}", summary.additions)),
            self.style.red(&format!("-{}", summary.deletions)),
        );
        for file in &diff.files {
            println!(
                "  {:<9} {} (+{} -{})",
                format!("{:?}", file.status).to_lowercase(),
                file.path,
                file.additions,
                file.deletions
            );
        }
    }

    pub(super) fn diff(&self, diff: &SessionDiff, stat: bool) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(diff)?);
            return Ok(());
        }
        if stat {
            self.diff_summary(diff);
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        for file in &diff.files {
            if file.binary {
                writeln!(out, "Binary file {} changed", file.path)?;
            } else {
                out.write_all(file.patch.as_bytes())?;
            }
        }
        if diff.truncated {
            writeln!(out, "(the diff was cut: it is too large)")?;
        }
        Ok(())
    }

    pub(super) fn sessions(&self, sessions: &[Session]) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(sessions)?);
            return Ok(());
        }
        if sessions.is_empty() {
            println!("no sessions (start one with `den run --repo … \"prompt\"`)");
            return Ok(());
        }
        let now = Utc::now();
        for session in sessions {
            let age = age(now - session.last_activity_at);
            println!(
                "{}  {:<8} {:>4}  {}  {}",
                session.id,
                session.status.as_str(),
                age,
                session.title,
                self.style.dim(&session.repository)
            );
        }
        Ok(())
    }
}

/// `42s`, `5m`, `3h`, `12d`.
fn age(elapsed: chrono::TimeDelta) -> String {
    let seconds = elapsed.num_seconds().max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86400),
    }
}
