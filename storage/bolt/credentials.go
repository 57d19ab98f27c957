package bolt

import (
	"bytes"
	"context"
	"crypto/sha256"
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
		var err error
		outcome, err = recordCredential(tx, k, exp, timeKey(now.UTC()))
		return err
	})
	if err != nil {
		return fmt.Errorf("bolt: record credential: %w", err)
	}
	return outcome
}

// credentialLive reports whether a credential record (its expiry's time
// key) still holds at now: the credential may not be used again.
func credentialLive(record, now []byte) bool {
	return len(record) == timeKeyLen && bytes.Compare(record, now) > 0
}

// recordCredential writes the record k (a credentialKey) expiring at exp
// unless an unexpired one exists at now (both timeKeys); that outcome is
// ErrConflict, apart from the error that must roll the write back.
func recordCredential(tx *bolt.Tx, k, exp, now []byte) (outcome, err error) {
	recs, sweep := tx.Bucket(bucketKeyCredentials), tx.Bucket(bucketKeyCredentialSweep)
	if old := recs.Get(k); old != nil {
		if credentialLive(old, now) {
			return fmt.Errorf("bolt: credential already recorded: %w", storage.ErrConflict), nil
		}
		if err := sweep.Delete(append(bytes.Clone(old), k...)); err != nil {
			return nil, err
		}
	}
	if err := recs.Put(k, exp); err != nil {
		return nil, err
	}
	return nil, sweep.Put(append(bytes.Clone(exp), k...), nil)
}

// DeleteExpiredCredentials walks credential_sweep up to now, sweepChunk
// entries per write transaction.
func (s *Store) DeleteExpiredCredentials(ctx context.Context, now time.Time) (int, error) {
	return s.sweepDue(ctx, bucketKeyCredentialSweep, timeKey(now.UTC()), "credentials", func(tx *bolt.Tx, k []byte) (bool, error) {
		if err := tx.Bucket(bucketKeyCredentialSweep).Delete(k); err != nil {
			return false, err
		}
		id := k[timeKeyLen:]
		// Only the record this entry names: a newer record of the key has
		// its own entry.
		recs := tx.Bucket(bucketKeyCredentials)
		if v := recs.Get(id); v == nil || !bytes.Equal(v, k[:timeKeyLen]) {
			return false, nil
		}
		return true, recs.Delete(id)
	})
}
