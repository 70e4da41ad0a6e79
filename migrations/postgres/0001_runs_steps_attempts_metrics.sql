-- erebor run store (Postgres), schema 1: runs, steps, attempts, artifacts, metrics.
-- Times are milliseconds since the Unix epoch (UTC). JSON is stored as text.

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    workflow_name   TEXT NOT NULL,
    workflow_file   TEXT NOT NULL,
    workflow_text   TEXT NOT NULL,
    workflow_hash   TEXT NOT NULL,
    params          TEXT NOT NULL,
    options         TEXT NOT NULL,
    status          TEXT NOT NULL,
    error           TEXT,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    host            TEXT NOT NULL,
    runner_pid      BIGINT,
    heartbeat_at    BIGINT,
    git_commit      TEXT,
    git_dirty       BIGINT,
    erebor_version  TEXT NOT NULL,
    run_dir         TEXT NOT NULL
);
CREATE INDEX runs_by_workflow ON runs (workflow_name, created_at);
CREATE INDEX runs_by_created ON runs (created_at);

CREATE TABLE steps (
    run_id              TEXT NOT NULL REFERENCES runs (id),
    step_id             TEXT NOT NULL,
    base_id             TEXT NOT NULL,
    arm                 TEXT NOT NULL,
    kind                TEXT NOT NULL,
    position            BIGINT NOT NULL,
    needs               TEXT NOT NULL,
    config              TEXT NOT NULL,
    status              TEXT NOT NULL,
    fingerprint         TEXT,
    fingerprint_inputs  TEXT,
    cached_from_run     TEXT,
    outputs             TEXT,
    failure_class       TEXT,
    failure_message     TEXT,
    started_at          BIGINT,
    finished_at         BIGINT,
    PRIMARY KEY (run_id, step_id)
);
CREATE INDEX steps_by_fingerprint ON steps (fingerprint, status);

CREATE TABLE attempts (
    id               TEXT PRIMARY KEY,
    run_id           TEXT NOT NULL,
    step_id          TEXT NOT NULL,
    number           BIGINT NOT NULL,
    status           TEXT NOT NULL,
    executor         TEXT NOT NULL,
    handle           TEXT,
    host             TEXT NOT NULL,
    dir              TEXT NOT NULL,
    gpus             TEXT NOT NULL,
    started_at       BIGINT NOT NULL,
    finished_at      BIGINT,
    exit_code        BIGINT,
    failure_class    TEXT,
    failure_message  TEXT,
    UNIQUE (run_id, step_id, number),
    FOREIGN KEY (run_id, step_id) REFERENCES steps (run_id, step_id)
);

CREATE TABLE artifacts (
    id           TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    step_id      TEXT NOT NULL,
    attempt_id   TEXT NOT NULL REFERENCES attempts (id),
    name         TEXT NOT NULL,
    output_type  TEXT NOT NULL,
    path         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    bytes        BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (attempt_id, name)
);
CREATE INDEX artifacts_by_step ON artifacts (run_id, step_id);
CREATE INDEX artifacts_by_sha ON artifacts (sha256);

CREATE TABLE metrics (
    run_id       TEXT NOT NULL,
    step_id      TEXT NOT NULL,
    attempt_id   TEXT NOT NULL,
    key          TEXT NOT NULL,
    idx          BIGINT NOT NULL,
    value        DOUBLE PRECISION,
    recorded_at  BIGINT NOT NULL,
    PRIMARY KEY (run_id, step_id, attempt_id, key, idx)
);
