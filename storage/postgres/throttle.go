package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/authex/authex/storage"
)

var _ storage.RateLimiter = (*Store)(nil)

// Keys of both tables are SHA-256 hashes: bounded in size whatever a
// client sends, and no token or address in clear.
func hashKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// RecordCredential is one INSERT: the primary key makes concurrent records
// of one key queue, and the conditional DO UPDATE replaces only a record
// expired at now, so exactly one of them touches a row.
func (s *Store) RecordCredential(ctx context.Context, key string, expiresAt, now time.Time) error {
	if key == "" {
		return errEmpty("credential key")
	}
	var n int64
	err := s.do(ctx, func() error {
		tag, err := s.db.Exec(ctx, `INSERT INTO credentials (key_hash, expires_at) VALUES ($1, $2)
			ON CONFLICT (key_hash) DO UPDATE SET expires_at = EXCLUDED.expires_at
			WHERE credentials.expires_at <= $3`, hashKey(key), ts(expiresAt), ts(now))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: record credential: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: credential already recorded: %w", storage.ErrConflict)
	}
	return nil
}

// DeleteExpiredCredentials deletes sweepChunk rows per statement, as the
// session sweep does.
func (s *Store) DeleteExpiredCredentials(ctx context.Context, now time.Time) (int, error) {
	return s.sweepTable(ctx, "delete expired credentials", `DELETE FROM credentials
		WHERE key_hash = ANY(ARRAY(SELECT key_hash FROM credentials WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2))
		AND expires_at <= $1`, now)
}

// DeleteFullBuckets forgets the buckets full at now.
func (s *Store) DeleteFullBuckets(ctx context.Context, now time.Time) (int, error) {
	return s.sweepTable(ctx, "delete full buckets", `DELETE FROM throttle_buckets
		WHERE key = ANY(ARRAY(SELECT key FROM throttle_buckets WHERE full_at <= $1 ORDER BY full_at LIMIT $2))
		AND full_at <= $1`, now)
}

func (s *Store) sweepTable(ctx context.Context, op, sql string, now time.Time) (int, error) {
	deleted := 0
	for {
		var n int64
		err := s.do(ctx, func() error {
			tag, err := s.db.Exec(ctx, sql, ts(now), sweepChunk)
			n = tag.RowsAffected()
			return err
		})
		if err != nil {
			return deleted, fmt.Errorf("postgres: %s: %w", op, err)
		}
		deleted += int(n)
		if n < sweepChunk {
			return deleted, nil
		}
	}
}

// takeSQL is the whole take in one statement. A new key inserts the full
// bucket's outcome ($5..$7, computed by the caller); an existing one is
// refilled (R: its tokens plus what accrued since updated_at, never above
// burst, never less for a clock behind the row's) and charged in the row's
// lock, so concurrent takes on every instance queue on the row.
// $1 key, $2 n, $3 now, $4 rate, $5 tokens, $6 full_at, $7 granted, $8 burst.
var takeSQL = func() string {
	r := `LEAST($8::float8, b.tokens + $4::float8 * GREATEST(0, EXTRACT(EPOCH FROM ($3::timestamptz - b.updated_at))::float8))`
	after := `(CASE WHEN ` + r + ` >= $2::float8 THEN LEAST($8::float8, ` + r + ` - $2::float8) ELSE ` + r + ` END)`
	at := `GREATEST(b.updated_at, $3::timestamptz)`
	return strings.Join([]string{
		`INSERT INTO throttle_buckets AS b (key, tokens, updated_at, full_at, granted) VALUES ($1, $5, $3, $6, $7)`,
		`ON CONFLICT (key) DO UPDATE SET`,
		`tokens = ` + after + `,`,
		`granted = ` + r + ` >= $2::float8,`,
		`full_at = ` + at + ` + make_interval(secs => ($8::float8 - ` + after + `) / $4::float8),`,
		`updated_at = ` + at,
		`RETURNING tokens, granted`,
	}, "\n")
}()

// TakeTokens is storage.RateLimiter's take, in one statement.
func (s *Store) TakeTokens(ctx context.Context, key string, n, rate, burst float64, now time.Time) (time.Duration, error) {
	if rate <= 0 || burst <= 0 {
		return 0, fmt.Errorf("postgres: take tokens: rate and burst must be positive")
	}
	// A bucket not seen is full.
	tokens, granted := burst, n <= burst
	if granted {
		tokens = math.Min(burst, burst-n)
	}
	fullAt := now.Add(time.Duration((burst - tokens) / rate * float64(time.Second)))
	var left float64
	var ok bool
	err := s.do(ctx, func() error {
		return s.db.QueryRow(ctx, takeSQL, hashKey(key), n, ts(now), rate, tokens, ts(fullAt), granted, burst).Scan(&left, &ok)
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: take tokens: %w", err)
	}
	if ok {
		return 0, nil
	}
	wait := time.Duration((n - left) / rate * float64(time.Second))
	return max(wait, time.Millisecond), nil
}
