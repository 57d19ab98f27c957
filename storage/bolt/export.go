package bolt

import (
	"bytes"
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
)

var _ storage.Exporter = (*Store)(nil)

// ListSecrets returns every secret, by name (copies).
func (s *Store) ListSecrets(ctx context.Context) ([]storage.Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []storage.Secret
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeySecrets).ForEach(func(k, v []byte) error {
			out = append(out, storage.Secret{Name: string(k), Value: bytes.Clone(v)})
			return nil
		})
	})
	return out, err
}
