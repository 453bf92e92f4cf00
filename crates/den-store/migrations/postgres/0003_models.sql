-- A person's own OpenAI-compatible model servers (issue 10). Each one's key, when it has one,
-- is sealed in `secrets` under the purpose `endpoint:<name>`; personal keys for den's built-in
-- providers live there too, under `provider:<id>`. Keep in step with the SQLite file.
CREATE TABLE model_endpoints (
    owner_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    base_url TEXT NOT NULL,
    -- A JSON array of model ids.
    models TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner_id, name)
);

-- What each model request cost, metered by den's gateway from the provider's own stream.
CREATE TABLE model_usage (
    id BIGSERIAL PRIMARY KEY,
    owner_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- Kept after the session is deleted: spending happened either way.
    session_id UUID NOT NULL,
    model TEXT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    cache_read_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX model_usage_owner_time ON model_usage(owner_id, created_at);
