//! Terminals in a session's sandbox: a shell OpenCode starts for den (its PTY API), so it runs
//! where OpenCode runs, as the sandbox's user, under the sandbox's limits and network rules.
//!
//! The actor hands out a [`TerminalGate`] ticket with the agent's client; the gate closes when
//! the sandbox is about to go (a pause begins, the sandbox stops or fails, the session is
//! deleted, den stops), and every [`Terminal`] watching it ends then. While a terminal is open
//! the idle pause waits: a person typing in it is using the session.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::agent_sandbox::OPENCODE_CREDENTIAL_ENV;
use den_opencode::{CreatePty, OpencodeClient, PtyConnection, PtySize};
use tokio::sync::watch;

use crate::error::{Result, SessionError};

/// How long removing a terminal may take when it closes; the sandbox may be frozen by a
/// snapshot or already gone, and nobody waits for the answer.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a terminal ended from the session's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TerminalClosing {
    /// The sandbox paused, stopped, failed, or the session was deleted.
    SandboxStopped,
    /// den is stopping (the client may reconnect to the next den).
    DenStopping,
}

/// The terminals of one running sandbox: each holds a receiver; a reason sent, or the sender
/// dropped (the sandbox gone with it), ends them all.
pub(crate) struct TerminalGate {
    open: watch::Sender<Option<TerminalClosing>>,
}

impl TerminalGate {
    pub(crate) fn new() -> Self {
        Self {
            open: watch::channel(None).0,
        }
    }

    /// A ticket for one more terminal.
    pub(crate) fn ticket(&self) -> Ticket {
        self.open.subscribe()
    }

    /// Ends every terminal open now for `reason` (later tickets are unaffected). Called before
    /// the sandbox is stopped, so a terminal hears why rather than a broken connection.
    pub(crate) fn close_all(&mut self, reason: TerminalClosing) {
        self.open.send_replace(Some(reason));
        self.open = watch::channel(None).0;
    }

    /// How many terminals are open.
    pub(crate) fn open_count(&self) -> usize {
        self.open.receiver_count()
    }
}

/// What a terminal needs from the actor: the agent's client and its ticket.
pub(crate) struct TerminalGrant {
    pub(crate) client: OpencodeClient,
    pub(crate) ticket: Ticket,
}

/// A terminal's view of its gate.
pub(crate) type Ticket = watch::Receiver<Option<TerminalClosing>>;

/// A terminal's size in character cells, as a client asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TerminalSize {
    pub cols: u16,
    pub rows: u16,
}

/// One shell in the session's sandbox. Output from [`Self::next_output`], keystrokes through
/// [`Self::send_input`]; [`Self::sandbox_closing`] resolves when the sandbox is going away.
/// [`Self::close`] ends the shell.
pub struct Terminal {
    client: OpencodeClient,
    pty_id: String,
    connection: PtyConnection,
    ticket: Ticket,
    /// `close` ran (otherwise dropping it removes the terminal in the background).
    closed: bool,
}

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminal")
            .field("pty_id", &self.pty_id)
            .finish_non_exhaustive()
    }
}

impl Terminal {
    /// Starts the shell and connects to it. OpenCode's own credentials are blanked in the
    /// shell's environment: everything else it can reach, the agent's tools already can.
    pub(crate) async fn open(grant: TerminalGrant, size: Option<TerminalSize>) -> Result<Self> {
        let TerminalGrant { client, ticket } = grant;
        let env: BTreeMap<String, String> = OPENCODE_CREDENTIAL_ENV
            .iter()
            .map(|name| ((*name).to_owned(), String::new()))
            .collect();
        let request = CreatePty {
            title: Some("den terminal".to_owned()),
            env,
        };
        let pty = client.create_pty(&request).await.map_err(unreachable)?;
        let terminal = async {
            if let Some(size) = size {
                client
                    .resize_pty(&pty.id, to_pty_size(size))
                    .await
                    .map_err(unreachable)?;
            }
            client.connect_pty(&pty.id).await.map_err(unreachable)
        }
        .await;
        match terminal {
            Ok(connection) => Ok(Self {
                client,
                pty_id: pty.id,
                connection,
                ticket,
                closed: false,
            }),
            Err(err) => {
                remove_later(client, pty.id);
                Err(err)
            }
        }
    }

