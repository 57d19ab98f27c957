package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/authex/authex/storage"
)

const keyColumns = `id, algorithm, private_key, created_at, not_before, retired_at, expires_at, revoked_at`

// ListSigningKeys returns every key, oldest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	var out []storage.SigningKey
	err := s.do(ctx, func() error {
		rows, err := s.db.Query(ctx, `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at, id`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.SigningKey, error) {
			var k storage.SigningKey
			var created, notBefore, retired, expires, revoked pgtype.Timestamptz
			err := r.Scan(&k.ID, &k.Algorithm, &k.PrivateKey, &created, &notBefore, &retired, &expires, &revoked)
			k.CreatedAt, k.NotBefore, k.RetiredAt, k.ExpiresAt = fromTS(created), fromTS(notBefore), fromTS(retired), fromTS(expires)
			k.RevokedAt = fromTS(revoked)
			return k, err
		})
		return err
	})
	return out, err
}

// CreateSigningKey inserts a key; ErrConflict when its ID exists.
func (s *Store) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	if k.ID == "" {
		return errEmpty("signing key id")
	}
	err := s.do(ctx, func() error {
		_, err := s.db.Exec(ctx, `INSERT INTO signing_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			k.ID, k.Algorithm, k.PrivateKey, ts(k.CreatedAt), ts(k.NotBefore), ts(k.RetiredAt), ts(k.ExpiresAt), ts(k.RevokedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: create signing key %q: %w", k.ID, err)
	}
	return nil
}

// UpdateSigningKey replaces NotBefore, RetiredAt, ExpiresAt and RevokedAt.
func (s *Store) UpdateSigningKey(ctx context.Context, k storage.SigningKey) error {
	return s.execOne(ctx, "update signing key", "signing key", k.ID,
		`UPDATE signing_keys SET not_before = $2, retired_at = $3, expires_at = $4, revoked_at = $5 WHERE id = $1`,
		k.ID, ts(k.NotBefore), ts(k.RetiredAt), ts(k.ExpiresAt), ts(k.RevokedAt))
}

// DeleteSigningKey removes a key.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	return s.execOne(ctx, "delete signing key", "signing key", id, `DELETE FROM signing_keys WHERE id = $1`, id)
}

// EnsureSecret inserts unless the name exists, then reads what is stored.
// ON CONFLICT DO NOTHING waits for a concurrent insert of the same name to
// commit, so the SELECT after it sees the first writer's value.
func (s *Store) EnsureSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if err := storage.CheckSecret(name, value); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	var stored []byte
	err := s.do(ctx, func() error {
		if _, err := s.db.Exec(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
			return err
		}
		return s.db.QueryRow(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&stored)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: ensure secret %q: %w", name, err)
	}
	return stored, nil
}

// ListSecrets returns every secret, by name.
func (s *Store) ListSecrets(ctx context.Context) ([]storage.Secret, error) {
	var out []storage.Secret
	err := s.do(ctx, func() error {
		rows, err := s.db.Query(ctx, `SELECT name, value FROM secrets ORDER BY name`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Secret, error) {
			var sec storage.Secret
			err := r.Scan(&sec.Name, &sec.Value)
			return sec, err
		})
		return err
	})
	return out, err
}

// AppendAudit inserts an event. An empty ID gets a new UUIDv7 and a zero
// Time the current time.
func (s *Store) AppendAudit(ctx context.Context, e storage.AuditEvent) error {
	if e.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("postgres: append audit: %w", err)
		}
		e.ID = id.String()
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	err := s.do(ctx, func() error {
		_, err := s.db.Exec(ctx, `INSERT INTO audit_events (id, time, type, user_id, session_id, provider, detail)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, e.ID, ts(e.Time), e.Type, e.UserID, e.SessionID, e.Provider, e.Detail)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: append audit: %w", err)
	}
	return nil
}

// ListAudit returns events newest first, Since inclusive, Until exclusive.
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	var out []storage.AuditEvent
	err := s.do(ctx, func() error {
		rows, err := s.db.Query(ctx, `SELECT id, time, type, user_id, session_id, provider, detail FROM audit_events
			WHERE ($1 = '' OR user_id = $1) AND ($2 = '' OR type = $2)
			  AND ($3::timestamptz IS NULL OR time >= $3) AND ($4::timestamptz IS NULL OR time < $4)
			ORDER BY time DESC, id DESC LIMIT $5`,
			f.UserID, f.Type, ts(f.Since), ts(f.Until), limit(f.Limit))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.AuditEvent, error) {
			var e storage.AuditEvent
			var at pgtype.Timestamptz
			err := r.Scan(&e.ID, &at, &e.Type, &e.UserID, &e.SessionID, &e.Provider, &e.Detail)
			e.Time = fromTS(at)
			return e, err
		})
		return err
	})
	return out, err
}

// swap runs a compare-and-swap UPDATE (id $1, old $2, new $3) and tells a
// missing row (ErrNotFound) from a changed one (ErrStale).
func (s *Store) swap(ctx context.Context, op, what, id, update, exists string, old, new []byte) error {
	var n int64
	var found bool
	err := s.do(ctx, func() error {
		tag, err := s.db.Exec(ctx, update, id, old, new)
		if err != nil {
			return err
		}
		if n = tag.RowsAffected(); n > 0 {
			return nil
		}
		return s.db.QueryRow(ctx, exists, id).Scan(&found)
	})
	switch {
	case err != nil:
		return fmt.Errorf("postgres: %s %q: %w", op, id, err)
	case n > 0:
		return nil
	case !found:
		return errNotFound(what, id)
	default:
		return fmt.Errorf("postgres: %s %q: %w", op, id, storage.ErrStale)
	}
}

// SwapSigningKeyMaterial replaces a key's private_key when it is old.
func (s *Store) SwapSigningKeyMaterial(ctx context.Context, id string, old, new []byte) error {
	return s.swap(ctx, "swap signing key", "signing key", id,
		`UPDATE signing_keys SET private_key = $3 WHERE id = $1 AND private_key = $2`,
		`SELECT EXISTS (SELECT 1 FROM signing_keys WHERE id = $1)`, old, new)
}

// SwapSecret replaces a secret's value when it is old.
func (s *Store) SwapSecret(ctx context.Context, name string, old, new []byte) error {
	if len(new) == 0 {
		return errEmpty("secret value")
	}
	return s.swap(ctx, "swap secret", "secret", name,
		`UPDATE secrets SET value = $3 WHERE name = $1 AND value = $2`,
		`SELECT EXISTS (SELECT 1 FROM secrets WHERE name = $1)`, old, new)
}

// DeleteSecret removes a secret.
func (s *Store) DeleteSecret(ctx context.Context, name string) error {
	return s.execOne(ctx, "delete secret", "secret", name, `DELETE FROM secrets WHERE name = $1`, name)
}
