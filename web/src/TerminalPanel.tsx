import { useEffect, useRef, useState } from "react";
import type { TerminalClientMessage, TerminalServerMessage } from "./types";

type State = "loading" | "connecting" | "open" | "closed";

/** Why den closed the socket (its close codes), in words. */
function closedReason(code: number, reason: string): string {
  if (code === 1000) return "The shell exited.";
  if (code === 1001) return "The session's sandbox stopped.";
  if (code === 1012) return "den is restarting.";
  return reason ? `The terminal closed: ${reason}.` : "The terminal closed.";
}

/**
 * A shell in the session's sandbox (`/api/sessions/{id}/terminal`) shown with xterm.js. The
 * emulator is imported only when a terminal opens, so the main bundle does not carry it.
 */
export function TerminalPanel({ id, onClose }: { id: string; onClose: () => void }) {
  const host = useRef<HTMLDivElement>(null);
  const [state, setState] = useState<State>("loading");
  const [message, setMessage] = useState<string | null>(null);
  // Bumped by "Reconnect": a fresh shell.
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    let disposed = false;
    let cleanup = () => {};
    setState("loading");
    setMessage(null);
    void (async () => {
      const [{ Terminal }, { FitAddon }] = await Promise.all([import("@xterm/xterm"), import("@xterm/addon-fit"), import("@xterm/xterm/css/xterm.css")]);
      if (disposed || !host.current) return;
      const term = new Terminal({ cursorBlink: true, fontSize: 13, convertEol: false, scrollback: 5000 });
      const fit = new FitAddon();
      term.loadAddon(fit);
      term.open(host.current);
      fit.fit();
      setState("connecting");
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const url = `${scheme}://${location.host}/api/sessions/${encodeURIComponent(id)}/terminal?cols=${term.cols}&rows=${term.rows}`;
      const ws = new WebSocket(url);
      const send = (m: TerminalClientMessage) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify(m));
      ws.onopen = () => {
        setState("open");
        term.focus();
      };
      ws.onmessage = (e) => {
        const m = JSON.parse(e.data as string) as TerminalServerMessage;
        if (m.type === "output") term.write(m.data);
        else setMessage(m.message);
      };
      ws.onclose = (e) => {
        if (disposed) return;
        setState("closed");
        // A refused handshake (the sandbox not running) closes with 1006 before opening.
        setMessage(e.code === 1006 ? "Could not open a terminal: is the session's sandbox up? Resume it first." : closedReason(e.code, e.reason));
      };
      const typed = term.onData((data) => send({ type: "input", data }));
      const resized = term.onResize(({ cols, rows }) => send({ type: "resize", cols, rows }));
      const observer = new ResizeObserver(() => fit.fit());
      observer.observe(host.current);
      cleanup = () => {
        observer.disconnect();
        typed.dispose();
        resized.dispose();
        ws.close();
        term.dispose();
      };
    })().catch((e: unknown) => {
      if (!disposed) {
        setState("closed");
        setMessage(`The terminal could not load: ${(e as Error).message}`);
      }
    });
    return () => {
      disposed = true;
      cleanup();
    };
  }, [id, generation]);

  return (
    <section className="terminal-panel card" aria-label="Terminal">
      <div className="terminal-head">
        <h2>Terminal</h2>
        <span className="muted small" role="status">
          {state === "loading" ? "Loading…" : state === "connecting" ? "Connecting…" : state === "open" ? "A shell in the session's sandbox" : "Closed"}
        </span>
        {state === "closed" && (
          <button className="small" onClick={() => setGeneration((g) => g + 1)}>
            Reconnect
          </button>
        )}
        <button className="small" onClick={onClose} aria-label="Close terminal">
          Close
        </button>
      </div>
      {message && (
        <p className="muted small" role="alert">
          {message}
        </p>
      )}
      <div className="terminal-screen" ref={host} data-testid="terminal-screen" />
    </section>
  );
}
