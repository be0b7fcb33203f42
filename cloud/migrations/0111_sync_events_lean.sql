-- Ingestion writes every event of every node into sync_events: each index on it is paid
-- for on every insert (CPU and WAL on the hot path of issue #7). The (venue_id, at) index
-- was made for a per-venue event browser that nothing queries (the projections serve the
-- venue views); the primary key on id and the unique (node_id, seq) stay, as the ingest's
-- exactly-once check and its per-node fold read through them. Add the index back with the
-- feature that needs it.
DROP INDEX IF EXISTS sync_events_venue;
