-- Rooms an upgrade replaced (an m.room.tombstone seen in a room with agents): new
-- messages of agents in the replacement go there, also after a restart.
CREATE TABLE room_upgrades (
    room_id TEXT PRIMARY KEY NOT NULL,
    replacement TEXT NOT NULL,
    seen_at INTEGER NOT NULL
) WITHOUT ROWID;
