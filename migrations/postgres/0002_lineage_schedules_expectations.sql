-- erebor run store (Postgres), schema 2: artifact lineage, schedules, expectation results.

CREATE TABLE artifact_inputs (
    artifact_id        TEXT NOT NULL REFERENCES artifacts (id),
    input_path         TEXT NOT NULL,
    input_sha256       TEXT NOT NULL,
    input_artifact_id  TEXT,
    PRIMARY KEY (artifact_id, input_path)
);

CREATE TABLE schedules (
    name           TEXT PRIMARY KEY,
    workflow_file  TEXT NOT NULL,
    cron           TEXT NOT NULL,
    params         TEXT NOT NULL,
    enabled        BIGINT NOT NULL,
    last_run_id    TEXT,
    next_run_at    BIGINT,
    created_at     BIGINT NOT NULL
);

ALTER TABLE steps ADD COLUMN expect_failures TEXT;
