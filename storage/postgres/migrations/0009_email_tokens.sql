-- authex schema: email tokens (storage.EmailTokens), the single-use
-- tokens mailed to verify an email or reset a password. Only a SHA-256 of
-- each token is stored (token_hash, hex); binding is what must still hold
-- when the token is spent (a fingerprint of the password hash for a reset
-- token). No foreign key to users: a token of a deleted user finds no
-- user when spent and is refused.
CREATE TABLE email_tokens (
    token_hash text PRIMARY KEY,
    purpose    text NOT NULL,
    user_id    text NOT NULL,
    email      text NOT NULL,
    binding    text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX email_tokens_expires_at_idx ON email_tokens (expires_at);
