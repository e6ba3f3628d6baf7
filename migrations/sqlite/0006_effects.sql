-- What a recorded transaction asks for (agents accepting invites, sender-bot joins,
-- refused invites rejected), written in the transaction's own commit and removed once
-- carried out (or given up), so a crash after the 200 loses none of it. `effect` is the
-- JSON of store::Effect; a failed attempt pushes `not_before` (unix seconds) back.
CREATE TABLE effects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    effect TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    not_before INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX effects_not_before ON effects (not_before);
