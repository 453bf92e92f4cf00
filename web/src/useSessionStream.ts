// One session's live transcript: a WebSocket that replays events after the last seq we hold,
// then streams live ones. On any disconnect it reconnects with `after=<last seq>`, so the
// reducer (which also drops duplicates) sees every event exactly once.
import { useCallback, useEffect, useRef, useState } from "react";
import { apply, empty, hasGap, type Transcript } from "./reducer";
import type { ClientMessage, SequencedEvent, ServerMessage } from "./types";

export type Connection = "connecting" | "replaying" | "live" | "reconnecting" | "closed";

export function useSessionStream(id: string, onRefused: (message: string) => void) {
  const [transcript, setTranscript] = useState<Transcript>(empty);
  const [connection, setConnection] = useState<Connection>("connecting");
  const ref = useRef(transcript);
  const socket = useRef<WebSocket | null>(null);
  const refused = useRef(onRefused);
  refused.current = onRefused;

  useEffect(() => {
    let disposed = false;
    let attempt = 0;
    let timer: number | undefined;
    let frame: number | undefined;
    let batch: SequencedEvent[] = [];

    // Events are applied once per animation frame: a burst of deltas renders once.
    const flush = () => {
      frame = undefined;
      const next = apply(ref.current, batch);
      batch = [];
      ref.current = next;
      setTranscript(next);
      // Held events mean one went missing in transit: resync from what we have.
      if (hasGap(next)) socket.current?.close();
    };

    const open = () => {
      if (disposed) return;
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const url = `${scheme}://${location.host}/api/sessions/${encodeURIComponent(id)}/ws?after=${ref.current.lastSeq}`;
      const ws = new WebSocket(url);
      socket.current = ws;
      ws.onopen = () => setConnection("replaying");
      ws.onmessage = (m) => {
        const msg = JSON.parse(m.data as string) as ServerMessage;
        if (msg.type === "event") {
          const { type: _t, ...ev } = msg;
          batch.push(ev);
          frame ??= requestAnimationFrame(flush);
        } else if (msg.type === "live") {
          attempt = 0;
          setConnection("live");
        } else if (msg.type === "refused") refused.current(msg.message);
      };
      ws.onclose = () => {
        if (socket.current === ws) socket.current = null;
        if (disposed) return;
        setConnection("reconnecting");
        const delay = Math.min(500 * 2 ** attempt++, 8000);
        timer = window.setTimeout(open, delay);
      };
    };
    open();
    // Coming back online or to the tab: reconnect now rather than after the backoff.
    const wake = () => {
      if (!socket.current && !disposed) {
        window.clearTimeout(timer);
        attempt = 0;
        open();
      }
    };
    window.addEventListener("online", wake);
    document.addEventListener("visibilitychange", wake);
    return () => {
      disposed = true;
      window.clearTimeout(timer);
      if (frame !== undefined) cancelAnimationFrame(frame);
      window.removeEventListener("online", wake);
      document.removeEventListener("visibilitychange", wake);
      socket.current?.close();
      setConnection("closed");
    };
  }, [id]);

  const send = useCallback((msg: ClientMessage) => {
    const ws = socket.current;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }, []);

  return { transcript, connection, send };
}
