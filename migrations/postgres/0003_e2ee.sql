-- End-to-end encryption ([e2ee] enabled): each agent's crypto state, as its crypto machine
-- wrote it (account, Olm and Megolm sessions, devices and identities it knows, tracked
-- users, ...): one row per item, its value sealed with the store cipher. Written through the
-- group commit before the machine goes on; read when an agent's machine is restored.
CREATE TABLE e2ee_items (
    slug     TEXT NOT NULL COLLATE "C",
    kind     TEXT NOT NULL COLLATE "C",
    item_key TEXT NOT NULL COLLATE "C",
    value    BYTEA NOT NULL,
    PRIMARY KEY (slug, kind, item_key)
);

-- The store cipher's key, itself sealed with MOSAIC_E2EE_KEY: made once by the first replica
-- that needs it.
CREATE TABLE e2ee_keys (
    name  TEXT PRIMARY KEY COLLATE "C",
    value BYTEA NOT NULL
);

-- An encrypted event the daemon decrypted before storing it: `event_type` and `content` are
-- the clear event's, and readers are told so.
ALTER TABLE events ADD COLUMN decrypted BOOLEAN NOT NULL DEFAULT false;
