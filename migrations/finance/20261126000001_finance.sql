-- Finance: gap-free number sequences (the invoices themselves live in the event store, their
-- read table is created by the projection).
CREATE TABLE number_sequences (
    brand_id   uuid NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    year       integer NOT NULL,
    last_value bigint NOT NULL,
    PRIMARY KEY (brand_id, kind, year)
);
