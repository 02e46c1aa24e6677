-- Comm: connected mailboxes, their sync state, imported mail, brand aliases and the address
-- index that links mail to Sales' leads and clients.

-- A staff user's connected mailbox. Tokens are sealed with the mailbox's own data key
-- (`wrapped_key`, wrapped by the key-encryption key `kek_id`); see sentra-crypto.
CREATE TABLE mailboxes (
    mailbox_id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    user_id uuid NOT NULL,
    provider text NOT NULL DEFAULT 'gmail',
    email_address text NOT NULL,
    kek_id text NOT NULL,
    wrapped_key bytea NOT NULL,
    refresh_token bytea NOT NULL,
    access_token bytea,
    access_expires_at timestamptz,
    -- pending | listing | importing | active | needs_reauth
    stage text NOT NULL DEFAULT 'pending',
    -- The history id incremental sync continues from (set when a full sync completes).
    history_id bigint,
    -- The profile's history id when the running full sync started: where incremental sync
    -- continues once it completes, so nothing arriving during the listing is missed.
    full_sync_history_id bigint,
    -- The listing's next page; NULL at the start of a listing.
    list_page_token text,
    due_at timestamptz NOT NULL DEFAULT now(),
    throttled_until timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_error text,
    last_synced_at timestamptz,
    quota_units bigint NOT NULL DEFAULT 0,
    -- One worker per mailbox across replicas: whoever holds an unexpired lease.
    lease_owner uuid,
    lease_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, user_id, email_address)
);

CREATE INDEX mailboxes_due ON mailboxes (due_at) WHERE stage <> 'needs_reauth';

-- A consent in progress: the PKCE verifier stays here, never in the browser or the URL.
CREATE TABLE mailbox_connections (
    state_id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    user_id uuid NOT NULL,
    code_verifier text NOT NULL,
    -- Where the provider sends the browser back; the code exchange must name the same.
    redirect_uri text NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Provider message ids listed (full sync) or announced by history (incremental) and not yet
-- imported: the import checkpoint. A crash leaves them here; the next pass imports them.
CREATE TABLE sync_queue (
    mailbox_id uuid NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
    provider_id text NOT NULL,
    PRIMARY KEY (mailbox_id, provider_id)
);

-- What each sync pass did, for operators and the mailbox's owner.
CREATE TABLE sync_log (
    id bigserial PRIMARY KEY,
    mailbox_id uuid NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
    at timestamptz NOT NULL DEFAULT now(),
    kind text NOT NULL,
    detail text NOT NULL
);

CREATE INDEX sync_log_mailbox ON sync_log (mailbox_id, id);

CREATE TABLE threads (
    thread_id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    mailbox_id uuid NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
    subject text NOT NULL DEFAULT '',
    message_count integer NOT NULL DEFAULT 0,
    last_message_at timestamptz,
    snippet text NOT NULL DEFAULT ''
);

-- The provider's thread ids of each thread: a thread is found by its Gmail thread id, or, for a
-- provider thread seen the first time, by the References of its message (a reply Gmail filed
-- elsewhere joins its conversation), and then remembered under that id too.
CREATE TABLE thread_keys (
    mailbox_id uuid NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
    provider_thread_id text NOT NULL,
    thread_id uuid NOT NULL,
    PRIMARY KEY (mailbox_id, provider_thread_id)
);

CREATE TABLE messages (
    message_id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    mailbox_id uuid NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
    thread_id uuid NOT NULL REFERENCES threads ON DELETE CASCADE,
    provider_id text NOT NULL,
    rfc_message_id text NOT NULL DEFAULT '',
    in_reply_to text NOT NULL DEFAULT '',
    "references" text[] NOT NULL DEFAULT '{}',
    from_name text NOT NULL DEFAULT '',
    from_address text NOT NULL DEFAULT '',
    to_addresses jsonb NOT NULL DEFAULT '[]',
    cc_addresses jsonb NOT NULL DEFAULT '[]',
    subject text NOT NULL DEFAULT '',
    text_body text NOT NULL DEFAULT '',
    html_body text NOT NULL DEFAULT '',
    labels text[] NOT NULL DEFAULT '{}',
    sent_at timestamptz NOT NULL,
    attachments jsonb NOT NULL DEFAULT '[]',
    parse_error boolean NOT NULL DEFAULT false,
    size_bytes integer NOT NULL DEFAULT 0,
    -- Idempotency key of SendEmail; NULL for imported mail.
    request_id text,
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', coalesce(subject, '')), 'A')
            || setweight(to_tsvector('simple', coalesce(from_name, '') || ' ' || coalesce(from_address, '')
                || ' ' || coalesce(to_addresses::text, '') || ' ' || coalesce(cc_addresses::text, '')), 'B')
            || setweight(to_tsvector('simple', left(coalesce(text_body, ''), 100000)), 'C')
    ) STORED,
    UNIQUE (mailbox_id, provider_id),
    UNIQUE (organization_id, request_id)
);

CREATE INDEX messages_thread ON messages (thread_id, sent_at);
CREATE INDEX messages_rfc_id ON messages (mailbox_id, rfc_message_id);
CREATE INDEX messages_search ON messages USING gin (search);

-- Every address a message names in From, To or Cc (lower case): joined with `contacts` it
-- links mail to leads and clients, including mail imported before the lead existed.
CREATE TABLE message_addresses (
    message_id uuid NOT NULL REFERENCES messages ON DELETE CASCADE,
    organization_id uuid NOT NULL,
    address text NOT NULL,
    PRIMARY KEY (message_id, address)
);

CREATE INDEX message_addresses_lookup ON message_addresses (organization_id, address);

-- The address index: each lead's and client's contact address, kept from Sales' events.
CREATE TABLE contacts (
    kind text NOT NULL CHECK (kind IN ('lead', 'client')),
    record_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    brand_id uuid NOT NULL,
    address text NOT NULL,
    PRIMARY KEY (kind, record_id)
);

CREATE INDEX contacts_address ON contacts (organization_id, address);

CREATE TABLE email_aliases (
    alias_id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    brand_id uuid NOT NULL,
    email_address text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    mailbox_id uuid NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
    verified boolean NOT NULL DEFAULT false,
    verified_at timestamptz,
    is_default boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (brand_id, email_address)
);

CREATE UNIQUE INDEX email_aliases_one_default ON email_aliases (brand_id) WHERE is_default;

-- Transactional outbox (as Tenancy's): events written in the same transaction as the change they
-- announce (`comm.mailbox.needs_reauth`), published by the bus relay in `position` order.
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
