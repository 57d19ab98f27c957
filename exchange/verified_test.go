package exchange

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authex/authex/storage/bolt"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *testClock) add(d time.Duration) { c.set(c.now().Add(d)) }

func cacheService(t *testing.T) (*Service, *bolt.Store, *testClock) {
	t.Helper()
	store := openBolt(t, bolt.Options{SweepInterval: -1})
	clk := &testClock{t: time.Now().Truncate(time.Second)}
	svc, err := New(context.Background(), Config{
		Issuer: "https://auth.example.com", Audience: []string{"api"}, Algorithm: AlgES256,
		AccessTTL: 15 * time.Minute, RefreshTTL: time.Hour, SessionMax: 24 * time.Hour, ReuseGrace: 10 * time.Second,
	}, store, nil, Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return svc, store, clk
}

func signedAccess(t *testing.T, svc *Service, at time.Time) string {
	t.Helper()
	sess, user := benchRecords()
	sess.RotatedAt = at
	tok, err := svc.keys.Sign(typAccess, svc.accessClaims(sess, user))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func cached(svc *Service) int {
	return svc.verified.entries().Len()
}

func reasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func TestVerifiedCacheAnswersAsTheParser(t *testing.T) {
	svc, _, clk := cacheService(t)
	tok := signedAccess(t, svc, clk.now())
	first, err := svc.verifyAccess(tok)
	if err != nil {
		t.Fatal(err)
	}
	if cached(svc) != 1 {
		t.Fatalf("%d cached entries after one verification, want 1", cached(svc))
	}
	second, err := svc.verifyAccess(tok)
	if err != nil {
		t.Fatal(err)
	}
	if first.SessionID != second.SessionID || first.Subject != second.Subject || first.ID != second.ID ||
		!first.ExpiresAt.Equal(second.ExpiresAt.Time) {
		t.Fatalf("cached claims differ:\n%+v\n%+v", first, second)
	}
	second.Subject = "changed by a caller"
	if third, _ := svc.verifyAccess(tok); third.Subject != first.Subject {
		t.Fatal("a caller's change reached the cache")
	}

	// Different bytes are never a hit: a token with another signature fails.
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	if _, err := svc.verifyAccess(forged); reasonOf(err) != ReasonSignature {
		t.Fatalf("forged signature: %v (reason %q)", err, reasonOf(err))
	}
	// Failures are not cached.
	if cached(svc) != 1 {
		t.Fatalf("%d cached entries, want 1", cached(svc))
	}
}

func TestVerifiedCacheExpiresWithTheToken(t *testing.T) {
	svc, _, clk := cacheService(t)
	tok := signedAccess(t, svc, clk.now())
	if _, err := svc.verifyAccess(tok); err != nil {
		t.Fatal(err)
	}
	// Just inside the leeway: still good, from the cache or not.
	clk.add(15*time.Minute + accessLeeway - time.Second)
	if _, err := svc.verifyAccess(tok); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	clk.add(time.Second) // exactly exp + leeway: the parser calls it expired
	if _, err := svc.verifyAccess(tok); reasonOf(err) != ReasonExpired {
		t.Fatalf("at exp+leeway: %v (reason %q), want %s", err, reasonOf(err), ReasonExpired)
	}
}

func TestVerifiedCacheDropsTokensOfARemovedKey(t *testing.T) {
	svc, store, clk := cacheService(t)
	ctx := context.Background()
	old := svc.keys.SigningKID()
	if old == "" {
		t.Fatal("no key signs")
	}
	tok := signedAccess(t, svc, clk.now())
	if _, err := svc.verifyAccess(tok); err != nil {
		t.Fatal(err)
	}
	// The operator rotates and removes the old key (say it leaked).
	if _, err := svc.keys.Create(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteSigningKey(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := svc.keys.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.verifyAccess(tok); err == nil {
		t.Fatal("a token of a removed key still verifies through the cache")
	}
}

func TestVerifiedCacheIsBounded(t *testing.T) {
	var c verifiedCache
	now := time.Now()
	svc, _, _ := cacheService(t)
	tok := signedAccess(t, svc, now)
	claims, err := svc.verifyAccess(tok)
	if err != nil {
		t.Fatal(err)
	}
	for i := range verifiedCacheSize * 3 {
		c.put(tok+strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String(), claims)
	}
	if n := c.entries().Len(); n > verifiedCacheSize {
		t.Fatalf("%d entries, bound %d", n, verifiedCacheSize)
	}
}
