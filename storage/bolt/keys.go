package bolt

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
)

// ListSigningKeys returns every key, oldest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []storage.SigningKey
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeySigningKeys).ForEach(func(k, v []byte) error {
			key, err := decodeSigningKey(v)
			if err != nil {
				return fmt.Errorf("signing key %q: %w", k, err)
			}
			out = append(out, key)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b storage.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, err
}

// CreateSigningKey adds a key; ErrConflict when its ID exists.
func (s *Store) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if k.ID == "" {
		return errEmpty("signing key id")
	}
	rec := encodeSigningKey(k)
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeySigningKeys)
		if b.Get([]byte(k.ID)) != nil {
			return fmt.Errorf("bolt: create signing key %q: %w", k.ID, storage.ErrConflict)
		}
		return b.Put([]byte(k.ID), rec)
	})
}

// UpdateSigningKey replaces NotBefore, RetiredAt, ExpiresAt and RevokedAt; the
// algorithm, key material and CreatedAt never change.
func (s *Store) UpdateSigningKey(ctx context.Context, k storage.SigningKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeySigningKeys)
		v := b.Get([]byte(k.ID))
		if v == nil {
			return errNotFound("signing key", k.ID)
		}
		stored, err := decodeSigningKey(v)
		if err != nil {
			return err
		}
		stored.NotBefore, stored.RetiredAt, stored.ExpiresAt, stored.RevokedAt = k.NotBefore, k.RetiredAt, k.ExpiresAt, k.RevokedAt
		return b.Put([]byte(k.ID), encodeSigningKey(stored))
	})
}

// DeleteSigningKey removes a key.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeySigningKeys)
		if b.Get([]byte(id)) == nil {
			return errNotFound("signing key", id)
		}
		return b.Delete([]byte(id))
	})
}

// EnsureSecret stores value under name unless something is there already,
// and returns what is stored (a copy).
func (s *Store) EnsureSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := storage.CheckSecret(name, value); err != nil {
		return nil, fmt.Errorf("bolt: %w", err)
	}
	var stored []byte
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeySecrets)
		if v := b.Get([]byte(name)); v != nil {
			stored = bytes.Clone(v)
			return nil
		}
		stored = bytes.Clone(value)
		return b.Put([]byte(name), bytes.Clone(value))
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: ensure secret %q: %w", name, err)
	}
	return stored, nil
}

// AppendAudit records an event, through Batch. An empty ID gets a new
// UUIDv7 and a zero Time the current time.
func (s *Store) AppendAudit(ctx context.Context, e storage.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("bolt: append audit: %w", err)
		}
		e.ID = id.String()
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	key := append(timeKey(e.Time), e.ID...)
	rec := encodeAuditEvent(e)
	err := s.batch(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeyAudit).Put(key, rec)
	})
	if err != nil {
		return fmt.Errorf("bolt: append audit: %w", err)
	}
	return nil
}

// ListAudit walks the audit bucket backwards from f.Until (exclusive) down
// to f.Since (inclusive): keys sort by time, so the time bounds cost a seek.
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var since []byte
	if !f.Since.IsZero() {
		since = timeKey(f.Since)
	}
	var out []storage.AuditEvent
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketKeyAudit).Cursor()
		var k, v []byte
		if f.Until.IsZero() {
			k, v = c.Last()
		} else if k, _ = c.Seek(timeKey(f.Until)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil; k, v = c.Prev() {
			if f.Limit > 0 && len(out) >= f.Limit {
				return nil
			}
			if since != nil && bytes.Compare(k[:min(len(k), timeKeyLen)], since) < 0 {
				return nil
			}
			e, err := decodeAuditEvent(v)
			if err != nil {
				return fmt.Errorf("audit event %x: %w", k, err)
			}
			if (f.UserID != "" && e.UserID != f.UserID) || (f.Type != "" && e.Type != f.Type) {
				continue
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// SwapSigningKeyMaterial replaces a key's PrivateKey when it is old.
func (s *Store) SwapSigningKeyMaterial(ctx context.Context, id string, old, new []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeySigningKeys)
		v := b.Get([]byte(id))
		if v == nil {
			return errNotFound("signing key", id)
		}
		stored, err := decodeSigningKey(v)
		if err != nil {
			return err
		}
		if !bytes.Equal(stored.PrivateKey, old) {
			return fmt.Errorf("bolt: swap signing key %q: %w", id, storage.ErrStale)
		}
		stored.PrivateKey = bytes.Clone(new)
		return b.Put([]byte(id), encodeSigningKey(stored))
	})
}

// SwapSecret replaces a secret's value when it is old.
func (s *Store) SwapSecret(ctx context.Context, name string, old, new []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(new) == 0 {
		return errEmpty("secret value")
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeySecrets)
		v := b.Get([]byte(name))
		if v == nil {
			return errNotFound("secret", name)
		}
		if !bytes.Equal(v, old) {
			return fmt.Errorf("bolt: swap secret %q: %w", name, storage.ErrStale)
		}
		return b.Put([]byte(name), bytes.Clone(new))
	})
}

// DeleteSecret removes a secret.
func (s *Store) DeleteSecret(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeySecrets)
		if b.Get([]byte(name)) == nil {
			return errNotFound("secret", name)
		}
		return b.Delete([]byte(name))
	})
}
