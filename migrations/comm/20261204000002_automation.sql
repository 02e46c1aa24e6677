-- Email automation: templates and rules per brand, the emails the rules made (once per rule and
-- trigger), the suppression list, and Comm's own copy of what the emails render (brands and
-- staff from Tenancy's events; leads, clients, orders and invoices from Sales' and Finance's).

-- Brands and staff as Tenancy announced them (names, domains, addresses for rendering).
CREATE TABLE known_brands (
    brand_id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    name text NOT NULL DEFAULT '',
    display_name text NOT NULL DEFAULT '',
    domain text NOT NULL DEFAULT ''
);

CREATE TABLE known_users (
    user_id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    email text NOT NULL DEFAULT '',
    display_name text NOT NULL DEFAULT ''
);

-- One row per lead, client, order and invoice: the fields templates and conditions read, merged
-- from each event (`data || patch`).
CREATE TABLE known_records (
    kind text NOT NULL CHECK (kind IN ('lead', 'client', 'order', 'invoice')),
    record_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    brand_id uuid,
    data jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (kind, record_id)
);

CREATE INDEX known_records_brand ON known_records (kind, brand_id);

CREATE TABLE email_templates (
    template_id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    brand_id uuid NOT NULL,
    name text NOT NULL,
    subject text NOT NULL,
    html_body text NOT NULL DEFAULT '',
    text_body text NOT NULL DEFAULT '',
    request_id uuid,
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (brand_id, request_id)
);

-- A rule fires on a bus event (`event_type`) or at `offset_days` from a date (`date_field`).
CREATE TABLE automation_rules (
    rule_id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    brand_id uuid NOT NULL,
    name text NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    event_type text,
    date_field text,
    offset_days integer NOT NULL DEFAULT 0,
    conditions jsonb NOT NULL DEFAULT '[]',
    template_id uuid NOT NULL REFERENCES email_templates,
    recipient text NOT NULL CHECK (recipient IN ('client_contact', 'assigned_agent')),
    request_id uuid,
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((event_type IS NULL) <> (date_field IS NULL)),
    UNIQUE (brand_id, request_id)
);

CREATE INDEX automation_rules_event ON automation_rules (brand_id, event_type) WHERE enabled;

-- queued -> sent | deferred -> … | failed | suppressed. `trigger_key` is the event id, or
-- `invoice:<id>` for date rules: each rule fires once per trigger.
CREATE TABLE automated_emails (
    email_id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    brand_id uuid NOT NULL,
    rule_id uuid NOT NULL,
    template_id uuid NOT NULL,
    trigger_key text NOT NULL,
    subject_ref text NOT NULL DEFAULT '',
    recipient text NOT NULL,
    recipient_name text NOT NULL DEFAULT '',
    client_facing boolean NOT NULL,
    data jsonb NOT NULL,
    subject text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sent', 'deferred', 'failed', 'suppressed')),
    attempts integer NOT NULL DEFAULT 0,
    due_at timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz,
    last_error text NOT NULL DEFAULT '',
    message_id text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    UNIQUE (rule_id, trigger_key)
);

CREATE INDEX automated_emails_due ON automated_emails (due_at) WHERE status IN ('queued', 'deferred');
CREATE INDEX automated_emails_brand ON automated_emails (brand_id, email_id DESC);

CREATE TABLE email_suppressions (
    brand_id uuid NOT NULL,
    email_address text NOT NULL,
    organization_id uuid NOT NULL,
    reason text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (brand_id, email_address)
);
