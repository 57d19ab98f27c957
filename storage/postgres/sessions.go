package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/authex/authex/storage"
)

const sessionColumns = `id, user_id, provider, client_id, generation, rotated_at, created_at, idle_expires_at, expires_at, revoked_at, revoked_reason, user_agent, ip`

// sweepAtOf is the sweep_at (migrations/0010) of a session with these
// times: when it becomes due, 'infinity' when never. The casts type the
// parameters it may be given, which least() alone leaves unknown.
func sweepAtOf(idleExpiresAt, expiresAt, revokedAt string) string {
	return `coalesce(least(` + idleExpiresAt + `::timestamptz, ` + expiresAt + `::timestamptz, ` + revokedAt + `::timestamptz), 'infinity')`
}

// sweepAtLowered is the sweep_at of a row whose update may bring a time
// before it: the earlier of the two. An update that leaves it unchanged
// (a rotation, whose idle limit moves later) can be HOT, as sweep_at is
// the only column it writes that an index reads; one that lowers it (a
// revocation) cannot, and need not be.
func sweepAtLowered(alias, newTime string) string {
	return `least(` + alias + `sweep_at, ` + newTime + `)`
}

func scanSession(row pgx.Row) (storage.Session, error) {
	var s storage.Session
	var gen int64
	var rotated, created, idle, expires, revoked pgtype.Timestamptz
	err := row.Scan(&s.ID, &s.UserID, &s.Provider, &s.ClientID, &gen, &rotated, &created, &idle, &expires, &revoked, &s.RevokedReason, &s.UserAgent, &s.IP)
	s.Generation = uint64(gen)
	s.RotatedAt, s.CreatedAt, s.IdleExpiresAt, s.ExpiresAt, s.RevokedAt = fromTS(rotated), fromTS(created), fromTS(idle), fromTS(expires), fromTS(revoked)
	return s, err
}

// CreateSession inserts a session; the foreign key answers ErrNotFound for
// a missing user.
func (s *Store) CreateSession(ctx context.Context, sess storage.Session) error {
	if sess.ID == "" {
		return errEmpty("session id")
	}
	err := s.do(ctx, func() error {
		_, err := s.db.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`, sweep_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, `+sweepAtOf("$8", "$9", "$10")+`)`,
			sess.ID, sess.UserID, sess.Provider, sess.ClientID, int64(sess.Generation), ts(sess.RotatedAt), ts(sess.CreatedAt),
			ts(sess.IdleExpiresAt), ts(sess.ExpiresAt), ts(sess.RevokedAt), sess.RevokedReason, sess.UserAgent, sess.IP)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: create session %q: %w", sess.ID, err)
	}
	return nil
}

