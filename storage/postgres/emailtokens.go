package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/authex/authex/storage"
)

var _ storage.EmailTokens = (*Store)(nil)

const emailTokenColumns = `token_hash, purpose, user_id, email, binding, created_at, expires_at`

func scanEmailToken(row pgx.Row) (storage.EmailToken, error) {
	var t storage.EmailToken
	var created, expires pgtype.Timestamptz
	err := row.Scan(&t.Hash, &t.Purpose, &t.UserID, &t.Email, &t.Binding, &created, &expires)
	t.CreatedAt, t.ExpiresAt = fromTS(created), fromTS(expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, fmt.Errorf("postgres: email token: %w", storage.ErrNotFound)
	}
	return t, err
}

// CreateEmailToken is one INSERT; the primary key refuses a taken hash.
func (s *Store) CreateEmailToken(ctx context.Context, t storage.EmailToken) error {
	switch {
	case t.Hash == "":
		return errEmpty("email token hash")
	case t.Purpose == "":
		return errEmpty("email token purpose")
	case t.UserID == "":
		return errEmpty("email token user")
	}
	err := s.do(ctx, func() error {
		_, err := s.db.Exec(ctx, `INSERT INTO email_tokens (`+emailTokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			t.Hash, t.Purpose, t.UserID, t.Email, t.Binding, ts(t.CreatedAt), ts(t.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: create email token: %w", err)
	}
	return nil
}

// GetEmailToken reads an unexpired token.
func (s *Store) GetEmailToken(ctx context.Context, hash string, now time.Time) (storage.EmailToken, error) {
	var t storage.EmailToken
	err := s.do(ctx, func() error {
		var err error
		t, err = scanEmailToken(s.db.QueryRow(ctx, `SELECT `+emailTokenColumns+` FROM email_tokens
			WHERE token_hash = $1 AND expires_at > $2`, hash, ts(now)))
		return err
	})
	return t, err
}

// SpendEmailToken is one DELETE ... RETURNING: of concurrent spends, the
// row lock lets one delete the row and the others find it gone.
func (s *Store) SpendEmailToken(ctx context.Context, hash string, now time.Time) (storage.EmailToken, error) {
	var t storage.EmailToken
	err := s.do(ctx, func() error {
		var err error
		t, err = scanEmailToken(s.db.QueryRow(ctx, `DELETE FROM email_tokens
			WHERE token_hash = $1 AND expires_at > $2 RETURNING `+emailTokenColumns, hash, ts(now)))
		return err
	})
	return t, err
}

// DeleteExpiredEmailTokens deletes sweepChunk rows per statement.
func (s *Store) DeleteExpiredEmailTokens(ctx context.Context, now time.Time) (int, error) {
	return s.sweepTable(ctx, "delete expired email tokens", `DELETE FROM email_tokens
		WHERE token_hash = ANY(ARRAY(SELECT token_hash FROM email_tokens WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2))
		AND expires_at <= $1`, now)
}
