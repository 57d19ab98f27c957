package exchange

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// clientKey is the throttle key of a client address: the address itself
// for IPv4, its /64 for IPv6, since one client usually holds a whole /64
// and could otherwise take a fresh budget per address.
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Is4In6() {
		return ip
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

// throttleMaxKeys bounds the memory a flood of distinct keys can take
// (PasswordConfig.ThrottleKeys overrides it).
const throttleMaxKeys = 100_000

// throttle is a token bucket per key (an account's email, a client IP):
// burst attempts at once, refilled over window. An attempt takes its token
// BEFORE the work it guards (take), so concurrent attempts cannot all pass
// the check while none has been counted yet; the caller may give the token
// back (refund) when the attempt turns out to be one that should be free,
// such as a successful sign-in. It is in memory and per instance: behind a
// load balancer each instance throttles on its own.
//
// It remembers at most maxKeys keys; a new key past that forgets the key
// least recently used, in constant time. Every key keeps a bucket of its
// own: a flood of new keys costs each new key nothing but the forgetting
// of an old one, and never shares a budget with legitimate keys. To reset
// a key's bucket by flooding, an attacker must send maxKeys requests with
// other keys between two attempts on it.
//
// golang.org/x/time/rate cannot do this: its reservations can be cancelled
// only before they take effect, never refunded afterwards.
type throttle struct {
	rate    float64 // tokens per second
	burst   float64
	maxKeys int

	mu   sync.Mutex
	keys map[string]*list.Element // of *bucket
	lru  list.List                // most recently used at the front
}

type bucket struct {
	key    string
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

func newThrottle(burst int, window time.Duration, maxKeys int) *throttle {
	if maxKeys <= 0 {
		maxKeys = throttleMaxKeys
	}
	return &throttle{rate: float64(burst) / window.Seconds(), burst: float64(burst), maxKeys: maxKeys,
		keys: map[string]*list.Element{}}
}

// fill brings b's tokens up to now.
func (t *throttle) fill(b *bucket, now time.Time) {
	if b.at.IsZero() {
		b.at = now
	}
	if now.After(b.at) {
		b.tokens = min(t.burst, b.tokens+now.Sub(b.at).Seconds()*t.rate)
		b.at = now
	}
}

func (t *throttle) bucket(key string, now time.Time) *bucket {
	if e, ok := t.keys[key]; ok {
		t.lru.MoveToFront(e)
		b := e.Value.(*bucket)
		t.fill(b, now)
		return b
	}
	if len(t.keys) >= t.maxKeys {
		oldest := t.lru.Back()
		delete(t.keys, t.lru.Remove(oldest).(*bucket).key)
	}
	b := &bucket{key: key, tokens: t.burst, at: now}
	t.keys[key] = t.lru.PushFront(b)
	return b
}

// take spends one of key's tokens and answers 0, or, when there is none,
// spends nothing and answers how long until there is one.
func (t *throttle) take(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.bucket(key, now)
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	wait := time.Duration((1 - b.tokens) / t.rate * float64(time.Second))
	return max(wait, time.Millisecond)
}

// refund gives back a token taken for key.
func (t *throttle) refund(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.bucket(key, now)
	b.tokens = min(t.burst, b.tokens+1)
}
