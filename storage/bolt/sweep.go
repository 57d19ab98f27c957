package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
)

// The session_sweep index lets DeleteExpiredSessions cost what it deletes
// rather than the size of the sessions bucket: its keys sort by the time
// from which the sweep may remove the session, so a sweep is a cursor walk
// from the first key up to now. Every write that creates, moves (a
// rotation's IdleExpiresAt, a revocation's RevokedAt) or deletes a session
// writes its entry in the same transaction.

// sweepTime is the time from which the sweep may delete s: the earliest of
// its idle and absolute limits and, once revoked, its revocation time. It
// is exactly the first now at which removable(s, now) holds.
func sweepTime(s storage.Session) time.Time {
	t := s.IdleExpiresAt
	if s.ExpiresAt.Before(t) {
		t = s.ExpiresAt
	}
	if s.Revoked() && s.RevokedAt.Before(t) {
		t = s.RevokedAt
	}
	return t
}

// sweepKey is s's session_sweep key: timeKey of its sweep time (which,
// unlike UnixNano, covers the zero time and every other time a record can
// hold), then its ID.
func sweepKey(s storage.Session) []byte {
	return append(timeKey(sweepTime(s)), s.ID...)
}

// moveSweepKey replaces old's entry by updated's, when the write moved it.
func moveSweepKey(tx *bolt.Tx, old, updated storage.Session) error {
	oldKey, newKey := sweepKey(old), sweepKey(updated)
	if bytes.Equal(oldKey, newKey) {
		return nil
	}
	b := tx.Bucket(bucketKeySessionSweep)
	if err := b.Delete(oldKey); err != nil {
		return err
	}
	return b.Put(newKey, nil)
}

// migrateSessionSweep (schema version 2) builds session_sweep from the
// sessions of a version 1 file.
func migrateSessionSweep(tx *bolt.Tx) error {
	index := tx.Bucket(bucketKeySessionSweep)
	return tx.Bucket(bucketKeySessions).ForEach(func(k, v []byte) error {
		sess, err := decodeSession(v)
		if err != nil {
			return fmt.Errorf("session %q: %w", k, err)
		}
		return index.Put(sweepKey(sess), nil)
	})
}

// errNothingDue ends a sweep transaction that found nothing to do.
var errNothingDue = errors.New("bolt: no session due for the sweep")

// DeleteExpiredSessions walks session_sweep from its first key up to now,
// sweepChunk entries per write transaction (so the writer lock is never
// held for a whole sweep), and deletes each session it names after
// checking the record again. An entry that does not match its session's
// record (which the writes never leave) is repaired rather than trusted,
// so every entry the walk reaches is gone afterwards and the walk ends.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	return s.sweepDue(ctx, bucketKeySessionSweep, timeKey(now), "sessions", func(tx *bolt.Tx, k []byte) (bool, error) {
		return sweepEntry(tx, k, now)
	})
}

// sweepDue walks index, a bucket keyed by time key then id, from its first
// key up to limit, sweepChunk entries per write transaction (so the writer
// lock is never held for a whole sweep), and calls each on every entry
// (copied out of the transaction). each removes the entry and what it
// names, and reports whether a record went; sweepDue returns how many did.
// what names the records in errors.
func (s *Store) sweepDue(ctx context.Context, index, limit []byte, what string, each func(tx *bolt.Tx, k []byte) (bool, error)) (int, error) {
	deleted := 0
	for {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		var n, seen int
		err := s.update(func(tx *bolt.Tx) error {
			n, seen = 0, 0
			var keys [][]byte
			c := tx.Bucket(index).Cursor()
			for k, _ := c.First(); k != nil && len(keys) < sweepChunk; k, _ = c.Next() {
				if len(k) < timeKeyLen || bytes.Compare(k[:timeKeyLen], limit) > 0 {
					break
				}
				keys = append(keys, bytes.Clone(k))
			}
			seen = len(keys)
			if seen == 0 {
				return errNothingDue // roll back: an empty commit still writes and fsyncs
			}
			for _, k := range keys {
				removed, err := each(tx, k)
				if err != nil {
					return err
				}
				if removed {
					n++
				}
			}
			return nil
		})
		if errors.Is(err, errNothingDue) {
			return deleted, nil
		}
		if err != nil {
			return deleted, fmt.Errorf("bolt: delete expired %s: %w", what, err)
		}
		deleted += n
		if seen < sweepChunk {
			return deleted, nil
		}
	}
}

// sweepEntry handles one session_sweep entry due at now: it deletes the
// session if removable and reports whether it did; it always removes the
// entry k.
func sweepEntry(tx *bolt.Tx, k []byte, now time.Time) (bool, error) {
	index := tx.Bucket(bucketKeySessionSweep)
	if err := index.Delete(k); err != nil {
		return false, err
	}
	id := string(k[timeKeyLen:])
	v := tx.Bucket(bucketKeySessions).Get([]byte(id))
	if v == nil {
		return false, nil // a stale entry: nothing to delete
	}
	sess, err := decodeSession(v)
	if err != nil {
		return false, fmt.Errorf("session %q: %w", id, err)
	}
	if !removable(sess, now) {
		return false, index.Put(sweepKey(sess), nil) // a stale entry: put the right one
	}
	return true, deleteSession(tx, sess)
}

// checkSweepIndex reports the first difference between session_sweep and
// the entries the sessions bucket calls for. Tests use it.
func checkSweepIndex(tx *bolt.Tx) error {
	want := map[string]bool{}
	err := tx.Bucket(bucketKeySessions).ForEach(func(k, v []byte) error {
		sess, err := decodeSession(v)
		if err != nil {
			return fmt.Errorf("session %q: %w", k, err)
		}
		want[string(sweepKey(sess))] = true
		return nil
	})
	if err != nil {
		return err
	}
	err = tx.Bucket(bucketKeySessionSweep).ForEach(func(k, _ []byte) error {
		if !want[string(k)] {
			return fmt.Errorf("session_sweep has %x, which no session calls for", k)
		}
		delete(want, string(k))
		return nil
	})
	if err != nil {
		return err
	}
	for k := range want {
		return fmt.Errorf("session_sweep lacks %x (%d missing)", k, len(want))
	}
	return nil
}
