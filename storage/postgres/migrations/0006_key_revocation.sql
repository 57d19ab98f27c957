-- authex schema, version 6: emergency revocation of a signing key.
--
-- A revoked key leaves the JWKS and verifies nothing from revoked_at on;
-- NULL: never revoked. Instances poll the keys every second, so a
-- revocation made on one reaches every other within about that.
ALTER TABLE signing_keys ADD COLUMN revoked_at timestamptz;
