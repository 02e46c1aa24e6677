-- The event log. Every event of every aggregate of one service lives here, in the service's schema
-- (names are unqualified on purpose: search_path selects the schema).
CREATE TABLE events (
    -- Global position: allocation order, NOT commit order. Readers of the global feed order by
    -- (transaction_id, position) and only read transactions older than every running one.
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    tenant_id       uuid        NOT NULL CHECK (tenant_id <> '00000000-0000-0000-0000-000000000000'),
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL CHECK (sequence > 0),
    event_type      text        NOT NULL,
    event_version   text        NOT NULL,
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    event_id        uuid        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- Optimistic concurrency: two writers of the same next sequence cannot both commit.
    CONSTRAINT events_stream_sequence_key UNIQUE (aggregate_type, aggregate_id, sequence),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);

-- The global feed's read order.
CREATE INDEX events_feed_idx ON events (transaction_id, position);

-- Idempotency: one row per (tenant, request id), written by the same statement as the events, so a
-- retried command finds the first attempt's result instead of appending again.
CREATE TABLE idempotency_keys (
    tenant_id      uuid        NOT NULL,
    request_id     text        NOT NULL,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    first_sequence bigint      NOT NULL,
    last_sequence  bigint      NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (tenant_id, request_id)
);
