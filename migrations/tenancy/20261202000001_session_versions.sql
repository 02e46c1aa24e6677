-- Session versions: an access token stands only while the version it was issued under (claim sv)
-- is its subject's current one. Bumped when a user's rights change or the user is deactivated,
-- so revocation takes effect within seconds instead of when the token expires.
ALTER TABLE users ADD COLUMN session_version bigint NOT NULL DEFAULT 0;
ALTER TABLE portal_users ADD COLUMN session_version bigint NOT NULL DEFAULT 0;
