-- Read-only share links of a session: anyone holding the link sees the session's transcript.
-- Only the token's SHA-256 is stored. A revoked link keeps its row (revoked_at set) so the
-- owner's list can tell it was revoked. Keep in step with the other database's file.
CREATE TABLE share_links (
    id UUID PRIMARY KEY NOT NULL,
    session_id UUID NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    owner_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX share_links_session ON share_links(session_id);
