-- A handled transaction is recognised by its id *and* what it carried: homeservers reuse ids
-- (Synapse on SQLite numbers transactions from 1 again after a restart). A keyed multiset
-- hash of the event ids, and one of the ephemeral/to-device items (NULL when there were
-- none), in hex (store/fingerprint.rs); rows written before this migration have neither and
-- never count as a retry.
ALTER TABLE transactions ADD COLUMN events_digest TEXT;
ALTER TABLE transactions ADD COLUMN extras_digest TEXT;
-- Retention prunes by age and keeps the newest rows.
CREATE INDEX transactions_handled_at ON transactions (handled_at);
