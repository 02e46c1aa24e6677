-- Sales' read tables, filled by the projections in src/projections.rs and src/timeline.rs from
-- the event feed. This file (and its successors) is the one definition of their shape: a
-- projection rebuild copies the live table (CREATE TABLE ... (LIKE ... INCLUDING ALL)) and renames
-- the copy's indexes back to these names, so indexes carry PostgreSQL's own naming
-- (<table>_<columns>_idx). IF NOT EXISTS adopts the tables earlier builds created at first use.

CREATE TABLE IF NOT EXISTS leads (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL,
    brand_id       uuid NOT NULL,
    contact_name   text NOT NULL,
    email          text NOT NULL,
    phone          text NOT NULL,
    company        text NOT NULL,
    source         text NOT NULL,
    value_currency text NOT NULL,
    value_minor    bigint NOT NULL,
    notes          text NOT NULL,
    stage          text NOT NULL,
    assignee_id    uuid,
    lost_reason    text NOT NULL DEFAULT '',
    client_id      uuid,
    version        bigint NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS leads_tenant_id_created_at_id_idx ON leads (tenant_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS leads_tenant_id_brand_id_stage_idx ON leads (tenant_id, brand_id, stage);

CREATE TABLE IF NOT EXISTS clients (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    brand_id     uuid NOT NULL,
    contact_name text NOT NULL,
    email        text NOT NULL,
    phone        text NOT NULL,
    company      text NOT NULL,
    lead_ids     uuid[] NOT NULL,
    archived     boolean NOT NULL DEFAULT false,
    version      bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS clients_tenant_id_created_at_id_idx ON clients (tenant_id, created_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS orders (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL,
    brand_id       uuid NOT NULL,
    client_id      uuid NOT NULL,
    currency       text NOT NULL,
    lines          jsonb NOT NULL,
    subtotal       bigint NOT NULL,
    discount_total bigint NOT NULL,
    tax_total      bigint NOT NULL,
    total          bigint NOT NULL,
    state          text NOT NULL,
    cancel_reason  text NOT NULL DEFAULT '',
    version        bigint NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_tenant_id_created_at_id_idx ON orders (tenant_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS orders_tenant_id_client_id_idx ON orders (tenant_id, client_id);

-- Valid-time rows of each lead (see timeline.rs): sys_from/sys_to in recorded time, entered_at/
-- left_at in event time.
CREATE TABLE IF NOT EXISTS lead_timeline (
    kind           text NOT NULL,
    tenant_id      uuid NOT NULL,
    lead_id        uuid NOT NULL,
    brand_id       uuid NOT NULL,
    stage          text NOT NULL DEFAULT '',
    entered_at     timestamptz,
    left_at        timestamptz,
    value_currency text NOT NULL DEFAULT '',
    value_minor    bigint NOT NULL DEFAULT 0,
    assignee_id    uuid,
    reason         text NOT NULL DEFAULT '',
    at             timestamptz,
    sys_from       timestamptz NOT NULL,
    sys_to         timestamptz,
    stream_sys     timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS lead_timeline_lead_id_idx ON lead_timeline (lead_id)
    WHERE kind = 'state' AND sys_to IS NULL;
CREATE INDEX IF NOT EXISTS lead_timeline_tenant_id_kind_sys_from_idx ON lead_timeline (tenant_id, kind, sys_from);
CREATE INDEX IF NOT EXISTS lead_timeline_tenant_id_sys_to_idx ON lead_timeline (tenant_id, sys_to)
    WHERE kind = 'state' AND left_at IS NOT NULL;
