package exchange

import (
	"testing"
	"time"
)

// Past its cap the throttle forgets the key least recently used, and every
// key keeps a bucket of its own.
func TestThrottleForgetsLeastRecentlyUsed(t *testing.T) {
	now := time.Now()
	th := newThrottle(2, time.Hour, 3)
	for _, k := range []string{"a", "b", "c"} {
		if th.take(k, now) != 0 {
			t.Fatalf("first take of %s refused", k)
		}
	}
	th.take("a", now) // a is now the most recently used, and empty
	th.take("d", now) // forgets b, the least recently used
	if len(th.keys) != 3 || th.lru.Len() != 3 {
		t.Fatalf("%d keys, %d in the list; want 3", len(th.keys), th.lru.Len())
	}
	if _, ok := th.keys["b"]; ok {
		t.Fatal("b is remembered; it was the least recently used")
	}
	if th.take("a", now) == 0 {
		t.Fatal("a's empty bucket was forgotten or shared")
	}
	// New keys past the cap each get a full bucket.
	for i := range 10 {
		k := string(rune('e' + i))
		first := th.take(k, now)
		second := th.take(k, now)
		if first != 0 || second != 0 {
			t.Fatalf("new key %s did not get a bucket of its own", k)
		}
	}
	if len(th.keys) != 3 || th.lru.Len() != 3 {
		t.Fatalf("%d keys, %d in the list; want 3", len(th.keys), th.lru.Len())
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
}
