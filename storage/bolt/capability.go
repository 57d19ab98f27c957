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
