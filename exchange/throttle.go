package exchange

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/authex/authex/storage"
)

// clientKey is the throttle key of a client address: the address itself
// for IPv4, its /64 for IPv6, since one client usually holds a whole /64
// and could otherwise take a fresh budget per address.
func clientKey(ip string) string { return prefixKey(ip, 32, 64) }

// lockoutKey is the wider network an account's per-network budget is
// kept for: a /24 for IPv4, a /48 for IPv6 (what one site or one home
// customer commonly holds), so that locking an account out of many
// networks takes as many networks, not one network's many addresses.
func lockoutKey(ip string) string { return prefixKey(ip, 24, 48) }

func prefixKey(ip string, v4, v6 int) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	bits := v6
	if a.Is4() {
		bits = v4
	} else if a.Is4In6() {
		return ip // as it came: a mapped address is its own key
	}
	if bits == a.BitLen() {
		return ip
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ip
	}
	return p.String()
}

// throttleMaxKeys bounds the memory of an in-memory throttle
// (PasswordConfig.ThrottleKeys overrides it).
const throttleMaxKeys = 100_000

// limiter is one budget: a token bucket per key, burst tokens refilled
// over a window. An attempt takes its token BEFORE the work it guards
// (take), so concurrent attempts cannot all pass the check while none has
// been counted yet; the caller may give the token back (refund) when the
// attempt turns out to be one that should be free, such as a successful
// sign-in. take answers 0, or how long until a token is there (having
// taken nothing), or an error when the budget cannot be read (the store).
type limiter interface {
	take(ctx context.Context, key string, now time.Time) (time.Duration, error)
	refund(ctx context.Context, key string, now time.Time)
}

// newLimiter is a budget named name: kept in the store when it is a
// storage.RateLimiter (PostgreSQL: every instance shares it), else in
// memory (bbolt: one instance).
func newLimiter(store storage.Store, name string, burst int, window time.Duration, maxKeys int, log *slog.Logger) limiter {
	if rl, ok := storage.As[storage.RateLimiter](store); ok {
		return &storeLimiter{rl: rl, name: name, rate: float64(burst) / window.Seconds(), burst: float64(burst), log: log}
	}
	return newThrottle(burst, window, maxKeys)
}

// bucketKey names key's bucket in the budget called name. Keys are hashed:
// a client-chosen email costs 32 bytes whatever its length.
func bucketKey(name, key string) string {
	sum := sha256.Sum256([]byte(name + "\x00" + key))
	return string(sum[:])
}

// storeLimiter keeps its buckets in the store (storage.RateLimiter).
type storeLimiter struct {
	rl          storage.RateLimiter
	name        string
	rate, burst float64
	log         *slog.Logger
}

func (l *storeLimiter) take(ctx context.Context, key string, now time.Time) (time.Duration, error) {
	wait, err := l.rl.TakeTokens(ctx, bucketKey(l.name, key), 1, l.rate, l.burst, now)
	if err != nil {
		return 0, storeError(err)
	}
	return wait, nil
}

func (l *storeLimiter) refund(ctx context.Context, key string, now time.Time) {
	// A refund that fails leaves a token spent: the throttle errs on the
	// side of counting.
	if _, err := l.rl.TakeTokens(context.WithoutCancel(ctx), bucketKey(l.name, key), -1, l.rate, l.burst, now); err != nil {
		l.log.WarnContext(ctx, "throttle refund", "budget", l.name, "err", err)
	}
}

