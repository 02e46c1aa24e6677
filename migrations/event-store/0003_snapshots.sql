-- The latest snapshot of an aggregate's state. Written after (never inside) the append transaction;
-- a missing or unreadable snapshot only costs a longer replay.
CREATE TABLE snapshots (
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    tenant_id      uuid        NOT NULL,
    sequence       bigint      NOT NULL CHECK (sequence > 0),
    state          jsonb       NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT snapshots_pkey PRIMARY KEY (aggregate_type, aggregate_id)
);
