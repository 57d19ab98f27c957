package bolt

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
)

var (
	_ storage.Backuper       = (*Store)(nil)
	_ storage.SessionCounter = (*Store)(nil)
)

// CountActiveSessions scans the sessions bucket in one read transaction
// (writers are not blocked) and counts the live ones. The cost is one
// decode per stored session; the metrics collector caches the answer.
func (s *Store) CountActiveSessions(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeySessions).ForEach(func(k, v []byte) error {
			sess, err := decodeSession(v)
			if err != nil {
				return fmt.Errorf("session %q: %w", k, err)
			}
			if live(sess, now) {
				n++
			}
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: count active sessions: %w", err)
	}
	return n, nil
}

// Verify opens the bbolt file at path read-only and checks it whole: every
// page reachable and consistent (bbolt's Tx.Check), authex's buckets
// present and its schema version one this build reads. For a backup
// before it replaces anything.
func Verify(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: openTimeout})
	if err != nil {
		return fmt.Errorf("bolt: verify %s: %w", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drained whole: Check's goroutine sends every error
			if first == nil {
				first = err
			}
		}
		if first != nil {
			return first
		}
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("bucket %s is missing", name)
			}
		}
		v, ok := readU64(tx.Bucket(bucketKeyMeta).Get(metaKeyVersion))
		if !ok || v == 0 || v > schemaVersion {
			return fmt.Errorf("schema version %d is not one this authex reads (1..%d)", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: verify %s: %w", path, err)
	}
	return nil
}