// throttle is the in-memory limiter: a token bucket per key, in memory
// and per instance.
//
// A full bucket is the same as no bucket, so it is forgotten; a bucket
// with any token spent is never forgotten before it has refilled, or a
// flood of other keys could give an attacker a victim's guesses back. It
// remembers at most maxKeys buckets: when that many are partly spent, a
// new key is refused (rate limited until the first of them refills)
// rather than an old one forgotten. Memory stays bounded; what a flood
// can do is make attempts on new keys wait, and every bucket that stays
// is an attempt that got past the client's own budget (see passwords).
//
// golang.org/x/time/rate cannot do this: its reservations can be cancelled
// only before they take effect, never refunded afterwards. Nor is this an
// LRU (hashicorp/golang-lru and kin): an LRU evicts the least recently
// used entry when full, which here would be the bucket an attacker spent
// longest ago and hand its guesses back; this table evicts only buckets
// that have refilled (ordered by when they are full, not by use) and
// refuses new keys instead. So it stays hand-written.
type throttle struct {
	rate    float64 // tokens per second
	burst   float64
	maxKeys int

	mu     sync.Mutex
	keys   map[string]*bucket
	byFull bucketHeap // the bucket that is full soonest at the root
}

type bucket struct {
	key    string
	tokens float64
	at     time.Time // when tokens was last brought up to date
	fullAt time.Time // when tokens reaches burst
	index  int       // in byFull
}

func newThrottle(burst int, window time.Duration, maxKeys int) *throttle {
	if maxKeys <= 0 {
		maxKeys = throttleMaxKeys
	}
	return &throttle{rate: float64(burst) / window.Seconds(), burst: float64(burst), maxKeys: maxKeys,
		keys: map[string]*bucket{}}
}

// fill brings b's tokens up to now.
func (t *throttle) fill(b *bucket, now time.Time) {
	if now.After(b.at) {
		b.tokens = min(t.burst, b.tokens+now.Sub(b.at).Seconds()*t.rate)
		b.at = now
	}
}

// file files a remembered b again by when it is full, and forgets it when
// it is full already.
func (t *throttle) file(b *bucket) {
	if b.tokens >= t.burst {
		heap.Remove(&t.byFull, b.index)
		delete(t.keys, b.key)
		return
	}
	b.fullAt = b.at.Add(time.Duration((t.burst - b.tokens) / t.rate * float64(time.Second)))
	heap.Fix(&t.byFull, b.index)
}

// forgetFull forgets the buckets full at now.
func (t *throttle) forgetFull(now time.Time) {
	for len(t.byFull) > 0 && !t.byFull[0].fullAt.After(now) {
		delete(t.keys, heap.Pop(&t.byFull).(*bucket).key)
	}
}

func (t *throttle) take(_ context.Context, key string, now time.Time) (time.Duration, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forgetFull(now)
	key = bucketKey("", key)
	b, ok := t.keys[key]
	if !ok {
		if len(t.keys) >= t.maxKeys {
			// Every bucket remembered is partly spent: forgetting one
			// would hand its guesses back. The new key waits for the
			// first to refill.
			return max(t.byFull[0].fullAt.Sub(now), time.Millisecond), nil
		}
		// A full bucket (burst >= 1), less the token taken now.
		b = &bucket{key: key, tokens: t.burst - 1, at: now}
		t.keys[key] = b
		heap.Push(&t.byFull, b)
		t.file(b)
		return 0, nil
	}
	t.fill(b, now)
	if b.tokens < 1 {
		return max(time.Duration((1-b.tokens)/t.rate*float64(time.Second)), time.Millisecond), nil
	}
	b.tokens--
	t.file(b)
	return 0, nil
}

// refund gives back a token taken for key. A key not remembered has a
// full bucket: nothing to give back.
func (t *throttle) refund(_ context.Context, key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b, ok := t.keys[bucketKey("", key)]; ok {
		t.fill(b, now)
		b.tokens = min(t.burst, b.tokens+1)
		t.file(b)
	}
}

// len reports how many buckets are remembered (tests).
func (t *throttle) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.keys)
}

// bucketHeap orders buckets by fullAt (container/heap).
type bucketHeap []*bucket

func (h bucketHeap) Len() int           { return len(h) }
func (h bucketHeap) Less(i, j int) bool { return h[i].fullAt.Before(h[j].fullAt) }
func (h bucketHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *bucketHeap) Push(x any) {
	b := x.(*bucket)
	b.index = len(*h)
	*h = append(*h, b)
}
func (h *bucketHeap) Pop() any {
	old := *h
	b := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return b
}
