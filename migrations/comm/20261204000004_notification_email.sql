-- A notification kind can also come by email (through automation's mailer).
ALTER TABLE notification_preferences DROP CONSTRAINT notification_preferences_channel_check;
ALTER TABLE notification_preferences ADD CONSTRAINT notification_preferences_channel_check
    CHECK (channel IN ('in_app', 'email', 'off'));

-- Notification emails belong to no brand's rules: nullable brand, rule and template.
ALTER TABLE automated_emails ALTER COLUMN brand_id DROP NOT NULL;
