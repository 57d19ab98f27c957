-- authex schema, version 10: a session rotation is a HOT update.
--
-- sessions_sweep_at_idx (migration 3) indexed least(idle_expires_at,
-- expires_at, revoked_at), and PostgreSQL 15 updates a row without new
-- index entries (HOT) only when no column an index reads changes value,
-- even inside an expression. A rotation moves idle_expires_at, so each one
-- wrote a new entry in every index of sessions (three) and their WAL.
--
-- The sweep now reads sweep_at, a time at or before the one the session
-- becomes due (the least of its three times, NULLs skipped): written at
-- insert, lowered by a revocation (or by a rotation that would bring the
-- idle limit before it, which never happens with a fixed refresh TTL), and
-- left alone by an ordinary rotation, so the row's indexed values do not
-- change. The sweep deletes the rows due at its now among those whose
-- sweep_at has passed, and moves sweep_at forward to the exact time for
-- the others: a session refreshed all along is looked at once per idle
-- TTL. 'infinity' marks a session with none of the three times. A row an
-- authex older than this migration inserts during a rolling deploy gets
-- the default, '-infinity': due at once, the next sweep sets its time.
-- (Such an authex also revokes without lowering sweep_at: those sessions
-- are deleted when their idle or absolute limit passes, not sooner.)
--
-- The new column is filled by rewriting the table (ALTER TYPE to the same
-- type with USING rewrites every row once, into fresh pages, and rebuilds
-- the indexes) rather than by an UPDATE, which would leave a dead copy of
-- every row behind. ADD COLUMN holds the table's ACCESS EXCLUSIVE lock
-- until the migration commits either way. fillfactor 80 leaves a fifth of
-- each page free, so the new version of a rotated row fits on its page
-- (a HOT update must stay on the page); the rewrite applies it to the rows
-- already there.
DROP INDEX sessions_sweep_at_idx;
ALTER TABLE sessions SET (fillfactor = 80);
ALTER TABLE sessions ADD COLUMN sweep_at timestamptz NOT NULL DEFAULT '-infinity';
ALTER TABLE sessions ALTER COLUMN sweep_at TYPE timestamptz
    USING coalesce(least(idle_expires_at, expires_at, revoked_at), 'infinity');
CREATE INDEX sessions_sweep_at_idx ON sessions (sweep_at);
