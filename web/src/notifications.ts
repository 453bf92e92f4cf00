// Browser notifications when a turn ends (or fails) while den's tab is hidden, and a marker in
// the tab's title until the tab is seen again. Off by default; the choice is this browser's
// (localStorage), and the browser's permission is asked once, when the person turns it on.
import { useEffect, useRef, useState } from "react";

const KEY = "den.notifications";

export function notificationsSupported(): boolean {
  return typeof window !== "undefined" && "Notification" in window;
}

/** Whether the person turned notifications on in this browser. */
export function notificationsWanted(): boolean {
  return localStorage.getItem(KEY) === "on";
}

/** Turns notifications on, asking the browser's permission if it was never asked. An error message when the browser refuses. */
export async function enableNotifications(): Promise<string | null> {
  if (!notificationsSupported()) return "This browser cannot show notifications.";
  const permission = Notification.permission === "default" ? await Notification.requestPermission() : Notification.permission;
  if (permission !== "granted") return "The browser blocks notifications from den: allow them in the site's settings, then turn this on again.";
  localStorage.setItem(KEY, "on");
  return null;
}

export function disableNotifications() {
  localStorage.removeItem(KEY);
}

/** What ended while the tab was hidden. */
export type TurnEnd = "finished" | "failed" | "waiting";

/** The title marker for what happened while the tab was hidden. */
export const TITLE_MARKER: Record<TurnEnd, string> = { finished: "✔ ", failed: "✖ ", waiting: "❓ " };

function notify(end: TurnEnd, title: string, detail: string | undefined) {
  if (!notificationsSupported() || !notificationsWanted() || Notification.permission !== "granted") return;
  const heading = end === "finished" ? "The agent finished" : end === "failed" ? "The turn failed" : "The agent waits for your answer";
  try {
    // One notification per session: a newer one replaces the older.
    const shown = new Notification(heading, { body: detail ? `${title}: ${detail}` : title, tag: `den-${title}` });
    // A click brings the session's tab forward.
    shown.onclick = () => window.focus();
  } catch {
    // Some browsers allow notifications only from a service worker; the title marker remains.
  }
}

/**
 * Watches the agent's state: when it stops working (or starts waiting) while the tab is hidden,
 * shows a notification (if turned on) and returns a title marker until the tab is visible.
 * `live`: the stream is live (history replayed on load never notifies).
 */
/** How long a turn's end waits for its error, if one follows, before it notifies. */
const SETTLE_MS = 400;

export function useTurnNotifications(agent: "working" | "idle" | "failed" | "waiting", live: boolean, title: string, detail?: string): string {
  const [marker, setMarker] = useState<TurnEnd | null>(null);
  const previous = useRef(agent);
  // The latest title and detail, read when the state changes (a new title alone never notifies).
  const text = useRef({ title, detail });
  useEffect(() => {
    text.current = { title, detail };
  }, [title, detail]);
  // The state now, for a decision taken a moment after the change.
  const current = useRef(agent);
  const settling = useRef<number | undefined>(undefined);
  useEffect(() => {
    current.current = agent;
  }, [agent]);
  useEffect(() => {
    const before = previous.current;
    previous.current = agent;
    if (!live || before === agent || document.visibilityState !== "hidden") return;
    const show = (end: TurnEnd) => {
      setMarker(end);
      notify(end, text.current.title, text.current.detail);
    };
    if (agent === "waiting") return show("waiting");
    if (before !== "working" && before !== "waiting") return;
    // A failed turn can pass through "idle" for a moment (its end before its error): decide
    // once the state has settled, so one turn gives one notification, and the right one.
    // Not cancelled by the next change of state: that change is what it waits for.
    window.clearTimeout(settling.current);
    settling.current = window.setTimeout(() => {
      const now = current.current;
      if (now === "failed") show("failed");
      else if (now === "idle") show("finished");
    }, SETTLE_MS);
  }, [agent, live]);
  useEffect(() => () => window.clearTimeout(settling.current), []);
  useEffect(() => {
    const seen = () => document.visibilityState === "visible" && setMarker(null);
    document.addEventListener("visibilitychange", seen);
    return () => document.removeEventListener("visibilitychange", seen);
  }, []);
  return marker ? TITLE_MARKER[marker] : "";
}
