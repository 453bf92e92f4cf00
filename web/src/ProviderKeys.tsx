// Settings → Providers: a person's own keys for den's providers (set, replace, delete; never
// shown back, only when and the last four characters) and their OpenAI-compatible endpoints.
import { useEffect, useState, type FormEvent } from "react";
import { api } from "./api";
import type { KeyTestResult, ModelEndpoint, ProviderKeyStatus } from "./types";

const PLACEHOLDERS: Record<string, string> = { anthropic: "sk-ant-…", openai: "sk-…", opencode: "Zen API key" };

/** A "Test" button: one tiny request with the saved key, and what the provider said. */
function TestKey({ label, run }: { label: string; run: () => Promise<KeyTestResult> }) {
  const [result, setResult] = useState<KeyTestResult | null>(null);
  const [testing, setTesting] = useState(false);
  const test = async () => {
    setTesting(true);
    setResult(null);
    try {
      setResult(await run());
    } catch (err) {
      setResult({ ok: false, status: null, message: (err as Error).message });
    }
    setTesting(false);
  };
  return (
    <>
      <button type="button" className="small" aria-label={`Test ${label}`} disabled={testing} onClick={() => void test()}>
        {testing ? "Testing…" : "Test"}
      </button>
      {result && (
        <span className={`small key-test ${result.ok ? "ok" : "error"}`} role="status" aria-label={`${label} test`}>
          {result.ok ? "✓ " : "✗ "}
          {result.message}
        </span>
      )}
    </>
  );
}

function KeyRow({ status, onChanged, onError }: { status: ProviderKeyStatus; onChanged: () => void; onError: (m: string | null) => void }) {
  const [key, setKey] = useState("");
  const save = async (e: FormEvent) => {
    e.preventDefault();
    onError(null);
    try {
      await api.setProviderKey(status.provider, key.trim());
      setKey("");
      onChanged();
    } catch (err) {
      onError((err as Error).message);
    }
  };
  const remove = async () => {
    onError(null);
    try {
      await api.deleteProviderKey(status.provider);
      onChanged();
    } catch (err) {
      onError((err as Error).message);
    }
  };
  return (
    <li>
      <div>
        <strong>{status.name}</strong>{" "}
        {status.set ? (
          <span className="muted small">
            key set {status.fingerprint ? <code>{status.fingerprint}</code> : null}
            {status.updatedAt ? ` on ${new Date(status.updatedAt).toLocaleDateString()}` : ""}
          </span>
        ) : status.sharedKey ? (
          <span className="muted small">using the key your admin shares</span>
        ) : (
          <span className="muted small">no key</span>
        )}
      </div>
      <form onSubmit={save} className="row">
        <input
          type="password"
          aria-label={`${status.name} key`}
          placeholder={PLACEHOLDERS[status.provider] ?? "API key"}
          value={key}
          onChange={(e) => setKey(e.target.value)}
          autoComplete="off"
          maxLength={1024}
          required
        />
        <button type="submit" className="primary">
          {status.set ? "Replace key" : "Save key"}
        </button>
        {status.set && (
          <>
            <TestKey label={`${status.name} key`} run={() => api.testProviderKey(status.provider)} />
            <button type="button" className="small danger-outline" aria-label={`Delete ${status.name} key`} onClick={() => void remove()}>
              Delete
            </button>
          </>
        )}
      </form>
    </li>
  );
}

export function ProviderKeys() {
  const [keys, setKeys] = useState<ProviderKeyStatus[] | null>(null);
  const [endpoints, setEndpoints] = useState<ModelEndpoint[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [baseUrl, setBaseUrl] = useState("");
  const [models, setModels] = useState("");
  const [endpointKey, setEndpointKey] = useState("");

  const load = () => {
    api.providerKeys().then(setKeys, (e: Error) => setError(e.message));
    api.endpoints().then(setEndpoints, (e: Error) => setError(e.message));
  };
  useEffect(() => {
    load();
    if (location.hash === "#providers") document.getElementById("providers")?.scrollIntoView();
  }, []);

  const addEndpoint = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const list = models.split(",").map((m) => m.trim()).filter(Boolean);
      await api.putEndpoint(name.trim(), baseUrl.trim(), list, endpointKey.trim() || undefined);
      setSaved(`Endpoint ${name.trim()} saved.`);
      setName("");
      setBaseUrl("");
      setModels("");
      setEndpointKey("");
      load();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const removeEndpoint = async (endpoint: ModelEndpoint) => {
    setError(null);
    try {
      await api.deleteEndpoint(endpoint.name);
      load();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <section aria-labelledby="providers-h" className="card" id="providers">
      <h2 id="providers-h">Providers</h2>
      <p className="muted">
        Your own model keys. den keeps them encrypted, adds them to model requests outside the sandbox, and never shows them
        again. Your key wins over one your admin shares.
      </p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {saved && (
        <p className="banner ok" role="status">
          {saved}
        </p>
      )}
      {keys === null ? (
        <p className="muted">Loading keys…</p>
      ) : (
        <ul className="provider-keys" aria-label="Provider keys">
          {keys.map((k) => (
            <KeyRow key={k.provider} status={k} onChanged={() => { setSaved(null); load(); }} onError={setError} />
          ))}
        </ul>
      )}
      <h3>Your OpenAI-compatible endpoints</h3>
      {endpoints.length > 0 && (
        <ul className="tokens" aria-label="Endpoints">
          {endpoints.map((ep) => (
            <li key={ep.name}>
              <span>
                <strong>{ep.name}</strong> <code>{ep.baseUrl}</code>{" "}
                <span className="muted small">
                  {ep.models.join(", ")}
                  {ep.keySet ? ` · key ${ep.keyFingerprint ?? "set"}` : " · no key"}
                </span>
              </span>
              <span className="row">
                <TestKey label={`endpoint ${ep.name}`} run={() => api.testEndpoint(ep.name)} />
                <button className="small danger-outline" aria-label={`Delete endpoint ${ep.name}`} onClick={() => void removeEndpoint(ep)}>
                  Delete
                </button>
              </span>
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={addEndpoint} className="endpoint-form">
        <input aria-label="Endpoint name" placeholder="name, e.g. home" value={name} onChange={(e) => setName(e.target.value)} maxLength={32} required />
        <input aria-label="Base URL" placeholder="https://models.example.com/v1" value={baseUrl} onChange={(e) => setBaseUrl(e.target.value)} required />
        <input aria-label="Models" placeholder="model ids, comma-separated" value={models} onChange={(e) => setModels(e.target.value)} required />
        <input type="password" aria-label="Endpoint key" placeholder="key (optional)" value={endpointKey} onChange={(e) => setEndpointKey(e.target.value)} autoComplete="off" maxLength={1024} />
        <button type="submit">Add endpoint</button>
      </form>
    </section>
  );
}
