-- Notifications for staff (the bell): one row per (event, recipient), so a redelivered bus
-- message never notifies twice; per-person channel preferences per kind.

CREATE TABLE notifications (
    notification_id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    user_id uuid NOT NULL,
    kind text NOT NULL,
    title text NOT NULL,
    subject text NOT NULL DEFAULT '',
    brand_id uuid,
    event_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at timestamptz,
    UNIQUE (event_id, user_id)
);

CREATE INDEX notifications_inbox ON notifications (organization_id, user_id, created_at DESC, notification_id DESC);

CREATE TABLE notification_preferences (
    user_id uuid NOT NULL,
    kind text NOT NULL,
    channel text NOT NULL CHECK (channel IN ('in_app', 'off')),
    PRIMARY KEY (user_id, kind)
);

-- Who each lead is assigned to (and its name and brand), from Sales' events: whom a stage change
-- notifies.
CREATE TABLE lead_assignees (
    lead_id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    brand_id uuid NOT NULL,
    contact_name text NOT NULL DEFAULT '',
    assignee_id uuid
);
