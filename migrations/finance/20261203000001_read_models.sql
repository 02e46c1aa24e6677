-- Finance's read tables, filled by the projections in src/projection.rs and src/receivables.rs
-- from the event feed. This file (and its successors) is the one definition of their shape: a
-- projection rebuild copies the live table (CREATE TABLE ... (LIKE ... INCLUDING ALL)) and renames
-- the copy's indexes back to these names, so indexes carry PostgreSQL's own naming
-- (<table>_<columns>_idx). IF NOT EXISTS adopts the tables earlier builds created at first use.

CREATE TABLE IF NOT EXISTS invoices (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL,
    brand_id   uuid NOT NULL,
    client_id  uuid NOT NULL,
    order_id   uuid,
    number     text NOT NULL DEFAULT '',
    status     text NOT NULL,
    currency   text NOT NULL,
    total      bigint NOT NULL,
    paid       bigint NOT NULL DEFAULT 0,
    credited   bigint NOT NULL DEFAULT 0,
    balance    bigint NOT NULL,
    overpaid   bigint NOT NULL DEFAULT 0,
    issue_date date,
    due_date   date,
    state      jsonb NOT NULL,
    version    bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS invoices_tenant_id_created_at_id_idx ON invoices (tenant_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS invoices_tenant_id_client_id_idx ON invoices (tenant_id, client_id);
CREATE INDEX IF NOT EXISTS invoices_status_due_date_idx ON invoices (status, due_date);

-- Valid-time rows of each invoice (see receivables.rs): status and open balance between two of
-- its events, in recorded time.
CREATE TABLE IF NOT EXISTS invoice_timeline (
    tenant_id  uuid NOT NULL,
    invoice_id uuid NOT NULL,
    brand_id   uuid NOT NULL,
    currency   text NOT NULL,
    status     text NOT NULL,
    balance    bigint NOT NULL,
    due_date   date,
    sys_from   timestamptz NOT NULL,
    sys_to     timestamptz,
    stream_sys timestamptz NOT NULL,
    state      jsonb
);
CREATE UNIQUE INDEX IF NOT EXISTS invoice_timeline_invoice_id_idx ON invoice_timeline (invoice_id) WHERE sys_to IS NULL;
CREATE INDEX IF NOT EXISTS invoice_timeline_tenant_id_sys_from_idx ON invoice_timeline (tenant_id, sys_from)
    WHERE status IN ('issued', 'partially_paid', 'overdue');
