package bolt

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
)

// live reports whether a session can still be rotated at t.
func live(s storage.Session, t time.Time) bool { return !s.Revoked() && !s.Expired(t) }

// removable reports whether the sweep may delete s at now.
func removable(s storage.Session, now time.Time) bool {
	return s.Expired(now) || (s.Revoked() && !now.Before(s.RevokedAt))
}

func getSession(tx *bolt.Tx, id string) (storage.Session, error) {
	v := tx.Bucket(bucketKeySessions).Get([]byte(id))
	if v == nil {
		return storage.Session{}, errNotFound("session", id)
	}
	return decodeSession(v)
}

func putSession(tx *bolt.Tx, s storage.Session) error {
	return tx.Bucket(bucketKeySessions).Put([]byte(s.ID), encodeSession(s))
}

// deleteSession removes a session record and its user_sessions and
// session_sweep entries.
func deleteSession(tx *bolt.Tx, sess storage.Session) error {
	if err := tx.Bucket(bucketKeySessions).Delete([]byte(sess.ID)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketKeySessionSweep).Delete(sweepKey(sess)); err != nil {
		return err
	}
	return tx.Bucket(bucketKeyUserSessions).Delete(childKey(sess.UserID, sess.ID))
}

// CreateSession writes a session and its user_sessions and session_sweep
// entries, through Batch.
func (s *Store) CreateSession(ctx context.Context, sess storage.Session) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if sess.ID == "" {
		return errEmpty("session id")
	}
	encoded := encodeSession(sess) // before the one writer's lock
	var outcome error
	err := s.batch(func(tx *bolt.Tx) error {
		var err error
		outcome, err = createEncodedSession(tx, sess, encoded)
		return err
	})
	if err != nil {
		return fmt.Errorf("bolt: create session %q: %w", sess.ID, err)
	}
	return outcome
}

// GetSession returns the session with id.
func (s *Store) GetSession(ctx context.Context, id string) (storage.Session, error) {
	if err := ctx.Err(); err != nil {
		return storage.Session{}, err
	}
	var sess storage.Session
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		sess, err = getSession(tx, id)
		return err
	})
	return sess, err
}

// RotateSession is the compare-and-swap of the refresh path, through Batch:
// of concurrent rotations from one generation, the first to run in the
// (single) writer wins and the others find the generation moved on.
func (s *Store) RotateSession(ctx context.Context, id string, from uint64, at, idleExpiresAt time.Time) (storage.Session, error) {
	if err := ctx.Err(); err != nil {
		return storage.Session{}, err
	}
	var (
		result  storage.Session
		outcome error
	)
	err := s.batch(func(tx *bolt.Tx) error {
		result, outcome = storage.Session{}, nil
		sess, err := getSession(tx, id)
		if err != nil {
			outcome = err
			return nil
		}
		if sess.Generation != from || !live(sess, at) {
			result, outcome = sess, fmt.Errorf("bolt: rotate session %q from %d: %w", id, from, storage.ErrStale)
			return nil
		}
		result, err = rotate(tx, sess, at, idleExpiresAt)
		return err
	})
	if err != nil {
		return storage.Session{}, fmt.Errorf("bolt: rotate session %q: %w", id, err)
	}
	return result, outcome
}

// rotate writes sess one generation on, rotated at at with the idle limit
// idleExpiresAt, and moves its session_sweep entry.
func rotate(tx *bolt.Tx, sess storage.Session, at, idleExpiresAt time.Time) (storage.Session, error) {
	rotated := sess
	rotated.Generation++
	rotated.RotatedAt, rotated.IdleExpiresAt = at.UTC(), idleExpiresAt.UTC()
	if err := putSession(tx, rotated); err != nil {
		return storage.Session{}, err
	}
	return rotated, moveSweepKey(tx, sess, rotated)
}

// revoke writes sess revoked at at, and moves its session_sweep entry.
func revoke(tx *bolt.Tx, sess storage.Session, at time.Time, reason string) error {
	revoked := sess
	revoked.RevokedAt, revoked.RevokedReason = at, reason
	if err := putSession(tx, revoked); err != nil {
		return err
	}
	return moveSweepKey(tx, sess, revoked)
}

// RevokeSession marks one session revoked, keeping a first revocation.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time, reason string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		sess, err := getSession(tx, id)
		if err != nil || sess.Revoked() {
			return err
		}
		return revoke(tx, sess, at, reason)
	})
}

// RevokeUserSessions revokes the user's live sessions but except.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, except string, at time.Time, reason string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		for _, id := range childIDs(tx.Bucket(bucketKeyUserSessions), userID) {
			if id == except {
				continue
			}
			sess, err := getSession(tx, id)
			if err != nil {
				return err
			}
			if !live(sess, at) {
				continue
			}
			if err := revoke(tx, sess, at, reason); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// ListSessions returns the user's sessions, newest first.
func (s *Store) ListSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []storage.Session
	err := s.view(func(tx *bolt.Tx) error {
		for _, id := range childIDs(tx.Bucket(bucketKeyUserSessions), userID) {
			sess, err := getSession(tx, id)
			if err != nil {
				return err
			}
			out = append(out, sess)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b storage.Session) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
	})
	return out, err
}
