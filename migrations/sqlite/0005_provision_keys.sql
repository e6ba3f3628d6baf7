-- Provisioning with a client key (txn_id): the answer of the room it made, and what the
-- request asked for (SHA-256, hex), so the same key answers the same room again and never
-- another request's. Kept store.idempotency_keep_s, like the keys of sends.
CREATE TABLE provision_keys (
    txn_id TEXT PRIMARY KEY NOT NULL,
    request_digest TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX provision_keys_created_at ON provision_keys (created_at);
