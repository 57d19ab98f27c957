package providers_test

import (
	"sync"
	"testing"
	"time"

	"github.com/authex/authex/providers"
	"github.com/authex/authex/providers/providertest"
)

// TestKeyFetchedReportsEveryFetch: the metrics hook sees the discovery
// fetch, a refetch for a rotated key, and a failed refetch.
func TestKeyFetchedReportsEveryFetch(t *testing.T) {
	iss := providertest.NewIssuer(t)
	var mu sync.Mutex
	var ok, failed int
	counts := func() (int, int) { mu.Lock(); defer mu.Unlock(); return ok, failed }
	v := newVerifier(t, iss, func(c *providers.Config) {
		*c = providers.WithTiming(*c, 10*time.Millisecond, 50*time.Millisecond, 20*time.Millisecond)
		c.KeyFetched = func(err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
			} else {
				ok++
			}
		}
	})
	if o, f := counts(); o != 1 || f != 0 || iss.JWKSFetches() != 1 {
		t.Fatalf("after discovery: ok %d failed %d (issuer saw %d)", o, f, iss.JWKSFetches())
	}
	iss.RotateKey()
	if _, err := v.Verify(t.Context(), providers.Credential{IDToken: iss.Mint(t, baseClaims())}); err != nil {
		t.Fatal(err)
	}
	if o, f := counts(); o != 2 || f != 0 {
		t.Fatalf("after a rotation: ok %d failed %d", o, f)
	}
	iss.SetDown(true)
	iss.RotateKey()
	time.Sleep(30 * time.Millisecond) // past the cooldown
	v.Verify(t.Context(), providers.Credential{IDToken: iss.Mint(t, baseClaims())})
	if o, f := counts(); o != 2 || f != 1 {
		t.Fatalf("after a failed refetch: ok %d failed %d", o, f)
	}
}
