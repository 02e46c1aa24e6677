-- Projection versions: the version of a projection's logic that built its table (raised in code,
-- or set to 0 by `sentra-ctl projections rebuild` to ask for a rebuild), and, while the active
-- instance rebuilds it in the background, how far the new table has got.
ALTER TABLE subscriber_checkpoints ADD COLUMN version integer NOT NULL DEFAULT 1;
ALTER TABLE subscriber_checkpoints ADD COLUMN rebuild_position bigint;
