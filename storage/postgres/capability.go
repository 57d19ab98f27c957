package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/authex/authex/storage"
)

// The PostgreSQL store counts live sessions for the metrics gauge; it has
// no storage.Backuper: pg_dump backs it up.
var _ storage.SessionCounter = (*Store)(nil)

// CountActiveSessions counts the sessions live at now (not revoked, before
// both limits), in one query.
func (s *Store) CountActiveSessions(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := s.do(ctx, func() error {
		return s.db.QueryRow(ctx, `SELECT count(*) FROM sessions
			WHERE revoked_at IS NULL AND idle_expires_at > $1 AND expires_at > $1`, ts(now)).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: count active sessions: %w", err)
	}
	return n, nil
}
