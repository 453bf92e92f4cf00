import { useState } from "react";
import type { QueuedPrompt } from "./types";

/** The prompts waiting behind the running turn: each can be edited or removed, or all cleared. */
export function QueuedPrompts({
  items,
  onEdit,
  onRemove,
  onClear,
}: {
  items: QueuedPrompt[];
  onEdit: (item: string, text: string) => Promise<boolean>;
  onRemove: (item: string) => void;
  onClear: () => void;
}) {
  return (
    <section className="queue" aria-label="Queued prompts">
      <h2>
        Queued{" "}
        <button className="small" onClick={onClear}>
          Clear all
        </button>
      </h2>
      <ul>
        {items.map((q) => (
          <QueuedItem key={q.id} item={q} onEdit={onEdit} onRemove={onRemove} />
        ))}
      </ul>
    </section>
  );
}

function QueuedItem({
  item,
  onEdit,
  onRemove,
}: {
  item: QueuedPrompt;
  onEdit: (item: string, text: string) => Promise<boolean>;
  onRemove: (item: string) => void;
}) {
  const [draft, setDraft] = useState<string | null>(null);
  const save = async () => {
    if (draft === null) return;
    const text = draft.trim();
    // A refused edit keeps the draft, so the words are not lost.
    if (text && text !== item.text && !(await onEdit(item.id, text))) return;
    setDraft(null);
  };
  if (draft !== null) {
    return (
      <li>
        <input
          aria-label="Edit queued prompt"
          value={draft}
          autoFocus
          onChange={(e) => setDraft(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter") void save();
            else if (e.key === "Escape") setDraft(null);
          }}
        />
        <span className="actions">
          <button className="small" onClick={() => void save()} disabled={!draft.trim()}>
            Save
          </button>
          <button className="small" onClick={() => setDraft(null)}>
            Cancel
          </button>
        </span>
      </li>
    );
  }
  return (
    <li>
      <span>{item.text}</span>
      <span className="actions">
        <button className="small" aria-label={`Edit queued prompt: ${item.text}`} onClick={() => setDraft(item.text)}>
          Edit
        </button>
        <button className="small" aria-label={`Remove queued prompt: ${item.text}`} onClick={() => onRemove(item.id)}>
          Remove
        </button>
      </span>
    </li>
  );
}
