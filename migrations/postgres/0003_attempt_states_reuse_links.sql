-- erebor run store, schema 3: attempts as a cluster executor sees them, and reuse links.

-- An attempt's id at its executor (a pid, a Slurm job id), stored so a new runner can
-- re-attach to it; `handle` held the pid before. Statuses: recorded (before submission),
-- submitted, queued, running, then succeeded, failed, interrupted or lost.
ALTER TABLE attempts RENAME COLUMN handle TO external_id;
ALTER TABLE attempts ADD COLUMN submitted_at BIGINT;

-- A step reused from the cache links to the step that produced the result
-- (cached_from_run, reused_from_step); queries follow the link for its metrics.
ALTER TABLE steps ADD COLUMN reused_from_step TEXT;
UPDATE steps SET reused_from_step = (
    SELECT s.step_id FROM steps s
    WHERE s.run_id = steps.cached_from_run AND s.fingerprint = steps.fingerprint
      AND s.status = 'succeeded'
    ORDER BY s.step_id LIMIT 1
) WHERE cached_from_run IS NOT NULL;
