package bolt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
)

// Accepted provider credentials (replay refusal). A key is stored as its
// SHA-256, so a record's size is bounded whatever the issuer sends, and the
// file holds no token material. credential_sweep orders the records by
// expiry, so the sweep costs what it deletes.

func credentialKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// RecordCredential writes the record unless an unexpired one exists. It
// goes through Batch (concurrent sign-ins share one fsync); the outcome is
// reported through a captured variable, so a re-run starts afresh.
func (s *Store) RecordCredential(ctx context.Context, key string, expiresAt, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return errEmpty("credential key")
	}
	k := credentialKey(key)
	exp := timeKey(expiresAt.UTC())
	var outcome error
	err := s.batch(func(tx *bolt.Tx) error {
		outcome = nil
		recs, sweep := tx.Bucket(bucketKeyCredentials), tx.Bucket(bucketKeyCredentialSweep)
		if old := recs.Get(k); old != nil {
			if len(old) == timeKeyLen && bytes.Compare(old, timeKey(now.UTC())) > 0 {
				outcome = fmt.Errorf("bolt: credential already recorded: %w", storage.ErrConflict)
				return nil
			}
			if err := sweep.Delete(append(bytes.Clone(old), k...)); err != nil {
				return err
			}
		}
		if err := recs.Put(k, exp); err != nil {
			return err
		}
		return sweep.Put(append(bytes.Clone(exp), k...), nil)
	})
	if err != nil {
		return fmt.Errorf("bolt: record credential: %w", err)
	}
	return outcome
}

// DeleteExpiredCredentials walks credential_sweep up to now, sweepChunk
// entries per write transaction.
func (s *Store) DeleteExpiredCredentials(ctx context.Context, now time.Time) (int, error) {
	limit := timeKey(now.UTC())
	deleted := 0
	for {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		var seen, n int
		err := s.update(func(tx *bolt.Tx) error {
			seen, n = 0, 0
			recs, sweep := tx.Bucket(bucketKeyCredentials), tx.Bucket(bucketKeyCredentialSweep)
			var keys [][]byte
			c := sweep.Cursor()
			for k, _ := c.First(); k != nil && len(keys) < sweepChunk; k, _ = c.Next() {
				if len(k) < timeKeyLen || bytes.Compare(k[:timeKeyLen], limit) > 0 {
					break
				}
				keys = append(keys, bytes.Clone(k))
			}
			seen = len(keys)
			if seen == 0 {
				return errNothingDue
			}
			for _, k := range keys {
				if err := sweep.Delete(k); err != nil {
					return err
				}
				id := k[timeKeyLen:]
				// Only the record this entry names: a newer record of the
				// key has its own entry.
				if v := recs.Get(id); v != nil && bytes.Equal(v, k[:timeKeyLen]) {
					if err := recs.Delete(id); err != nil {
						return err
					}
					n++
				}
			}
			return nil
		})
		if errors.Is(err, errNothingDue) {
			return deleted, nil
		}
		if err != nil {
			return deleted, fmt.Errorf("bolt: delete expired credentials: %w", err)
		}
		deleted += n
		if seen < sweepChunk {
			return deleted, nil
		}
	}
}
