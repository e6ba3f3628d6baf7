-- Several replicas on one database: each replica's lease, and each agent's owner.

-- A replica holds its lease while `expires_at` is in the future; it renews it every third
-- of `ha.takeover_s`. `url` is where the others forward an owned agent's requests.
CREATE TABLE replicas (
    id         TEXT PRIMARY KEY COLLATE "C",
    url        TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);

-- The replica that acts as each agent. `epoch` grows by one at every change of owner:
-- the fencing token of the ownership.
CREATE TABLE agent_owners (
    slug    TEXT PRIMARY KEY COLLATE "C",
    replica TEXT NOT NULL COLLATE "C",
    epoch   BIGINT NOT NULL
);
CREATE INDEX agent_owners_by_replica ON agent_owners (replica);
