-- Where each feed subscriber (projection, outbox relay) has got to: the (transaction id, position)
-- of the last event it has fully handled.
CREATE TABLE subscriber_checkpoints (
    subscriber     text        PRIMARY KEY,
    transaction_id xid8        NOT NULL DEFAULT '0'::xid8,
    position       bigint      NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
