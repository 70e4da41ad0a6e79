-- erebor run store (Postgres), schema 5: schedules that fire (time zone, policies, fresh steps,
-- the webhook by reference, the regression band) and one row per fired, failed or skipped tick.

-- IANA time zone the cron expression is read in.
ALTER TABLE schedules ADD COLUMN tz TEXT NOT NULL DEFAULT 'UTC';
-- What happens to ticks the scheduler missed while it was down: skip | latest | all:N.
ALTER TABLE schedules ADD COLUMN missed TEXT NOT NULL DEFAULT 'skip';
-- What happens to a tick while an earlier run of the schedule is unfinished: skip | queue | allow.
ALTER TABLE schedules ADD COLUMN overlap TEXT NOT NULL DEFAULT 'skip';
-- Steps that must not come from the cache (JSON list; ["*"] means every step).
ALTER TABLE schedules ADD COLUMN fresh TEXT NOT NULL DEFAULT '[]';
-- The NAME of the environment variable holding the webhook URL (the URL is a secret: never stored).
ALTER TABLE schedules ADD COLUMN notify_env TEXT;
-- Regression band: median +- k * MAD of the earlier fresh runs.
ALTER TABLE schedules ADD COLUMN regression_k DOUBLE PRECISION NOT NULL DEFAULT 3.0;
-- Ticks at or before this time (ms) have been considered (fired, skipped or left to the policy).
ALTER TABLE schedules ADD COLUMN seen_until BIGINT;

-- One row per (schedule, tick time): whoever inserts it (INSERT ... ON CONFLICT DO NOTHING)
-- fires the tick. run_id is chosen before the run exists, so a restarted scheduler can tell a
-- claimed tick whose run never started from one whose run did.
CREATE TABLE schedule_ticks (
    schedule       TEXT NOT NULL,
    tick_at        BIGINT NOT NULL,
    -- claimed (inserted, run not started yet) | started | failed (error says why) | skipped
    state          TEXT NOT NULL,
    run_id         TEXT,
    error          TEXT,
    -- the scheduler that owns the tick, and when it last said it is alive
    owner_host     TEXT NOT NULL,
    owner_pid      BIGINT NOT NULL,
    owner_seen_at  BIGINT NOT NULL,
    claimed_at     BIGINT NOT NULL,
    started_at     BIGINT,
    -- after the run ended: whether it measured (its fresh steps ran, none reused), the values
    -- of its `expect:` metrics (JSON), whether it regressed and why (JSON list)
    evaluated_at   BIGINT,
    fresh          BIGINT,
    measurements   TEXT,
    regressed      BIGINT,
    reasons        TEXT,
    notified_at    BIGINT,
    notify_error   TEXT,
    UNIQUE (schedule, tick_at)
);
CREATE INDEX schedule_ticks_by_run ON schedule_ticks (run_id);
CREATE INDEX schedule_ticks_by_state ON schedule_ticks (state, owner_host);
