package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/authex/authex/storage"
)

var _ storage.Outbox = (*Store)(nil)

const outboxColumns = `id, endpoint, user_id, type, payload, created_at, attempts, next_attempt_at, lease_owner, lease_until, last_error, failed_at`

func scanOutbox(row pgx.Row) (storage.OutboxRecord, error) {
	var r storage.OutboxRecord
	var created, next, lease, failed pgtype.Timestamptz
	if err := row.Scan(&r.ID, &r.Endpoint, &r.UserID, &r.Type, &r.Payload, &created, &r.Attempts, &next, &r.LeaseOwner, &lease, &r.LastError, &failed); err != nil {
		return storage.OutboxRecord{}, err
	}
	r.CreatedAt, r.NextAttemptAt, r.LeaseUntil, r.FailedAt = fromTS(created), fromTS(next), fromTS(lease), fromTS(failed)
	return r, nil
}

func collectOutbox(rows pgx.Rows) ([]storage.OutboxRecord, error) {
	defer rows.Close()
	var out []storage.OutboxRecord
	for rows.Next() {
		r, err := scanOutbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// AppendOutbox implements storage.Outbox.
func (s *Store) AppendOutbox(ctx context.Context, r storage.OutboxRecord) error {
	err := s.do(ctx, func() error {
		_, err := s.db.Exec(ctx, `INSERT INTO outbox (id, endpoint, user_id, type, payload, created_at, next_attempt_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			r.ID, r.Endpoint, r.UserID, r.Type, r.Payload, ts(r.CreatedAt), ts(r.NextAttemptAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: append outbox %q: %w", r.ID, err)
	}
	return nil
}

// ClaimOutbox implements storage.Outbox. The heads are read without locks;
// the lease is then taken with FOR UPDATE SKIP LOCKED and the conditions
// checked again on the locked row, so two instances racing for a head
// never both get it, and neither waits for the other.
func (s *Store) ClaimOutbox(ctx context.Context, owner string, now time.Time, lease time.Duration, max int) ([]storage.OutboxRecord, error) {
	var out []storage.OutboxRecord
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `WITH heads AS (
				SELECT DISTINCT ON (endpoint, user_id) id, endpoint, next_attempt_at, lease_until
				FROM outbox WHERE failed_at IS NULL ORDER BY endpoint, user_id, id)
			SELECT o.id, o.endpoint FROM outbox o JOIN heads h ON o.id = h.id AND o.endpoint = h.endpoint
			WHERE o.failed_at IS NULL AND o.next_attempt_at <= $1 AND (o.lease_until IS NULL OR o.lease_until <= $1)
			ORDER BY o.id, o.endpoint LIMIT $2
			FOR UPDATE OF o SKIP LOCKED`, ts(now), limit(max))
		if err != nil {
			return err
		}
		var ids, endpoints []string
		for rows.Next() {
			var id, ep string
			if err := rows.Scan(&id, &ep); err != nil {
				rows.Close()
				return err
			}
			ids, endpoints = append(ids, id), append(endpoints, ep)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			out = nil
			return nil
		}
		rows, err = tx.Query(ctx, `UPDATE outbox o SET lease_owner = $3, lease_until = $4
			FROM unnest($1::text[], $2::text[]) AS c(id, endpoint)
			WHERE o.id = c.id AND o.endpoint = c.endpoint
			RETURNING `+prefixed("o.", outboxColumns), ids, endpoints, owner, ts(now.Add(lease)))
		if err != nil {
			return err
		}
		out, err = collectOutbox(rows)
		if err != nil {
			return err
		}
		sortOutbox(out)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claim outbox: %w", err)
	}
	return out, nil
}

// FinishOutbox implements storage.Outbox.
func (s *Store) FinishOutbox(ctx context.Context, endpoint, id, owner string, now time.Time) error {
	return s.leased(ctx, "finish outbox", endpoint, id, owner, now,
		`DELETE FROM outbox WHERE id = $1 AND endpoint = $2 AND lease_owner = $3 AND lease_until > $4`)
}

// RetryOutbox implements storage.Outbox.
func (s *Store) RetryOutbox(ctx context.Context, endpoint, id, owner string, now, next time.Time, lastErr string, failed bool) error {
	return s.leased(ctx, "retry outbox", endpoint, id, owner, now,
		`UPDATE outbox SET attempts = attempts + 1, last_error = $5, lease_owner = '', lease_until = NULL,
			failed_at = CASE WHEN $6 THEN $4 ELSE failed_at END,
			next_attempt_at = CASE WHEN $6 THEN next_attempt_at ELSE $7 END
		WHERE id = $1 AND endpoint = $2 AND lease_owner = $3 AND lease_until > $4`,
		lastErr, failed, ts(next))
}

// leased runs a statement guarded by the lease; when it touches no row it
// tells ErrNotFound from ErrStale.
func (s *Store) leased(ctx context.Context, op, endpoint, id, owner string, now time.Time, sql string, more ...any) error {
	var n int64
	err := s.do(ctx, func() error {
		tag, err := s.db.Exec(ctx, sql, append([]any{id, endpoint, owner, ts(now)}, more...)...)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: %s %q: %w", op, id, err)
	}
	if n == 1 {
		return nil
	}
	var one int
	err = s.db.QueryRow(ctx, `SELECT 1 FROM outbox WHERE id = $1 AND endpoint = $2`, id, endpoint).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: %s: %w: outbox record %q", op, storage.ErrNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("postgres: %s %q: %w", op, id, translate(err))
	}
	return fmt.Errorf("postgres: %s: %w: outbox record %q is not leased to this owner", op, storage.ErrStale, id)
}

// ListOutbox implements storage.Outbox.
func (s *Store) ListOutbox(ctx context.Context, f storage.OutboxFilter) ([]storage.OutboxRecord, error) {
	var out []storage.OutboxRecord
	err := s.do(ctx, func() error {
		rows, err := s.db.Query(ctx, `SELECT `+outboxColumns+` FROM outbox
			WHERE (failed_at IS NOT NULL) = $1 ORDER BY id, endpoint LIMIT $2`, f.Failed, limit(f.Limit))
		if err != nil {
			return err
		}
		out, err = collectOutbox(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list outbox: %w", err)
	}
	return out, nil
}

// ReplayOutbox implements storage.Outbox.
func (s *Store) ReplayOutbox(ctx context.Context, endpoint, id string, now time.Time) (storage.OutboxRecord, error) {
	var out storage.OutboxRecord
	err := s.do(ctx, func() error {
		var err error
		out, err = scanOutbox(s.db.QueryRow(ctx, `UPDATE outbox SET attempts = 0, failed_at = NULL, lease_owner = '',
				lease_until = NULL, last_error = '', next_attempt_at = $3
			WHERE id = $1 AND endpoint = $2 RETURNING `+outboxColumns, id, endpoint, ts(now)))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.OutboxRecord{}, fmt.Errorf("postgres: replay outbox: %w: outbox record %q", storage.ErrNotFound, id)
	}
	if err != nil {
		return storage.OutboxRecord{}, fmt.Errorf("postgres: replay outbox %q: %w", id, err)
	}
	return out, nil
}

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = p + parts[i]
	}
	return strings.Join(parts, ", ")
}

func sortOutbox(rs []storage.OutboxRecord) {
	slices.SortFunc(rs, func(a, b storage.OutboxRecord) int {
		return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.Endpoint, b.Endpoint))
	})
}
