-- Tenancy: organizations (tenants), brands, staff users, brand roles, portal identities,
-- sign-in state and the transactional outbox. Runs in the `tenancy` schema (search_path).

CREATE TABLE organizations (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    email           text NOT NULL,
    display_name    text NOT NULL,
    password_hash   text,
    org_role        text NOT NULL CHECK (org_role IN ('owner', 'admin', 'member')),
    state           text NOT NULL CHECK (state IN ('invited', 'active', 'deactivated')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, email)
);
CREATE INDEX users_email ON users (email);

CREATE TABLE invitations (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id),
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz
);

CREATE TABLE brands (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    name             text NOT NULL,
    domain           text NOT NULL,
    display_name     text NOT NULL,
    logo_url         text NOT NULL DEFAULT '',
    primary_color    text NOT NULL DEFAULT '',
    support_email    text NOT NULL DEFAULT '',
    invoice_prefix   text NOT NULL,
    default_currency text NOT NULL,
    time_zone        text NOT NULL,
    email_aliases    text[] NOT NULL DEFAULT '{}',
    archived_at      timestamptz,
    version          bigint NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- A domain belongs to at most one live brand across all tenants; archiving releases it.
CREATE UNIQUE INDEX brands_live_domain ON brands (domain) WHERE archived_at IS NULL;
CREATE INDEX brands_org_name ON brands (organization_id, name, id);

CREATE TABLE brand_access (
    user_id         uuid NOT NULL REFERENCES users (id),
    brand_id        uuid NOT NULL REFERENCES brands (id),
    organization_id uuid NOT NULL REFERENCES organizations (id),
    role            text NOT NULL CHECK (role IN ('manager', 'agent', 'finance', 'viewer')),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, brand_id)
);
CREATE INDEX brand_access_brand ON brand_access (brand_id);

CREATE TABLE portal_users (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    brand_id        uuid NOT NULL REFERENCES brands (id),
    client_id       uuid NOT NULL,
    email           text NOT NULL,
    display_name    text NOT NULL,
    password_hash   text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (brand_id, email)
);

-- Refresh tokens are stored hashed; a family is every token descended from one login.
CREATE TABLE refresh_tokens (
    id              uuid PRIMARY KEY,
    family_id       uuid NOT NULL,
    token_hash      bytea NOT NULL UNIQUE,
    subject_kind    text NOT NULL CHECK (subject_kind IN ('staff', 'client')),
    subject_id      uuid NOT NULL,
    organization_id uuid NOT NULL,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    revoked_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_subject ON refresh_tokens (subject_id);

-- Ed25519 signing keys. The newest active key signs; every key verifies until `expires_at`.
CREATE TABLE signing_keys (
    kid         text PRIMARY KEY,
    private_der bytea NOT NULL,
    public_x    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    retire_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- Idempotent creates: the first result of a request id is returned to every retry.
CREATE TABLE idempotency_keys (
    scope       text NOT NULL,
    request_id  text NOT NULL,
    resource_id uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, request_id)
);

-- Transactional outbox: written in the same transaction as the change it announces; the event
-- bus relay publishes rows in `position` order and marks them published.
CREATE TABLE outbox (
    position     bigserial PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    routing_key  text NOT NULL,
    tenant_id    uuid NOT NULL,
    aggregate_id uuid NOT NULL,
    payload      jsonb NOT NULL,
    metadata     jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (position) WHERE published_at IS NULL;
