// The prompt box: Enter sends, Shift+Enter adds a line, Escape asks to stop the running turn.
import { useRef, type KeyboardEvent } from "react";

type Props = {
  value: string;
  onChange: (v: string) => void;
  onSend: () => void;
  onEscape?: () => void;
  placeholder: string;
  disabled?: boolean;
  busy?: boolean;
  label: string;
  sendLabel?: string;
};

export function Composer({ value, onChange, onSend, onEscape, placeholder, disabled, busy, label, sendLabel = "Send" }: Props) {
  const ref = useRef<HTMLTextAreaElement>(null);
  const key = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      if (value.trim() && !disabled && !busy) onSend();
    } else if (e.key === "Escape" && onEscape) {
      e.preventDefault();
      onEscape();
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
