package storagetest

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authex/authex/storage"
)

// testCredentials: RecordCredential refuses a second record of one key
// while the first is unexpired (exactly one of many concurrent records
// wins), replaces an expired one, and DeleteExpiredCredentials forgets
// exactly the expired ones. A store with storage.RateLimiter also runs
// the bucket tests.
func testCredentials(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	key := "https://issuer.example.com jti j-1"
	if err := s.RecordCredential(ctx, key, t0.Add(time.Hour), t0); err != nil {
		t.Fatalf("first record: %v", err)
	}
	if err := s.RecordCredential(ctx, key, t0.Add(2*time.Hour), t0.Add(time.Minute)); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("second record of an unexpired key: %v, want ErrConflict", err)
	}
	// Another key, and a long one (backends may hash it), are their own.
	long := strings.Repeat("k", 10_000)
	for _, k := range []string{key + "x", long} {
		if err := s.RecordCredential(ctx, k, t0.Add(time.Hour), t0); err != nil {
			t.Fatalf("record %.20q: %v", k, err)
		}
	}
	// Expired at now: replaced, and the new record holds until its expiry.
	if err := s.RecordCredential(ctx, key, t0.Add(3*time.Hour), t0.Add(time.Hour)); err != nil {
		t.Fatalf("record of an expired key: %v", err)
	}
	if err := s.RecordCredential(ctx, key, t0.Add(4*time.Hour), t0.Add(2*time.Hour)); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("record of the replaced key: %v, want ErrConflict", err)
	}

	// 20 concurrent records of one new key: exactly one nil.
	var won, lost atomic.Int32
	atOnce(20, func(int) {
		switch err := s.RecordCredential(ctx, "race", t0.Add(time.Hour), t0); {
		case err == nil:
			won.Add(1)
		case errors.Is(err, storage.ErrConflict):
			lost.Add(1)
		default:
			t.Errorf("concurrent record: %v", err)
		}
	})
	if won.Load() != 1 || lost.Load() != 19 {
		t.Fatalf("20 concurrent records of one key: %d won, %d conflicts; want 1 and 19", won.Load(), lost.Load())
	}

	// The sweep at t0+1h removes the three records expiring then ("race",
	// key+"x", long) and keeps key (until t0+3h).
	if n, err := s.DeleteExpiredCredentials(ctx, t0.Add(time.Hour)); err != nil || n != 3 {
		t.Fatalf("DeleteExpiredCredentials = %d, %v; want 3", n, err)
	}
	if err := s.RecordCredential(ctx, "race", t0.Add(5*time.Hour), t0.Add(time.Hour)); err != nil {
		t.Fatalf("record after the sweep: %v", err)
	}
	if err := s.RecordCredential(ctx, key, t0.Add(5*time.Hour), t0.Add(time.Hour)); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("the sweep removed an unexpired record: %v", err)
	}
	if n, err := s.DeleteExpiredCredentials(ctx, t0.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("second sweep = %d, %v; want 0", n, err)
	}

	if rl, ok := storage.As[storage.RateLimiter](s); ok {
		t.Run("RateLimiter", func(t *testing.T) { testRateLimiter(t, rl, t0) })
	}
}

// testRateLimiter: a bucket of burst 3 refilled at 1 token a minute.
func testRateLimiter(t *testing.T, rl storage.RateLimiter, t0 time.Time) {
	ctx := t.Context()
	rate, burst := 1.0/60, 3.0
	take := func(key string, n float64, at time.Time) time.Duration {
		t.Helper()
		wait, err := rl.TakeTokens(ctx, key, n, rate, burst, at)
		if err != nil {
			t.Fatalf("TakeTokens(%s, %v): %v", key, n, err)
		}
		return wait
	}
	for i := range 3 {
		if w := take("a", 1, t0); w != 0 {
			t.Fatalf("take %d of a full bucket refused (%v)", i, w)
		}
	}
	if w := take("a", 1, t0); w < 59*time.Second || w > 61*time.Second {
		t.Fatalf("empty bucket: wait %v, want about a minute", w)
	}
	if w := take("b", 1, t0); w != 0 {
		t.Fatal("another key shares a's bucket")
	}
	// A refund gives one back; refills accrue with time.
	take("a", -1, t0)
	if w := take("a", 1, t0); w != 0 {
		t.Fatal("refunded token not there")
	}
	if w := take("a", 1, t0.Add(30*time.Second)); w == 0 {
		t.Fatal("half a token taken")
	}
	if w := take("a", 1, t0.Add(61*time.Second)); w != 0 {
		t.Fatal("refilled token not there")
	}
	// More than the burst is never granted, and a refund never overfills.
	if w := take("c", 4, t0); w == 0 {
		t.Fatal("4 tokens granted from a bucket of 3")
	}
	take("d", -5, t0)
	for range 3 {
		take("d", 1, t0)
	}
	if w := take("d", 1, t0); w == 0 {
		t.Fatal("a refund overfilled the bucket")
	}

	// 20 concurrent takes from a fresh bucket of 3: exactly 3 granted.
	var granted atomic.Int32
	atOnce(20, func(int) {
		wait, err := rl.TakeTokens(ctx, "race", 1, rate, burst, t0)
		if err != nil {
			t.Errorf("concurrent take: %v", err)
		}
		if wait == 0 {
			granted.Add(1)
		}
	})
	if granted.Load() != 3 {
		t.Fatalf("20 concurrent takes from a bucket of 3: %d granted", granted.Load())
	}

	// Full buckets are forgotten, partly spent ones kept.
	if _, err := rl.DeleteFullBuckets(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if w := take("race", 1, t0); w == 0 {
		t.Fatal("the sweep forgot a spent bucket")
	}
	if n, err := rl.DeleteFullBuckets(ctx, t0.Add(time.Hour)); err != nil || n < 4 {
		t.Fatalf("DeleteFullBuckets an hour later = %d, %v; want every bucket", n, err)
	}
}
