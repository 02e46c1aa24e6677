-- Webhooks: the organization's endpoints, the events sent to them (one message per event, its
-- `webhook-id` stable across retries and replays), one delivery per (message, endpoint) and the
-- log of every attempt.

-- Signing secrets are sealed with the endpoint's own data key (`wrapped_key`, wrapped by the
-- key-encryption key `kek_id`), like mailbox tokens.
CREATE TABLE webhook_endpoints (
    endpoint_id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    url text NOT NULL,
    description text NOT NULL DEFAULT '',
    event_types text[] NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT true,
    disabled_reason text NOT NULL DEFAULT '',
    kek_id text NOT NULL,
    wrapped_key bytea NOT NULL,
    secret bytea NOT NULL,
    previous_secret bytea,
    previous_secret_expires_at timestamptz,
    failing_since timestamptz,
    created_by uuid NOT NULL,
    request_id uuid,
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, request_id)
);

CREATE INDEX webhook_endpoints_org ON webhook_endpoints (organization_id, endpoint_id);

-- One integration event as webhooks send it: `message_id` is the `webhook-id` header.
CREATE TABLE webhook_messages (
    message_id text PRIMARY KEY,
    organization_id uuid NOT NULL,
    event_type text NOT NULL,
    payload text NOT NULL,
    occurred_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- pending -> succeeded | failed. `attempts` counts requests made; `due_at` is the next one.
CREATE TABLE webhook_deliveries (
    delivery_id uuid PRIMARY KEY,
    endpoint_id uuid NOT NULL REFERENCES webhook_endpoints ON DELETE CASCADE,
    message_id text NOT NULL REFERENCES webhook_messages,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    due_at timestamptz NOT NULL DEFAULT now(),
    -- A worker's claim on an in-flight attempt; an expired one is claimed again (crash safety).
    lease_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (due_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, delivery_id DESC);

CREATE TABLE webhook_attempts (
    delivery_id uuid NOT NULL REFERENCES webhook_deliveries ON DELETE CASCADE,
    attempt integer NOT NULL,
    attempted_at timestamptz NOT NULL,
    response_status integer NOT NULL DEFAULT 0,
    response_body text NOT NULL DEFAULT '',
    error text NOT NULL DEFAULT '',
    duration_ms integer NOT NULL DEFAULT 0,
    PRIMARY KEY (delivery_id, attempt)
);
