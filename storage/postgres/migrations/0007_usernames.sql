-- authex schema, version 7: usernames (issue 14).
--
-- username is kept as given; username_key is storage.UsernameKey of it
-- (ASCII case folding only, done in Go so that it does not depend on the
-- database locale), unique among users that have one. given_name and
-- family_name are the name in two parts, for the compat profiles that
-- show first_name and last_name.
ALTER TABLE users ADD COLUMN username text NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN username_key text NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN given_name text NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN family_name text NOT NULL DEFAULT '';
CREATE UNIQUE INDEX users_username_key ON users (username_key) WHERE username_key <> '';
