-- The system update state each node reports with its heartbeats, for the fleet view.
-- NULL state: the node has not reported one (an older node, or one whose updates are not
-- managed because it is not an A/B appliance).
ALTER TABLE nodes ADD COLUMN IF NOT EXISTS update_state text;
ALTER TABLE nodes ADD COLUMN IF NOT EXISTS update_progress_pct smallint
    CHECK (update_progress_pct BETWEEN 0 AND 100);
ALTER TABLE nodes ADD COLUMN IF NOT EXISTS update_target_version text;
ALTER TABLE nodes ADD COLUMN IF NOT EXISTS update_error text;
