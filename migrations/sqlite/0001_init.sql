-- Handled homeserver transactions: a txn id here is never processed again.
CREATE TABLE transactions (
    txn_id TEXT PRIMARY KEY NOT NULL,
    handled_at INTEGER NOT NULL
);

-- Agents the daemon hosts, with what it knows of their homeserver state.
CREATE TABLE agents (
    slug TEXT PRIMARY KEY NOT NULL,
    registered INTEGER NOT NULL DEFAULT 0,
    display_name TEXT,
    avatar_url TEXT,
    created_at INTEGER NOT NULL
);

-- Rooms where an agent is joined (the routing index is rebuilt from this at start-up).
CREATE TABLE memberships (
    slug TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (slug, room_id)
) WITHOUT ROWID;
CREATE INDEX memberships_room ON memberships (room_id);

-- Events delivered to at least one inbox, stored once; event_id uniqueness is the
-- "already seen" check for homeserver re-sends.
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    event_type TEXT NOT NULL,
    content TEXT NOT NULL,
    origin_server_ts INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);

-- Per-agent inboxes. seq is the cursor: AUTOINCREMENT never reuses a value, so cursors
-- only grow, also after pruning.
CREATE TABLE inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL,
    event_ref INTEGER NOT NULL REFERENCES events (id),
    mentioned INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX inbox_slug_seq ON inbox (slug, seq);

-- Idempotent sends: (agent, client txn_id) -> the event id the homeserver gave.
CREATE TABLE sent (
    slug TEXT NOT NULL,
    client_txn_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (slug, client_txn_id)
) WITHOUT ROWID;

-- Rooms provisioned through the bridge.
CREATE TABLE rooms (
    room_id TEXT PRIMARY KEY NOT NULL,
    alias TEXT,
    space_id TEXT,
    created_at INTEGER NOT NULL
);
