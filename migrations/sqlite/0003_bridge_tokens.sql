-- Bridge tokens issued by an admin (POST /bridge/v1/tokens). The value itself is never
-- stored: only its SHA-256 digest, which requests are looked up by. Scopes are a comma
-- list of names, agents a JSON array of patterns (src/tokens).
CREATE TABLE bridge_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    digest BLOB NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    agents TEXT NOT NULL,
    rate_per_s INTEGER,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
