// The session's "Fork", "Try variants…" and "Share…" actions and their dialogs.
import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";
import { api } from "./api";
import { navigate } from "./router";
import { createdWithPrompt, upsert } from "./sessions";
import type { ShareLink } from "./types";

/** The most variants one request makes (den's limit). */
const MAX_VARIANTS = 5;

const EXPIRIES: { label: string; seconds: number | null }[] = [
  { label: "Never (until revoked)", seconds: null },
  { label: "1 hour", seconds: 3600 },
  { label: "1 day", seconds: 86400 },
  { label: "7 days", seconds: 7 * 86400 },
];

/** The viewer's address of a share link's token. */
export const shareUrl = (token: string) => `${location.origin}/share/${token}`;

export function SessionSharing({ id, onError }: { id: string; onError: (message: string) => void }) {
  const [dialog, setDialog] = useState<"variants" | "share" | null>(null);
  const [forking, setForking] = useState(false);
  const fork = async () => {
    setForking(true);
    try {
      const { sessions } = await api.fork(id);
      sessions.forEach(upsert);
      const [first] = sessions;
      if (first) navigate(`/s/${first.id}`);
    } catch (e) {
      onError((e as Error).message);
    } finally {
      setForking(false);
    }
  };
  const [open, setOpen] = useState(false);
  const menu = useRef<HTMLDivElement>(null);
  // The menu closes on a choice, on Escape, and on a click anywhere else.
  useEffect(() => {
    if (!open) return;
    const outside = (e: MouseEvent) => {
      if (!menu.current?.contains(e.target as Node)) setOpen(false);
    };
    const escape = (e: KeyboardEvent) => e.key === "Escape" && setOpen(false);
    document.addEventListener("mousedown", outside);
    document.addEventListener("keydown", escape);
    return () => {
      document.removeEventListener("mousedown", outside);
      document.removeEventListener("keydown", escape);
    };
  }, [open]);
  const choose = (f: () => void) => () => {
    setOpen(false);
    f();
  };
  return (
    // One "More" button keeps the session header short on a phone.
    <div className="more" ref={menu}>
      <button aria-haspopup="true" aria-expanded={open} onClick={() => setOpen((o) => !o)}>
        {forking ? "Forking…" : "More"}
      </button>
      {open && (
        <div className="more-menu card" role="group" aria-label="More actions">
          <button onClick={choose(() => void fork())} disabled={forking} title="A new session from this one's last finished turn: same files and conversation, a branch of its own">
            Fork
          </button>
          <button onClick={choose(() => setDialog("variants"))}>Try variants…</button>
          <button onClick={choose(() => setDialog("share"))}>Share…</button>
        </div>
      )}
      {dialog === "variants" && <VariantsDialog id={id} onClose={() => setDialog(null)} />}
      {dialog === "share" && <ShareDialog id={id} onClose={() => setDialog(null)} />}
    </div>
  );
}

function Dialog({ title, onClose, children }: { title: string; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  const titleId = `dialog-${title.replace(/\W+/g, "-").toLowerCase()}`;
  return (
    <dialog ref={ref} className="card dialog" aria-labelledby={titleId} onCancel={onClose}>
      <h2 id={titleId}>{title}</h2>
      {children}
    </dialog>
  );
}

/** "Try N variants": N forks, the same prompt to each, then the page that compares them. */
function VariantsDialog({ id, onClose }: { id: string; onClose: () => void }) {
  const [count, setCount] = useState(2);
  const [prompt, setPrompt] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      const { sessions } = await api.fork(id, count, prompt.trim());
      sessions.forEach((s) => {
        upsert(s);
        createdWithPrompt.add(s.id);
      });
      onClose();
      navigate(`/variants?of=${id}&ids=${sessions.map((s) => s.id).join(",")}`);
    } catch (e) {
      setError((e as Error).message);
      setBusy(false);
    }
  };
  return (
    <Dialog title="Try variants" onClose={onClose}>
      <p className="muted small">Each variant is a fork of this session's last finished turn, sent the same prompt. Compare their changes side by side.</p>
      <label>
        Variants
        <input type="number" min={2} max={MAX_VARIANTS} value={count} onChange={(e) => setCount(Number(e.target.value))} />
      </label>
      <label>
        Prompt
        <textarea value={prompt} rows={4} onChange={(e) => setPrompt(e.target.value)} />
      </label>
      {error && (
        <p className="banner error" role="alert">
          {error}
        </p>
      )}
      <div className="row end">
        <button onClick={onClose}>Cancel</button>
        <button className="primary" disabled={busy || !prompt.trim()} onClick={() => void start()}>
          {busy ? "Starting…" : `Start ${count} variants`}
        </button>
      </div>
    </Dialog>
  );
}

/** Create (with an expiry), copy and revoke read-only links. */
function ShareDialog({ id, onClose }: { id: string; onClose: () => void }) {
  const [links, setLinks] = useState<ShareLink[] | null>(null);
  const [expiry, setExpiry] = useState(0);
  const [created, setCreated] = useState<{ id: string; url: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => api.shareLinks(id).then(setLinks, (e: unknown) => setError((e as Error).message)), [id]);
  useEffect(() => {
    void load();
  }, [load]);
  const create = async () => {
    setError(null);
    const seconds = EXPIRIES[expiry]?.seconds ?? null;
    try {
      const made = await api.createShareLink(id, seconds === null ? undefined : new Date(Date.now() + seconds * 1000).toISOString());
      setCreated({ id: made.link.id, url: shareUrl(made.token) });
      setCopied(false);
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const revoke = async (link: string) => {
    setError(null);
    try {
      await api.revokeShareLink(id, link);
      if (created?.id === link) setCreated(null);
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const copy = async () => {
    if (!created) return;
    await navigator.clipboard?.writeText(created.url).catch(() => undefined);
    setCopied(true);
  };
  const now = Date.now();
  const state = (l: ShareLink) =>
    l.revokedAt ? "revoked" : l.expiresAt && Date.parse(l.expiresAt) <= now ? "expired" : l.expiresAt ? `until ${new Date(l.expiresAt).toLocaleString()}` : "no expiry";
  return (
    <Dialog title="Share read-only" onClose={onClose}>
      <p className="muted small">Anyone with the link sees this session's transcript as it streams, without signing in. Nothing else: no commands, terminal, changes or branch.</p>
      <div className="row">
        <label>
          Expires
          <select value={expiry} onChange={(e) => setExpiry(Number(e.target.value))}>
            {EXPIRIES.map((x, i) => (
              <option key={x.label} value={i}>
                {x.label}
              </option>
            ))}
          </select>
        </label>
        <button className="primary" onClick={() => void create()}>
          Create link
        </button>
      </div>
      {created && (
        <div className="row">
          <input readOnly aria-label="Share link" value={created.url} onFocus={(e) => e.currentTarget.select()} />
          <button onClick={() => void copy()}>{copied ? "Copied" : "Copy"}</button>
        </div>
      )}
      {error && (
        <p className="banner error" role="alert">
          {error}
        </p>
      )}
      {links && links.length > 0 && (
        <ul className="share-links" aria-label="Share links">
          {links.map((l) => (
            <li key={l.id}>
              <span>
                Created {new Date(l.createdAt).toLocaleString()} · {state(l)}
              </span>
              {!l.revokedAt && (
                <button className="danger-outline small" onClick={() => void revoke(l.id)}>
                  Revoke
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      <div className="row end">
        <button onClick={onClose}>Close</button>
      </div>
    </Dialog>
  );
}
