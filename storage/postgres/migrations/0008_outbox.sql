-- authex schema: the webhook outbox (issue 16).
--
-- One row per (event, endpoint), written in the same transaction as the
-- change it describes; deleted once delivered. No foreign key to users: a
-- user.deleted event outlives its user.
CREATE TABLE outbox (
    id              text COLLATE "C" NOT NULL,
    endpoint        text COLLATE "C" NOT NULL,
    user_id         text COLLATE "C" NOT NULL,
    type            text        NOT NULL,
    payload         bytea       NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    lease_owner     text        NOT NULL DEFAULT '',
    lease_until     timestamptz,
    last_error      text        NOT NULL DEFAULT '',
    failed_at       timestamptz,
    PRIMARY KEY (id, endpoint)
);
-- The head of each (endpoint, user): the oldest pending record.
CREATE INDEX outbox_pending_idx ON outbox (endpoint, user_id, id) WHERE failed_at IS NULL;