func (s *Store) getSession(ctx context.Context, id string) (storage.Session, error) {
	var sess storage.Session
	err := s.do(ctx, func() error {
		var err error
		sess, err = scanSession(s.db.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Session{}, errNotFound("session", id)
	}
	return sess, err
}

// GetSession returns the session with id.
func (s *Store) GetSession(ctx context.Context, id string) (storage.Session, error) {
	return s.getSession(ctx, id)
}

// RotateSession is one conditional UPDATE: the row lock and PostgreSQL's
// re-check of the WHERE clause on the newest row version make exactly one
// of any number of concurrent rotations (on any instance) win. A loser reads
// the session after the winner committed, so it can answer as the grace does.
// It writes no indexed value (sweepAtLowered), so it is a HOT update when
// the page has room.
func (s *Store) RotateSession(ctx context.Context, id string, from uint64, at, idleExpiresAt time.Time) (storage.Session, error) {
	var sess storage.Session
	err := s.do(ctx, func() error {
		var err error
		sess, err = scanSession(s.db.QueryRow(ctx, `UPDATE sessions
			SET generation = generation + 1, rotated_at = $3, idle_expires_at = $4, sweep_at = `+sweepAtLowered("", "$4")+`
			WHERE id = $1 AND generation = $2 AND revoked_at IS NULL AND idle_expires_at > $3 AND expires_at > $3
			RETURNING `+sessionColumns, id, int64(from), ts(at), ts(idleExpiresAt)))
		return err
	})
	if err == nil {
		return sess, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return storage.Session{}, fmt.Errorf("postgres: rotate session %q: %w", id, err)
	}
	stored, err := s.getSession(ctx, id)
	if err != nil {
		return storage.Session{}, err
	}
	return stored, fmt.Errorf("postgres: rotate session %q from %d: %w", id, from, storage.ErrStale)
}

// RevokeSession sets revoked_at unless it is set already.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time, reason string) error {
	var exists bool
	err := s.do(ctx, func() error {
		return s.db.QueryRow(ctx, `WITH revoked AS (
				UPDATE sessions SET revoked_at = $2, revoked_reason = $3, sweep_at = `+sweepAtLowered("", "$2")+`
				WHERE id = $1 AND revoked_at IS NULL RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1) OR EXISTS (SELECT 1 FROM revoked)`,
			id, ts(at), reason).Scan(&exists)
	})
	if err != nil {
		return fmt.Errorf("postgres: revoke session %q: %w", id, err)
	}
	if !exists {
		return errNotFound("session", id)
	}
	return nil
}

// RevokeUserSessions revokes the user's live sessions but except.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, except string, at time.Time, reason string) (int, error) {
	var n int64
	err := s.do(ctx, func() error {
		// The rows are locked in id order, as a group of rotations locks
		// them (rotateGroupSQL): in the plan's order, this and a group
		// with two of the user's sessions could each wait for the other.
		tag, err := s.db.Exec(ctx, `UPDATE sessions SET revoked_at = $3, revoked_reason = $4, sweep_at = `+sweepAtLowered("", "$3")+`
			WHERE id IN (SELECT id FROM sessions WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL ORDER BY id FOR NO KEY UPDATE)
			  AND revoked_at IS NULL AND idle_expires_at > $3 AND expires_at > $3`,
			userID, except, ts(at), reason)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: revoke sessions of %q: %w", userID, err)
	}
	return int(n), nil
}

// ListSessions returns the user's sessions, newest first.
func (s *Store) ListSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	var out []storage.Session
	err := s.do(ctx, func() error {
		rows, err := s.db.Query(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE user_id = $1 ORDER BY created_at DESC, id DESC`, userID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Session, error) { return scanSession(r) })
		return err
	})
	return out, err
}

// DeleteExpiredSessions deletes sessions past a limit, or revoked, at now.
// sessions_sweep_at_idx (migrations/0010) finds the rows whose sweep_at has
// passed, sweepChunk per statement, earliest first; of those, the statement
// deletes the ones due at now (the exact test, re-checked on a row a
// concurrent rotation has just moved, so the sweep never deletes a session
// refreshed meanwhile) and moves sweep_at to the exact time for the others
// (rotated since sweep_at was written), so they leave the set. The ids are
// = ANY(ARRAY(...)), a value the primary key looks up, so each statement
// reads only its rows whatever plan it gets (a generic plan cannot
// estimate LIMIT $2 and hash-joined the whole table).
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	due := `least(idle_expires_at, expires_at, revoked_at) <= $1`
	deleted := 0
	for {
		var gone, moved int
		err := s.do(ctx, func() error {
			return s.db.QueryRow(ctx, `WITH passed AS (
					SELECT id FROM sessions WHERE sweep_at <= $1 ORDER BY sweep_at LIMIT $2
				), gone AS (
					DELETE FROM sessions WHERE id = ANY(ARRAY(SELECT id FROM passed)) AND `+due+`
					RETURNING 1
				), moved AS (
					UPDATE sessions SET sweep_at = `+sweepAtOf("idle_expires_at", "expires_at", "revoked_at")+`
					WHERE id = ANY(ARRAY(SELECT id FROM passed)) AND sweep_at <= $1 AND NOT coalesce(`+due+`, false)
					RETURNING 1
				)
				SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM moved)`, ts(now), sweepChunk).Scan(&gone, &moved)
		})
		if err != nil {
			return deleted, fmt.Errorf("postgres: delete expired sessions: %w", err)
		}
		deleted += gone
		// A row changed by a concurrent write between the statement's
		// snapshot and its turn may be neither: the next sweep takes it.
		if gone+moved < sweepChunk {
			return deleted, nil
		}
	}
}
