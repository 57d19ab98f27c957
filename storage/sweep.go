package storage

import (
	"context"
	"log/slog"
	"time"
)

// SweepExpiredSessions deletes expired and revoked sessions from s every
// interval until ctx ends, then closes done. Backends run it in the
// background so the store does not grow with sessions nobody can use.
func SweepExpiredSessions(ctx context.Context, s Store, interval time.Duration, log *slog.Logger, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := s.DeleteExpiredSessions(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			log.Error("session sweep failed", "deleted", n, "err", err)
		case n > 0:
			log.Info("swept expired sessions", "deleted", n)
		}
	}
}
