package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
)

var _ storage.EmailTokens = (*Store)(nil)

// Email tokens (storage.EmailTokens) live in the email_tokens bucket, keyed
// by the token's hash, as JSON. They are few and short-lived: the sweep
// scans the bucket.

type emailTokenRecord struct {
	Purpose   string    `json:"purpose"`
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	Binding   string    `json:"binding"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func decodeEmailToken(hash string, v []byte) (storage.EmailToken, error) {
	var r emailTokenRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return storage.EmailToken{}, fmt.Errorf("bolt: email token record: %w", err)
	}
	return storage.EmailToken{Hash: hash, Purpose: r.Purpose, UserID: r.UserID, Email: r.Email, Binding: r.Binding,
		CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC()}, nil
}

// CreateEmailToken writes t unless its hash exists.
func (s *Store) CreateEmailToken(ctx context.Context, t storage.EmailToken) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch {
	case t.Hash == "":
		return errEmpty("email token hash")
	case t.Purpose == "":
		return errEmpty("email token purpose")
	case t.UserID == "":
		return errEmpty("email token user")
	}
	v, err := json.Marshal(emailTokenRecord{Purpose: t.Purpose, UserID: t.UserID, Email: t.Email, Binding: t.Binding,
		CreatedAt: t.CreatedAt.UTC(), ExpiresAt: t.ExpiresAt.UTC()})
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeyEmailTokens)
		if b.Get([]byte(t.Hash)) != nil {
			return fmt.Errorf("bolt: email token exists: %w", storage.ErrConflict)
		}
		return b.Put([]byte(t.Hash), v)
	})
}

// GetEmailToken reads the token when it is unexpired at now.
func (s *Store) GetEmailToken(ctx context.Context, hash string, now time.Time) (storage.EmailToken, error) {
	if err := ctx.Err(); err != nil {
		return storage.EmailToken{}, err
	}
	var out storage.EmailToken
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = liveEmailToken(tx.Bucket(bucketKeyEmailTokens), hash, now)
		return err
	})
	return out, err
}

// liveEmailToken reads the token when it is unexpired at now, for
// GetEmailToken and SpendEmailToken alike.
func liveEmailToken(b *bolt.Bucket, hash string, now time.Time) (storage.EmailToken, error) {
	v := b.Get([]byte(hash))
	if v == nil || hash == "" {
		return storage.EmailToken{}, fmt.Errorf("bolt: email token: %w", storage.ErrNotFound)
	}
	t, err := decodeEmailToken(hash, v)
	if err != nil {
		return storage.EmailToken{}, err
	}
	if !t.ExpiresAt.After(now) {
		return storage.EmailToken{}, fmt.Errorf("bolt: email token expired: %w", storage.ErrNotFound)
	}
	return t, nil
}

// SpendEmailToken deletes and returns the token when it is unexpired at
// now; the one writer lock makes concurrent spends one winner.
func (s *Store) SpendEmailToken(ctx context.Context, hash string, now time.Time) (storage.EmailToken, error) {
	if err := ctx.Err(); err != nil {
		return storage.EmailToken{}, err
	}
	var out storage.EmailToken
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeyEmailTokens)
		t, err := liveEmailToken(b, hash, now)
		if err != nil {
			return err
		}
		out = t
		return b.Delete([]byte(hash))
	})
	return out, err
}

// DeleteExpiredEmailTokens scans the bucket and deletes what expired.
func (s *Store) DeleteExpiredEmailTokens(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		b := tx.Bucket(bucketKeyEmailTokens)
		var dead [][]byte
		err := b.ForEach(func(k, v []byte) error {
			t, err := decodeEmailToken(string(k), v)
			if err != nil || !t.ExpiresAt.After(now) {
				dead = append(dead, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range dead {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(dead)
		return nil
	})
	return n, err
}
