-- Rooms known to be encrypted (an m.room.encryption state event seen in a transaction or
-- in a room's state when an agent joined, or an m.room.encrypted event seen): agents say
-- so rather than go silent there. A room never stops being encrypted.
CREATE TABLE encrypted_rooms (
    room_id TEXT PRIMARY KEY NOT NULL,
    seen_at INTEGER NOT NULL
) WITHOUT ROWID;
