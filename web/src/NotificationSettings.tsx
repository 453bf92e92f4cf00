import { useState } from "react";
import { disableNotifications, enableNotifications, notificationsSupported, notificationsWanted } from "./notifications";

/** Settings → Notifications: this browser's choice (off by default). */
export function NotificationSettings() {
  const [on, setOn] = useState(() => notificationsWanted());
  const [error, setError] = useState<string | null>(null);
  const toggle = async (wanted: boolean) => {
    setError(null);
    if (!wanted) {
      disableNotifications();
      setOn(false);
      return;
    }
    const refused = await enableNotifications();
    setError(refused);
    setOn(refused === null);
  };
  return (
    <section aria-labelledby="notifications-h" className="card">
      <h2 id="notifications-h">Notifications</h2>
      <p className="muted">
        When a turn ends or fails while den's tab is hidden, this browser shows a notification, and the tab's title shows a mark until you look. Only this
        browser is affected.
      </p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <label className="row">
        <input type="checkbox" checked={on} disabled={!notificationsSupported()} onChange={(e) => void toggle(e.target.checked)} />
        Notify me when a turn ends in a hidden tab
      </label>
    </section>
  );
}
