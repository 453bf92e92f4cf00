import { memo, useState } from "react";
import { highlight } from "./Markdown";
import type { ToolCall } from "./types";

const STATE_LABEL = { pending: "pending", running: "running", completed: "done", failed: "failed" } as const;

/** The one argument that says what a call is about (a path, a command, a pattern, …). */
function subject(call: ToolCall): string {
  const input = call.input as Record<string, unknown>;
  if (call.title) return call.title;
  for (const key of ["filePath", "file_path", "path", "command", "url", "query", "pattern"]) {
    const v = input[key];
    if (typeof v === "string" && v) return v.length > 60 ? `…${v.slice(-57)}` : v;
  }
  return "";
}

export const ToolChip = memo(function ToolChip({ call }: { call: ToolCall }) {
  const [open, setOpen] = useState(false);
  const what = subject(call);
  const state = STATE_LABEL[call.state];
  return (
    <div className={`tool ${call.state}`}>
      <button
        className="tool-chip"
        aria-expanded={open}
        aria-label={`${call.tool} ${what} (${state})`}
        onClick={() => setOpen((o) => !o)}
      >
        <span className="tool-name">{call.tool}</span>
        <span className="tool-subject">{what}</span>
        <span className={`tool-state ${call.state}`}>{state}</span>
      </button>
      {open && <ToolDetail call={call} />}
    </div>
  );
});

/** den sends a write's diff only when it created the file; for an overwrite, show the new content
 * as one (every line added). */
function writeDiff(call: ToolCall): string | null {
  const input = call.input as Record<string, unknown>;
  if (call.tool !== "write" || typeof input.content !== "string") return null;
  const path = typeof input.filePath === "string" ? input.filePath : "file";
  const lines = input.content.replace(/\n$/, "").split("\n");
  return [`+++ ${path}`, ...lines.map((l) => `+${l}`)].join("\n");
}

function ToolDetail({ call }: { call: ToolCall }) {
  const input = call.input as Record<string, unknown>;
  const command = typeof input.command === "string" ? input.command : null;
  const diff = call.diff ?? writeDiff(call);
  return (
    <div className="tool-detail">
      {command !== null ? (
        <pre className="command" aria-label="Command">
          $ {command}
        </pre>
      ) : diff ? null : (
        <pre aria-label="Input">{JSON.stringify(input, null, 2)}</pre>
      )}
      {diff && <Diff text={diff} />}
      {call.output && (
        <pre className="output" aria-label="Output">
          {call.output}
        </pre>
      )}
      {call.error && (
        <pre className="error" aria-label="Error">
          {call.error}
        </pre>
      )}
    </div>
  );
}

/** The language highlight.js knows a file by, from its extension (`src/a.rs` → `rs`). */
function languageOf(path: string | undefined): string | undefined {
  const name = path?.split("/").pop() ?? "";
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : undefined;
}

/** A unified diff, its lines coloured by kind; with `path`, the code itself coloured too. */
export function Diff({ text, path }: { text: string; path?: string }) {
  const language = languageOf(path);
  return (
    <pre className="diff" aria-label="Diff">
      {text.split("\n").map((line, i) => {
        const kind = line.startsWith("+++") || line.startsWith("---") ? "meta" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : line.startsWith("@@") ? "hunk" : "";
        const code = language && (kind === "add" || kind === "del" || line.startsWith(" "));
        return (
          <span key={i} className={kind}>
            {code ? (
              <>
                {line[0]}
                {/* highlight.js escapes the code it is given; its output is only its own spans. */}
                <span dangerouslySetInnerHTML={{ __html: highlight(line.slice(1), language) }} />
              </>
            ) : (
              line
            )}
            {"\n"}
          </span>
        );
      })}
    </pre>
  );
}
