-- Many den nodes on one database (issue 13). Keep in step with the other database's file.
--
-- A node registers and heartbeats; others forward a session's commands to the owner's
-- internal_url. Times here are milliseconds since the epoch on the DATABASE's clock (never a
-- node's), so nodes with skewed clocks agree on what expired.
CREATE TABLE den_nodes (
    node_id TEXT PRIMARY KEY,
    internal_url TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    heartbeat_at_ms BIGINT NOT NULL,
    -- Set when the node drains (SIGTERM): it takes no new sessions.
    draining BOOLEAN NOT NULL DEFAULT FALSE
);

-- Who owns a session's actor. The epoch is the fencing token: +1 on every acquisition, never
-- reset; every write of the actor checks it in the same statement, so a node that lost the
-- lease (paused, cut off) can never write after another took over.
CREATE TABLE session_leases (
    session_id UUID PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
    -- NULL: released.
    owner_node TEXT,
    epoch BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX session_leases_owner ON session_leases(owner_node);

-- Which lease epoch wrote each event (0: before leases).
ALTER TABLE session_events ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;

-- The prompts waiting behind the running turn, so a node taking a session over keeps them.
CREATE TABLE session_queue (
    session_id UUID NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    id TEXT NOT NULL,
    text TEXT NOT NULL,
    model TEXT,
    PRIMARY KEY (session_id, position)
);
