-- The consumer inbox: one row per (consumer, message) processed. Inserted in the same transaction
-- as the handler's effects, so a redelivered message finds its row and has no second effect.
-- Names are unqualified on purpose: search_path selects the service's schema.
CREATE TABLE inbox (
    consumer     text        NOT NULL,
    message_id   uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT inbox_pkey PRIMARY KEY (consumer, message_id)
);

-- Pruning old rows (`sentra_bus::prune_inbox`) scans by age.
CREATE INDEX inbox_processed_at_idx ON inbox (processed_at);
