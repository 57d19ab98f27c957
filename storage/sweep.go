package storage

import (
	"context"
	"log/slog"
	"time"
)

// DefaultSweepInterval is how often a backend's sweeper runs when its
// options leave the interval at 0.
const DefaultSweepInterval = 10 * time.Minute

// Sweeper is a backend's background sweep (SweepExpiredSessions), started
// by StartSweeper when the backend opens and stopped by its Close.
type Sweeper struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// StartSweeper starts sweeping s every interval: 0 means
// DefaultSweepInterval, a negative interval starts nothing (Stop is then
// a no-op).
func StartSweeper(s Store, interval time.Duration, log *slog.Logger) *Sweeper {
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Sweeper{cancel: cancel, done: make(chan struct{})}
	if interval > 0 {
		go SweepExpiredSessions(ctx, s, interval, log, w.done)
	} else {
		close(w.done)
	}
	return w
}

// Stop stops the sweep and waits until it has returned.
func (w *Sweeper) Stop() {
	w.cancel()
	<-w.done
}

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
	if et, ok := As[EmailTokens](s); ok {
		if n, err := et.DeleteExpiredEmailTokens(ctx, now); err != nil && ctx.Err() == nil {
			log.Error("email token sweep failed", "deleted", n, "err", err)
		}
	}
}
