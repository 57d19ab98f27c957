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
		_, err := s.db.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
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
func (s *Store) RotateSession(ctx context.Context, id string, from uint64, at, idleExpiresAt time.Time) (storage.Session, error) {
	var sess storage.Session
	err := s.do(ctx, func() error {
		var err error
		sess, err = scanSession(s.db.QueryRow(ctx, `UPDATE sessions
			SET generation = generation + 1, rotated_at = $3, idle_expires_at = $4
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
				UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL RETURNING 1)
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
		tag, err := s.db.Exec(ctx, `UPDATE sessions SET revoked_at = $3, revoked_reason = $4
			WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL AND idle_expires_at > $3 AND expires_at > $3`,
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

// DeleteExpiredSessions deletes sessions past a limit, or revoked, at now,
// sweepChunk rows per statement, earliest first: the least() of the three
// times is what sessions_sweep_at_idx indexes (migrations/0003), and
// = ANY(ARRAY(...)) makes the ids a value the primary key looks up, so each
// statement reads only the rows it deletes whatever plan it gets (a
// generic plan cannot estimate LIMIT $2 and hash-joined the whole table).
// The outer condition is checked again on a row a concurrent rotation has
// just moved, so the sweep never deletes a session refreshed meanwhile.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	deleted := 0
	for {
		var n int64
		err := s.do(ctx, func() error {
			tag, err := s.db.Exec(ctx, `DELETE FROM sessions
				WHERE id = ANY(ARRAY(
					SELECT id FROM sessions
					WHERE least(idle_expires_at, expires_at, revoked_at) <= $1
					ORDER BY least(idle_expires_at, expires_at, revoked_at)
					LIMIT $2))
				AND least(idle_expires_at, expires_at, revoked_at) <= $1`, ts(now), sweepChunk)
			n = tag.RowsAffected()
			return err
		})
		if err != nil {
			return deleted, fmt.Errorf("postgres: delete expired sessions: %w", err)
		}
		deleted += int(n)
		if n < sweepChunk {
			return deleted, nil
		}
	}
}
