// A share link's read-only page (`/share/<token>`): the session's transcript as it streams,
// for anyone holding the link, signed in or not. It reads only `/api/shared/<token>` and its
// event stream; it sends nothing.
import { useEffect, useRef, useState } from "react";
import { api } from "./api";
import { apply, empty, type Transcript as TranscriptState } from "./reducer";
import { Transcript } from "./Transcript";
import type { SequencedEvent, SharedSession } from "./types";
import { useFollow } from "./useFollow";

type Phase = "loading" | "live" | "gone";

export function SharedView({ token }: { token: string }) {
  const [session, setSession] = useState<SharedSession | null>(null);
  const [phase, setPhase] = useState<Phase>("loading");
  const [t, setT] = useState<TranscriptState>(empty);
  const ref = useRef(t);
  const follow = useFollow();

  useEffect(() => {
    let disposed = false;
    api.shared(token).then(
      (s) => !disposed && setSession(s),
      () => !disposed && setPhase("gone"),
    );
    // The viewer's stream leaves out what is not the transcript, so its sequence numbers have
    // gaps; each event arrives once and in order (a reconnect resumes after the last one), so
    // it is numbered anew here for the transcript, which expects no gap.
    const source = new EventSource(`/api/shared/${encodeURIComponent(token)}/events`);
    source.addEventListener("event", (m) => {
      const ev = JSON.parse((m as MessageEvent<string>).data) as SequencedEvent;
      const next = apply(ref.current, [{ ...ev, seq: ref.current.lastSeq + 1 }]);
      ref.current = next;
      setT(next);
    });
    source.addEventListener("live", () => setPhase("live"));
    // A revoked or expired link: den ends the stream and answers the reconnect with 404.
    source.onerror = () => {
      if (disposed) return;
      void api.shared(token).then(
        () => undefined,
        () => {
          source.close();
          setPhase("gone");
        },
      );
    };
    return () => {
      disposed = true;
      source.close();
    };
  }, [token]);

  useEffect(() => {
    document.title = session ? `${t.title ?? session.title} · shared · den` : "Shared session · den";
  }, [session, t.title]);

  if (phase === "gone")
    return (
      <main className="center">
        <div className="card" role="alert">
          <h1>This link does not work</h1>
          <p>It was revoked, it expired, or it never existed.</p>
        </div>
      </main>
    );
  return (
    <main className="shared">
      <header className="session-head">
        <h1 className="session-title">{t.title ?? session?.title ?? "Shared session"}</h1>
        <span className="muted small" role="status" aria-label="Viewer">
          Read-only · {phase === "live" ? "Live" : "Loading…"}
        </span>
      </header>
      <Transcript items={t.items} working={t.turn !== null} contentRef={follow.ref} empty={phase === "live" ? "Nothing here yet." : "Loading…"} />
    </main>
  );
}
