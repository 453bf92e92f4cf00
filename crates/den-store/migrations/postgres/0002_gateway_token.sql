-- The SHA-256 of the token a session's sandbox presents to den's model gateway.
ALTER TABLE sessions ADD COLUMN gateway_token_hash TEXT;
CREATE UNIQUE INDEX sessions_gateway_token ON sessions(gateway_token_hash);
