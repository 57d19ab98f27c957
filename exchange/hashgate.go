package exchange

import (
	"context"
	"runtime"
	"time"

	"golang.org/x/sync/semaphore"
)

// Bounds of the password hashing work.
const (
	// DefaultHashWait is how long a request waits for a hashing slot
	// before it is refused as busy.
	DefaultHashWait = time.Second
)

// hashGate bounds the argon2id hashes in flight. Each holds the configured
// memory (19 MiB by default) for tens of milliseconds, so without a bound
// a burst of logins or registrations is a burst of memory: with it, the
// hashing takes at most slots x memory, and a request that cannot get a
// slot within wait is refused at once rather than queued without end.
type hashGate struct {
	slots *semaphore.Weighted
	wait  time.Duration
}

func newHashGate(n int, wait time.Duration) *hashGate {
	if n <= 0 {
		n = 2 * runtime.GOMAXPROCS(0)
	}
	if wait <= 0 {
		wait = DefaultHashWait
	}
	return &hashGate{slots: semaphore.NewWeighted(int64(n)), wait: wait}
}

// busyError refuses a hash that found no slot; cause is for the log only.
func busyError(cause error) error {
	e := newError(KindBusy, ReasonBusy, "the server is busy; try again in a moment", cause)
	e.RetryAfter = time.Second
	return e
}

// acquire takes a slot, waiting at most g.wait; the caller must release it.
func (g *hashGate) acquire(ctx context.Context) error {
	if g.slots.TryAcquire(1) {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, g.wait)
	defer cancel()
	if err := g.slots.Acquire(wctx, 1); err != nil {
		if ctx.Err() != nil {
			// The request's time ran out (or its client left) while every
			// slot was taken: overload, not a server fault.
			return busyError(ctx.Err())
		}
		return busyError(nil)
	}
	return nil
}

func (g *hashGate) release() { g.slots.Release(1) }

// hash is hashPassword inside a slot of the gate.
func (p *passwords) hash(ctx context.Context, password string) (string, error) {
	if err := p.gate.acquire(ctx); err != nil {
		return "", err
	}
	defer p.gate.release()
	h, err := hashPassword(password, p.cfg.Argon2)
	if err != nil {
		return "", newError(KindServer, "", "internal error", err)
	}
	return h, nil
}

// check is checkPassword inside a slot of the gate. A busy or
// cancelled wait is an *Error; an unreadable hash is errBadHash.
func (p *passwords) check(ctx context.Context, password, encoded string) (ok bool, params Argon2Params, err error) {
	if err := p.gate.acquire(ctx); err != nil {
		return false, Argon2Params{}, err
	}
	defer p.gate.release()
	return checkPassword(password, encoded)
}
