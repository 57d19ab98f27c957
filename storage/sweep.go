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
		sweepOthers(ctx, s, log)
	}
}

// sweepOthers deletes the other records that expire: accepted provider
// credentials, and the rate-limit buckets of a store that keeps them.
func sweepOthers(ctx context.Context, s Store, log *slog.Logger) {
	now := time.Now()
	n, err := s.DeleteExpiredCredentials(ctx, now)
	switch {
	case err != nil && ctx.Err() != nil:
		return
	case err != nil:
		log.Error("credential sweep failed", "deleted", n, "err", err)
	case n > 0:
		log.Info("swept expired credentials", "deleted", n)
	}
	if rl, ok := As[RateLimiter](s); ok {
		if n, err := rl.DeleteFullBuckets(ctx, now); err != nil && ctx.Err() == nil {
			log.Error("rate-limit bucket sweep failed", "deleted", n, "err", err)
		}
	}
}
