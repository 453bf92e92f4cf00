-- A person's own OpenAI-compatible model servers (issue 10). Each one's key, when it has one,
-- is sealed in `secrets` under the purpose `endpoint:<name>`; personal keys for den's built-in
-- providers live there too, under `provider:<id>`. Keep in step with the PostgreSQL file.
CREATE TABLE model_endpoints (
    owner_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    base_url TEXT NOT NULL,
    -- A JSON array of model ids.
    models TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (owner_id, name)
);
