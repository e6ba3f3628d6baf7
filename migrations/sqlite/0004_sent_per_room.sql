-- Client idempotency keys are scoped like Matrix transaction ids: per agent *and* room (a
-- key used in room A says nothing about room B), and each remembers what its request asked
-- for (SHA-256 of event type and content, hex), so the same key with another request is a
-- conflict rather than the earlier request's answer. Rows of the old table do not know
-- their room and cannot be carried over: a client retrying across this upgrade with a key
-- from before it sends again (the Matrix transaction id now includes the request, so the
-- homeserver's own deduplication does not answer for another request either).
DROP TABLE sent;
CREATE TABLE sent (
    slug TEXT NOT NULL,
    room_id TEXT NOT NULL,
    client_txn_id TEXT NOT NULL,
    request_digest TEXT NOT NULL,
    event_id TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (slug, room_id, client_txn_id)
) WITHOUT ROWID;
-- Keys are kept store.idempotency_keep_s; pruning walks this index.
CREATE INDEX sent_sent_at ON sent (sent_at);
