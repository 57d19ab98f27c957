package exchange

import (
	"testing"
	"time"
)

// A bucket with a token spent is never forgotten before it refills: past
// its cap the throttle refuses new keys instead, and forgets only full
// buckets.
func TestThrottleNeverForgetsASpentBucket(t *testing.T) {
	ctx, now := t.Context(), time.Now()
	th := newThrottle(2, time.Hour, 3) // a token every 30 minutes
	take := func(k string, at time.Time) time.Duration {
		t.Helper()
		w, err := th.take(ctx, k, at)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	take("victim", now)
	take("victim", now)
	if take("victim", now) == 0 {
		t.Fatal("third take of a bucket of 2")
	}
	// A flood of new keys: two fit, the rest wait for the first refill.
	for i := range 10 {
		w := take(string(rune('a'+i)), now)
		if i < 2 && w != 0 {
			t.Fatalf("new key %d refused below the cap", i)
		}
		if i >= 2 && (w == 0 || w > 30*time.Minute) {
			t.Fatalf("new key %d past the cap: wait %v, want until the first bucket refills (30m)", i, w)
		}
	}
	if take("victim", now) == 0 {
		t.Fatal("the flood gave the victim's bucket back")
	}
	// a and b are full again after 30 minutes and forgotten; the victim has
	// one token back, not two.
	later := now.Add(31 * time.Minute)
	if take("new", later) != 0 {
		t.Fatal("a new key is refused although buckets have refilled")
	}
	if take("victim", later) != 0 || take("victim", later) == 0 {
		t.Fatal("the victim's bucket did not refill at its rate")
	}
	// A refund that fills a bucket forgets it; a refund of an unknown key
	// creates nothing.
	th.refund(ctx, "new", later)
	th.refund(ctx, "never seen", later)
	if n := th.len(); n != 1 { // the victim's; a's and b's refilled, new's was refunded
		t.Fatalf("%d buckets remembered, want 1", n)
	}
	if _, ok := th.keys[bucketKey("", "never seen")]; ok {
		t.Fatal("a refund created a bucket")
	}
	if _, ok := th.keys[bucketKey("", "new")]; ok {
		t.Fatal("a full bucket is remembered")
	}
}

func TestClientKeyGroupsIPv6By64(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":             "203.0.113.7",
		"2001:db8:1:2:aaaa::1":    "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ee::9": "2001:db8:1:2::/64",
		"::ffff:203.0.113.7":      "::ffff:203.0.113.7",
		"not an ip":               "not an ip",
	} {
		if got := clientKey(in); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"203.0.113.7":          "203.0.113.0/24",
		"2001:db8:1:2:aaaa::1": "2001:db8:1::/48",
		"not an ip":            "not an ip",
	} {
		if got := lockoutKey(in); got != want {
			t.Errorf("lockoutKey(%q) = %q, want %q", in, got, want)
		}
	}
}
