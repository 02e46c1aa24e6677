-- The analyst organization role: a member who may also replay the organization's event history
-- (permission analytics.events.read). The constraint kept PostgreSQL's generated name.
ALTER TABLE users DROP CONSTRAINT users_org_role_check;
ALTER TABLE users ADD CONSTRAINT users_org_role_check CHECK (org_role IN ('owner', 'admin', 'member', 'analyst'));
