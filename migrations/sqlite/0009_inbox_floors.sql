-- Per agent, the newest cursor retention removed: a reader whose cursor is below it
-- missed items (the inbox answers "gap": true). Kept by a trigger, so every way rows
-- leave by retention (age, count) raises it in the same statement. An agent's deletion
-- removes its floor with its inbox.
CREATE TABLE inbox_floors (
    slug TEXT PRIMARY KEY NOT NULL,
    pruned_through INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER inbox_rows_pruned AFTER DELETE ON inbox
BEGIN
    INSERT INTO inbox_floors (slug, pruned_through) VALUES (old.slug, old.seq)
    ON CONFLICT (slug) DO UPDATE SET pruned_through = max(pruned_through, excluded.pruned_through);
END;
