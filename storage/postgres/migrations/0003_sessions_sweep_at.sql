-- authex schema, version 3: one index for the session sweep.
--
-- DeleteExpiredSessions asked for idle_expires_at <= $1 OR expires_at <= $1
-- OR revoked_at <= $1 over three single-column indexes. A custom plan
-- combines them (BitmapOr), but pgx prepares its statements, and the
-- generic plan, which cannot know $1, read the whole table twice (239 ms
-- at 1M sessions, docs/performance.md). The sweep now asks for
-- least(idle_expires_at, expires_at, revoked_at) <= $1 ORDER BY that
-- expression, which this index answers in either plan. least() skips NULLs,
-- as the OR did (a NULL time never made a session due).
--
-- The three single-column indexes served only that query; dropping them
-- keeps a rotation (which moves idle_expires_at) at one index entry to
-- update, as before.
CREATE INDEX sessions_sweep_at_idx ON sessions ((least(idle_expires_at, expires_at, revoked_at)));
DROP INDEX sessions_idle_expires_at_idx;
DROP INDEX sessions_expires_at_idx;
DROP INDEX sessions_revoked_at_idx;
