-- The store's schema in PostgreSQL: the tables of migrations/sqlite (0001 to 0010) as they
-- stand after the last of them, with the same meaning. Differences of form:
-- - Text the daemon takes as given and does not check for NUL (homeserver and client
--   transaction ids, event ids, event types, display names and avatar URLs) is kept as
--   BYTEA holding its UTF-8: PostgreSQL TEXT cannot hold U+0000, and one such value must
--   not fail a whole group commit. Identifiers that are validated (room and user ids,
--   aliases, agent slugs, token ids) and JSON text (event content, effects, answers) are
--   TEXT.
-- - Keys that are listed in order (agent slugs, token ids) compare bytewise (COLLATE "C"),
--   as SQLite's TEXT does, whatever the database's collation.
-- - Times are unix seconds in BIGINT, as in SQLite.

-- Handled homeserver transactions: recognised by id *and* what they carried (a keyed
-- multiset hash of their event ids, and one of their ephemeral/to-device items, NULL when
-- there were none; hex, see src/store/fingerprint.rs). A row without events_digest never
-- counts as a retry.
CREATE TABLE transactions (
    txn_id BYTEA PRIMARY KEY,
    handled_at BIGINT NOT NULL,
    events_digest TEXT,
    extras_digest TEXT
);
-- Retention prunes by age and keeps the newest rows.
CREATE INDEX transactions_handled_at ON transactions (handled_at);

-- Agents the daemon hosts, with what it knows of their homeserver state.
CREATE TABLE agents (
    slug TEXT COLLATE "C" PRIMARY KEY,
    registered BOOLEAN NOT NULL DEFAULT false,
    display_name BYTEA,
    avatar_url BYTEA,
    created_at BIGINT NOT NULL
);

-- Rooms where an agent is joined (the routing index is rebuilt from this at start-up).
CREATE TABLE memberships (
    slug TEXT COLLATE "C" NOT NULL,
    room_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (slug, room_id)
);
CREATE INDEX memberships_room ON memberships (room_id);

-- Events delivered to at least one inbox, stored once; event_id uniqueness is the
-- "already seen" check for homeserver re-sends (made by the insert itself: ON CONFLICT).
CREATE TABLE events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id BYTEA NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    event_type BYTEA NOT NULL,
    content TEXT NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
-- Retention finds old events through this.
CREATE INDEX events_received_at ON events (received_at);

-- Per-agent inboxes. seq is the cursor, drawn from a sequence: never handed out twice
-- (also not after pruning, nor by writers on several connections or hosts), so cursors
-- only grow. The group commit draws a batch's cursors itself, in batch order.
-- event_ref names events (id), unenforced as in SQLite: retention removes inbox rows
-- before the events they refer to.
CREATE SEQUENCE inbox_cursors AS BIGINT;
CREATE TABLE inbox (
    seq BIGINT PRIMARY KEY DEFAULT nextval('inbox_cursors'),
    slug TEXT COLLATE "C" NOT NULL,
    event_ref BIGINT NOT NULL,
    mentioned BOOLEAN NOT NULL,
    received_at BIGINT NOT NULL
);
ALTER SEQUENCE inbox_cursors OWNED BY inbox.seq;
CREATE INDEX inbox_slug_seq ON inbox (slug, seq);
CREATE INDEX inbox_received_at ON inbox (received_at);

-- Idempotent sends, scoped like Matrix transaction ids (per agent and room): the event id
-- the homeserver gave, and what the request asked for (SHA-256 of event type and content,
-- hex), so the same key with another request is a conflict. Kept
-- store.idempotency_keep_s; pruning walks sent_sent_at.
CREATE TABLE sent (
    slug TEXT COLLATE "C" NOT NULL,
    room_id TEXT COLLATE "C" NOT NULL,
    client_txn_id BYTEA NOT NULL,
    request_digest TEXT NOT NULL,
    event_id BYTEA NOT NULL,
    sent_at BIGINT NOT NULL,
    PRIMARY KEY (slug, room_id, client_txn_id)
);
CREATE INDEX sent_sent_at ON sent (sent_at);

-- Rooms provisioned through the bridge.
CREATE TABLE rooms (
    room_id TEXT COLLATE "C" PRIMARY KEY,
    alias TEXT,
    space_id TEXT,
    created_at BIGINT NOT NULL
);

-- Bridge tokens issued by an admin. The value itself is never stored: only its SHA-256
-- digest, which requests are looked up by. Scopes are a comma list of names, agents a
-- JSON array of patterns (src/tokens).
CREATE TABLE bridge_tokens (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    digest BYTEA NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    agents TEXT NOT NULL,
    rate_per_s BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);

-- Provisioning with a client key (txn_id): the answer of the room it made, and what the
-- request asked for (SHA-256, hex). Kept store.idempotency_keep_s.
CREATE TABLE provision_keys (
    txn_id BYTEA PRIMARY KEY,
    request_digest TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX provision_keys_created_at ON provision_keys (created_at);

-- What a recorded transaction asks for, written in the transaction's own commit and
-- removed once carried out (or given up). `effect` is the JSON of store::Effect; a failed
-- attempt pushes `not_before` (unix seconds) back.
CREATE TABLE effects (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    effect TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    not_before BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX effects_not_before ON effects (not_before);

-- Rooms known to be encrypted. A room never stops being encrypted.
CREATE TABLE encrypted_rooms (
    room_id TEXT COLLATE "C" PRIMARY KEY,
    seen_at BIGINT NOT NULL
);

-- Rooms an upgrade replaced (an m.room.tombstone seen in a room with agents).
CREATE TABLE room_upgrades (
    room_id TEXT COLLATE "C" PRIMARY KEY,
    replacement TEXT NOT NULL,
    seen_at BIGINT NOT NULL
);

-- Per agent, the newest cursor retention removed: a reader whose cursor is below it
-- missed items (the inbox answers "gap": true). Kept by a trigger, so every way rows
-- leave the inbox raises it in the same statement; once per statement, from all the rows
-- it removed (a retention batch is one upsert per agent, not one per row). An agent's
-- deletion removes its floor after its inbox.
CREATE TABLE inbox_floors (
    slug TEXT COLLATE "C" PRIMARY KEY,
    pruned_through BIGINT NOT NULL
);

CREATE FUNCTION raise_inbox_floors() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO inbox_floors AS f (slug, pruned_through)
    SELECT slug, MAX(seq) FROM pruned_rows GROUP BY slug
    ON CONFLICT (slug) DO UPDATE
        SET pruned_through = GREATEST(f.pruned_through, excluded.pruned_through);
    RETURN NULL;
END;
$$;

CREATE TRIGGER inbox_rows_pruned AFTER DELETE ON inbox
    REFERENCING OLD TABLE AS pruned_rows
    FOR EACH STATEMENT EXECUTE FUNCTION raise_inbox_floors();
