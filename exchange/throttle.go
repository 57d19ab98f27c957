package exchange

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// throttleMaxKeys bounds the memory a flood of distinct keys can take.
const throttleMaxKeys = 100_000

// throttle counts failures per key (an account's email, a client IP) with
// one token bucket each: burst failures at once, refilled over window.
// Successes cost nothing. It is in memory and per instance: behind a load
// balancer each instance throttles on its own.
type throttle struct {
	limit rate.Limit
	burst int

	mu       sync.Mutex
	keys     map[string]*rate.Limiter
	overflow *rate.Limiter // shared by keys that arrive while the map is full
}

func newThrottle(burst int, window time.Duration) *throttle {
	limit := rate.Limit(float64(burst) / window.Seconds())
	return &throttle{limit: limit, burst: burst, keys: map[string]*rate.Limiter{},
		overflow: rate.NewLimiter(limit, burst)}
}

func (t *throttle) limiter(key string, now time.Time) *rate.Limiter {
	if l, ok := t.keys[key]; ok {
		return l
	}
	if len(t.keys) >= throttleMaxKeys {
		// Forget the keys whose bucket has refilled: they hold no state.
		for k, l := range t.keys {
			if l.TokensAt(now) >= float64(t.burst) {
				delete(t.keys, k)
			}
		}
		if len(t.keys) >= throttleMaxKeys {
			return t.overflow
		}
	}
	l := rate.NewLimiter(t.limit, t.burst)
	t.keys[key] = l
	return l
}

// wait reports how long key must wait before its next attempt (0: now).
func (t *throttle) wait(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	tokens := t.limiter(key, now).TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(t.limit) * float64(time.Second))
}

// fail records one failed attempt by key.
func (t *throttle) fail(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.limiter(key, now).AllowN(now, 1)
}
