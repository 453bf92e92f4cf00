// The prompt box: Enter sends, Shift+Enter adds a line. Escape does nothing here: stopping a
// turn is deliberate (the Stop button), never a stray key.
import { useRef, type KeyboardEvent } from "react";

type Props = {
  value: string;
  onChange: (v: string) => void;
  onSend: () => void;
  placeholder: string;
  disabled?: boolean;
  busy?: boolean;
  label: string;
  sendLabel?: string;
};

export function Composer({ value, onChange, onSend, placeholder, disabled, busy, label, sendLabel = "Send" }: Props) {
  const ref = useRef<HTMLTextAreaElement>(null);
  const key = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      if (value.trim() && !disabled && !busy) onSend();
    }
  };
  return (
    <div className="composer">
      <textarea
        ref={ref}
        aria-label={label}
        placeholder={placeholder}
        value={value}
        rows={Math.min(8, Math.max(2, value.split("\n").length))}
        onChange={(e) => onChange(e.target.value)}
        onKeyDown={key}
        disabled={disabled}
      />
      <button className="primary" onClick={onSend} disabled={disabled || busy || !value.trim()}>
        {busy ? "Sending…" : sendLabel}
      </button>
    </div>
  );
}
