-- erebor run store, schema 4: the MT-Bench judgment cache (issue 11). One row per judge reply,
-- keyed by the endpoint URL, the sha256 of the exact request body and the repeat index, so a
-- re-run, a resume or another workflow asking the same judgment does not pay for it again.
-- No API key is stored: it travels in a header, never in the body.

CREATE TABLE judgments (
    endpoint        TEXT NOT NULL,
    request_sha256  TEXT NOT NULL,
    repeat_index    BIGINT NOT NULL,
    request_body    TEXT NOT NULL,
    response_model  TEXT,
    content         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (endpoint, request_sha256, repeat_index)
);
