-- authex schema, version 1. Never edit a migration that has shipped: add
-- the next file instead.
--
-- IDs are text with the "C" collation, so that ORDER BY id is byte order,
-- as in the bbolt backend (ListUsers pages by id). Every time is timestamptz
-- (microseconds); a zero time.Time is stored as NULL.

CREATE TABLE users (
    id             text COLLATE "C" PRIMARY KEY,
    email          text NOT NULL DEFAULT '',
    -- email_lower is the Go strings.ToLower of email, written by the
    -- backend, so that case folding does not depend on the database locale.
    email_lower    text NOT NULL DEFAULT '',
    email_verified boolean NOT NULL DEFAULT false,
    name           text NOT NULL DEFAULT '',
    picture        text NOT NULL DEFAULT '',
    roles          text[] NOT NULL DEFAULT '{}',
    disabled       boolean NOT NULL DEFAULT false,
    password_hash  text NOT NULL DEFAULT '',
    created_at     timestamptz,
    updated_at     timestamptz
);

-- One verified address belongs to one user: concurrent sign-ups settle here.
CREATE UNIQUE INDEX users_verified_email_key ON users (email_lower)
    WHERE email_verified AND email_lower <> '';
CREATE INDEX users_email_lower_idx ON users (email_lower);

CREATE TABLE identities (
    id             text COLLATE "C" PRIMARY KEY,
    user_id        text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider       text NOT NULL DEFAULT '',
    issuer         text NOT NULL,
    subject        text NOT NULL,
    email          text NOT NULL DEFAULT '',
    email_verified boolean NOT NULL DEFAULT false,
    created_at     timestamptz,
    last_login_at  timestamptz,
    -- An identity belongs to exactly one user.
    CONSTRAINT identities_issuer_subject_key UNIQUE (issuer, subject)
);
CREATE INDEX identities_user_id_idx ON identities (user_id);
CREATE INDEX identities_provider_subject_idx ON identities (provider, subject);

CREATE TABLE sessions (
    id              text COLLATE "C" PRIMARY KEY,
    user_id         text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider        text NOT NULL DEFAULT '',
    client_id       text NOT NULL DEFAULT '',
    generation      bigint NOT NULL,
    rotated_at      timestamptz,
    created_at      timestamptz,
    idle_expires_at timestamptz,
    expires_at      timestamptz,
    revoked_at      timestamptz,
    revoked_reason  text NOT NULL DEFAULT '',
    user_agent      text NOT NULL DEFAULT '',
    ip              text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_idle_expires_at_idx ON sessions (idle_expires_at);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE signing_keys (
    id          text COLLATE "C" PRIMARY KEY,
    algorithm   text NOT NULL,
    private_key bytea NOT NULL,
    created_at  timestamptz,
    not_before  timestamptz,
    retired_at  timestamptz,
    expires_at  timestamptz
);

CREATE TABLE secrets (
    name  text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE audit_events (
    id         text COLLATE "C" PRIMARY KEY,
    time       timestamptz NOT NULL,
    type       text NOT NULL DEFAULT '',
    user_id    text NOT NULL DEFAULT '',
    session_id text NOT NULL DEFAULT '',
    provider   text NOT NULL DEFAULT '',
    detail     text NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_time_idx ON audit_events (time DESC, id DESC);
CREATE INDEX audit_events_user_time_idx ON audit_events (user_id, time DESC) WHERE user_id <> '';
