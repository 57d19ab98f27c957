-- authex schema, version 5: what several instances must share to refuse a
-- replayed provider credential and to throttle password guesses.
--
-- credentials: every accepted provider credential (id_token), named by a
-- SHA-256 of its key (issuer and jti, or issuer and token hash), until it
-- expires; a second use is refused. The primary key decides which of two
-- concurrent uses wins.
CREATE TABLE credentials (
    key_hash   bytea PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX credentials_expires_at_idx ON credentials (expires_at);

-- throttle_buckets: token buckets of the password throttle (per client
-- address, per account), taken and refilled by one atomic statement.
-- full_at is when the bucket is full again: from then on the row changes
-- nothing and the sweep deletes it.
CREATE TABLE throttle_buckets (
    key        bytea PRIMARY KEY,
    tokens     double precision NOT NULL,
    updated_at timestamptz NOT NULL,
    full_at    timestamptz NOT NULL,
    granted    boolean NOT NULL
);
CREATE INDEX throttle_buckets_full_at_idx ON throttle_buckets (full_at);
