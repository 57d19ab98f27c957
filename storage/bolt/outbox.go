package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
)

var _ storage.Outbox = (*Store)(nil)

// The outbox bucket: key ID "\x00" Endpoint (IDs are UUIDv7, so the key
// order is the write order), value the record as JSON. It holds only what
// is pending or failed: a delivered record is deleted, so a scan is cheap.
// One process opens a bbolt file, so a claim needs no more than the one
// writer lock.

type outboxJSON struct {
	ID            string    `json:"id"`
	Endpoint      string    `json:"endpoint"`
	UserID        string    `json:"user_id"`
	Type          string    `json:"type"`
	Payload       []byte    `json:"payload"`
	CreatedAt     time.Time `json:"created_at"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LeaseOwner    string    `json:"lease_owner,omitempty"`
	LeaseUntil    time.Time `json:"lease_until"`
	LastError     string    `json:"last_error,omitempty"`
	FailedAt      time.Time `json:"failed_at"`
}

func outboxKey(endpoint, id string) []byte {
	return []byte(id + "\x00" + endpoint)
}

func encodeOutbox(r storage.OutboxRecord) ([]byte, error) {
	return json.Marshal(outboxJSON(r))
}

func decodeOutbox(b []byte) (storage.OutboxRecord, error) {
	var j outboxJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return storage.OutboxRecord{}, fmt.Errorf("bolt: decode outbox record: %w", err)
	}
	r := storage.OutboxRecord(j)
	r.CreatedAt, r.NextAttemptAt, r.LeaseUntil, r.FailedAt = r.CreatedAt.UTC(), r.NextAttemptAt.UTC(), r.LeaseUntil.UTC(), r.FailedAt.UTC()
	return r, nil
}

// AppendOutbox implements storage.Outbox.
func (s *Store) AppendOutbox(ctx context.Context, r storage.OutboxRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.Attempts, r.LeaseOwner, r.LeaseUntil, r.LastError, r.FailedAt = 0, "", time.Time{}, "", time.Time{}
	r.CreatedAt, r.NextAttemptAt = r.CreatedAt.UTC(), r.NextAttemptAt.UTC()
	rec, err := encodeOutbox(r)
	if err != nil {
		return err
	}
	key := outboxKey(r.Endpoint, r.ID)
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeyOutbox)
		if b.Get(key) != nil {
			return fmt.Errorf("bolt: append outbox %q: %w", r.ID, storage.ErrConflict)
		}
		return b.Put(key, rec)
	})
	return err
}

// ClaimOutbox implements storage.Outbox: one scan in key order, keeping
// the first pending record of each (Endpoint, UserID). The scan runs in a
// read transaction first, so a poll that finds nothing due takes neither
// the writer lock nor an fsync.
func (s *Store) ClaimOutbox(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]storage.OutboxRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var due []storage.OutboxRecord
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		due, err = dueOutbox(tx.Bucket(bucketKeyOutbox), now, 1)
		return err
	})
	if err != nil || len(due) == 0 {
		return nil, err
	}
	var out []storage.OutboxRecord
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeyOutbox)
		var err error
		if out, err = dueOutbox(b, now, limit); err != nil {
			return err
		}
		for i := range out {
			out[i].LeaseOwner, out[i].LeaseUntil = owner, now.Add(lease).UTC()
			rec, err := encodeOutbox(out[i])
			if err != nil {
				return err
			}
			if err := b.Put(outboxKey(out[i].Endpoint, out[i].ID), rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: claim outbox: %w", err)
	}
	return out, nil
}

// dueOutbox scans b in key order for the heads (the first pending record
// of each (Endpoint, UserID)) that are due and unleased at now, at most
// limit of them (<= 0: all).
func dueOutbox(b *bolt.Bucket, now time.Time, limit int) ([]storage.OutboxRecord, error) {
	var out []storage.OutboxRecord
	seen := map[string]bool{}
	c := b.Cursor()
	for k, v := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
		r, err := decodeOutbox(v)
		if err != nil {
			return nil, err
		}
		if r.Failed() {
			continue
		}
		head := r.Endpoint + "\x00" + r.UserID
		if seen[head] {
			continue
		}
		seen[head] = true
		if r.NextAttemptAt.After(now) || r.LeaseUntil.After(now) {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// modifyLeased runs fn on a record owner holds at now, and writes what fn
// returns (nil: delete it).
func (s *Store) modifyLeased(ctx context.Context, op, endpoint, id, owner string, now time.Time, fn func(r *storage.OutboxRecord) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key := outboxKey(endpoint, id)
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeyOutbox)
		v := b.Get(key)
		if v == nil {
			return fmt.Errorf("%w: outbox record %q", storage.ErrNotFound, id)
		}
		r, err := decodeOutbox(v)
		if err != nil {
			return err
		}
		if owner != "" && (r.LeaseOwner != owner || !r.LeaseUntil.After(now)) {
			return fmt.Errorf("%w: outbox record %q is not leased to this owner", storage.ErrStale, id)
		}
		if !fn(&r) {
			return b.Delete(key)
		}
		rec, err := encodeOutbox(r)
		if err != nil {
			return err
		}
		return b.Put(key, rec)
	})
	if err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	return nil
}

// FinishOutbox implements storage.Outbox.
func (s *Store) FinishOutbox(ctx context.Context, endpoint, id, owner string, now time.Time) error {
	return s.modifyLeased(ctx, "finish outbox", endpoint, id, owner, now, func(*storage.OutboxRecord) bool { return false })
}

// RetryOutbox implements storage.Outbox.
func (s *Store) RetryOutbox(ctx context.Context, endpoint, id, owner string, now, next time.Time, lastErr string, failed bool) error {
	return s.modifyLeased(ctx, "retry outbox", endpoint, id, owner, now, func(r *storage.OutboxRecord) bool {
		r.Attempts++
		r.LastError = lastErr
		r.LeaseOwner, r.LeaseUntil = "", time.Time{}
		if failed {
			r.FailedAt = now.UTC()
		} else {
			r.NextAttemptAt = next.UTC()
		}
		return true
	})
}

// ListOutbox implements storage.Outbox.
func (s *Store) ListOutbox(ctx context.Context, f storage.OutboxFilter) ([]storage.OutboxRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []storage.OutboxRecord
	err := s.view(func(tx *bolt.Tx) error {
		out = nil
		return tx.Bucket(bucketKeyOutbox).ForEach(func(_, v []byte) error {
			if f.Limit > 0 && len(out) >= f.Limit {
				return nil
			}
			r, err := decodeOutbox(v)
			if err != nil {
				return err
			}
			if r.Failed() == f.Failed {
				out = append(out, r)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list outbox: %w", err)
	}
	return out, nil
}

// ReplayOutbox implements storage.Outbox.
func (s *Store) ReplayOutbox(ctx context.Context, endpoint, id string, now time.Time) (storage.OutboxRecord, error) {
	var out storage.OutboxRecord
	err := s.modifyLeased(ctx, "replay outbox", endpoint, id, "", now, func(r *storage.OutboxRecord) bool {
		r.Attempts, r.FailedAt, r.LeaseOwner, r.LeaseUntil, r.LastError = 0, time.Time{}, "", time.Time{}, ""
		r.NextAttemptAt = now.UTC()
		out = *r
		return true
	})
	if err != nil {
		return storage.OutboxRecord{}, err
	}
	return out, nil
}
