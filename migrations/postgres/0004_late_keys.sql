-- Encrypted events whose room key arrives after them: stored as they came, then decrypted
-- in place when the key arrives, and given once more to the agents able to read them, as
-- an inbox row marked `redelivered`. The index finds such events by room and Megolm session
-- (only rows still encrypted are in it).
ALTER TABLE inbox ADD COLUMN redelivered BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX events_awaiting_keys ON events (room_id, ((content::jsonb) ->> 'session_id'))
    WHERE event_type = 'm.room.encrypted'::bytea AND NOT decrypted;
