-- "As of" reads of every stream of one type in a tenant (`EventStore::read_type_as_of`: the
-- receivables and the pipeline summary at any time) walk the tenant's streams in order, instead of
-- scanning every tenant's events and sorting them.
CREATE INDEX events_tenant_streams_idx ON events (tenant_id, aggregate_type, aggregate_id, sequence);