    /// The shell's next output; `None` once it exited or the connection to it ended.
    pub async fn next_output(&mut self) -> Option<Result<String>> {
        self.connection
            .next_output()
            .await
            .map(|output| output.map_err(unreachable))
    }

    /// Types `keys` into the shell.
    pub async fn send_input(&mut self, keys: &str) -> Result<()> {
        self.connection.send_input(keys).await.map_err(unreachable)
    }

    /// Sets the terminal's size; the shell's programs see it at once.
    pub async fn resize(&self, size: TerminalSize) -> Result<()> {
        self.client
            .resize_pty(&self.pty_id, to_pty_size(size))
            .await
            .map_err(unreachable)
    }

    /// Resolves when the sandbox is going away (a pause, a stop, a delete, den stopping),
    /// with why. It borrows nothing, so it can be awaited beside the terminal's other calls.
    pub fn sandbox_closing(&self) -> impl Future<Output = TerminalClosing> + Send + 'static {
        let mut ticket = self.ticket.clone();
        async move {
            let closed = ticket
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|reason| *reason);
            closed.unwrap_or(TerminalClosing::SandboxStopped)
        }
    }

    fn gate_closed(&self) -> bool {
        self.ticket.has_changed().is_err() || self.ticket.borrow().is_some()
    }

    /// Ends the shell: the connection closes at once, and the terminal is removed in the
    /// background (bounded; a sandbox on its way out may not answer).
    pub async fn close(mut self) {
        self.closed = true;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.connection.close()).await;
        if !self.gate_closed() {
            remove_later(self.client.clone(), self.pty_id.clone());
        }
    }
}

impl Drop for Terminal {
    /// A terminal dropped without `close` (its client never finished connecting) is removed
    /// all the same, unless its sandbox is already gone.
    fn drop(&mut self) {
        if !self.closed
            && !self.gate_closed()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (client, pty_id) = (self.client.clone(), self.pty_id.clone());
            runtime.spawn(remove(client, pty_id));
        }
    }
}

fn to_pty_size(size: TerminalSize) -> PtySize {
    PtySize {
        rows: size.rows,
        cols: size.cols,
    }
}

fn unreachable(err: den_opencode::OpencodeError) -> SessionError {
    SessionError::AgentUnreachable(format!("the terminal failed: {err}"))
}

fn remove_later(client: OpencodeClient, pty_id: String) {
    tokio::spawn(remove(client, pty_id));
}

async fn remove(client: OpencodeClient, pty_id: String) {
    match tokio::time::timeout(REMOVE_TIMEOUT, client.remove_pty(&pty_id)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) if err.is_not_found() => {}
        Ok(Err(err)) => tracing::debug!(error = %err, "cannot remove a closed terminal"),
        Err(_) => tracing::debug!("removing a closed terminal timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_the_gate_ends_every_open_ticket_but_not_later_ones() {
        let mut gate = TerminalGate::new();
        let first = gate.ticket();
        let second = gate.ticket();
        assert_eq!(gate.open_count(), 2);
        gate.close_all(TerminalClosing::DenStopping);
        for ticket in [&first, &second] {
            assert_eq!(*ticket.borrow(), Some(TerminalClosing::DenStopping));
            assert!(ticket.has_changed().is_err());
        }
        assert_eq!(gate.open_count(), 0);
        let later = gate.ticket();
        assert_eq!(*later.borrow(), None);
        assert_eq!(gate.open_count(), 1);
        drop(later);
        assert_eq!(gate.open_count(), 0);
    }
}
