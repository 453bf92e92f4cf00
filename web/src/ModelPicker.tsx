// The model picker: den's catalog for this person (GET /api/models). A locked model shows a
// lock, and choosing it says which key it needs with a link to the settings' providers.
import { useEffect, useState } from "react";
import { api } from "./api";
import { Link } from "./router";
import type { ModelCatalog, ModelInfo } from "./types";

type Props = {
  value: string;
  onChange: (id: string, locked: boolean) => void;
  label?: string;
};

export function ModelPicker({ value, onChange, label = "Model" }: Props) {
  const [catalog, setCatalog] = useState<ModelCatalog | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api.models().then(
      (c) => {
        setCatalog(c);
        // A value den no longer offers stays as it is (shown by its id), never silently replaced.
        const initial = value
          ? c.models.find((m) => m.id === value)
          : c.models.find((m) => m.id === c.defaultModel && m.available);
        if (initial) onChange(initial.id, !initial.available);
      },
      (e: Error) => setError(e.message),
    );
    // Loaded once per mount; the settings page changes keys, and coming back remounts this.
    // The value and callback at mount are the ones meant: a later value must not reload it.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  if (error) return <p className="error" role="alert">Cannot load the models: {error}</p>;
  if (!catalog) return <p className="muted">Loading models…</p>;
  const selected: ModelInfo | undefined = catalog.models.find((m) => m.id === value);
  const providers = [...new Set(catalog.models.map((m) => m.providerName))];
  return (
    <div className="model-picker">
      <label>
        {label}
        <select
          value={value}
          onChange={(e) => {
            const model = catalog.models.find((m) => m.id === e.target.value);
            if (model) onChange(model.id, !model.available);
          }}
        >
          {value && !selected && <option value={value}>{value}</option>}
          {providers.map((provider) => (
            <optgroup key={provider} label={provider}>
              {catalog.models
                .filter((m) => m.providerName === provider)
                .map((m) => (
                  <option key={m.id} value={m.id}>
                    {m.available ? m.name : `🔒 ${m.name}`}
                  </option>
                ))}
            </optgroup>
          ))}
        </select>
      </label>
      {selected && !selected.available && (
        <p className="locked-note" role="status">
          🔒 {selected.name} is locked: {selected.lockedReason}.{" "}
          {selected.keyProvider && <Link href="/settings#providers">Add key</Link>}
        </p>
      )}
      {selected?.available && selected.price && (
        <p className="muted small">
          ${selected.price.input} / ${selected.price.output} per million tokens in / out
          {selected.context ? ` · ${Math.round(selected.context / 1000)}k context` : ""}
        </p>
      )}
    </div>
  );
}
