package providers_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authex/authex/providers"
	"github.com/authex/authex/providers/providertest"
)

// fakeClock is a movable clock for Config.Now.
type fakeClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// TestRemovedKeyStopsVerifying (issue 11, finding 8): a key the provider
// takes out of its JWKS stops verifying once the cached set falls due,
// although no unknown kid ever asked for a refetch. Due: the answer's
// Cache-Control max-age clamped to [5m, jwks_refresh_max]; 1h without one.
func TestRemovedKeyStopsVerifying(t *testing.T) {
	tests := []struct {
		name         string
		cacheControl string
		stillValid   time.Duration // the old key verifies this long after discovery
		due          time.Duration // and no longer after this
	}{
		{"no cache headers: 1h", "", 59 * time.Minute, 61 * time.Minute},
		{"max-age=600", "public, max-age=600", 9 * time.Minute, 11 * time.Minute},
		{"max-age=10 is raised to 5m", "max-age=10", 4 * time.Minute, 6 * time.Minute},
		{"max-age=86400 is capped at 1h", "max-age=86400", 59 * time.Minute, 61 * time.Minute},
		{"no-store: 5m", "no-store", 4 * time.Minute, 6 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := providertest.NewIssuer(t)
			iss.SetJWKSHeader("Cache-Control", tt.cacheControl)
			clk := &fakeClock{}
			v := newVerifier(t, iss, func(c *providers.Config) { c.Now = clk.Now })
			// Tokens outlive the clock's moves: only the key matters here.
			old := iss.Mint(t, with("exp", time.Now().Add(3*time.Hour).Unix()))
			iss.RotateKey() // the old key leaves the JWKS

			clk.Advance(tt.stillValid)
			if _, err := v.Verify(t.Context(), providers.Credential{IDToken: old}); err != nil {
				t.Fatalf("before the keys fall due: %v", err)
			}
			if n := iss.JWKSFetches(); n != 1 {
				t.Fatalf("JWKS fetched %d times before due", n)
			}
			clk.Advance(tt.due - tt.stillValid)
			_, err := v.Verify(t.Context(), providers.Credential{IDToken: old})
			checkRefused(t, err, providers.ReasonUnknownKey, old)
			// The new key verifies.
			if _, err := v.Verify(t.Context(), providers.Credential{IDToken: iss.Mint(t, with("exp", time.Now().Add(3*time.Hour).Unix()))}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestScheduledRefreshInBackground: the refresh runs on its own, with no
// verification at all, and a failed one keeps the last good keys.
func TestScheduledRefreshInBackground(t *testing.T) {
	iss := providertest.NewIssuer(t)
	v := newVerifier(t, iss, func(c *providers.Config) {
		*c = providers.WithJWKSRefresh(*c, 10*time.Millisecond, 50*time.Millisecond)
	})
	old := iss.Mint(t, baseClaims())
	iss.RotateKey()
	deadline := time.Now().Add(5 * time.Second)
	for iss.JWKSFetches() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no scheduled refresh")
		}
		time.Sleep(10 * time.Millisecond)
	}
	fetches := iss.JWKSFetches()
	iss.SetDown(true) // from now on no fetch can succeed: the verdict is the cached set's
	_, err := v.Verify(t.Context(), providers.Credential{IDToken: old})
	checkRefused(t, err, providers.ReasonUnknownKey, old)
	if iss.JWKSFetches() < fetches {
		t.Fatal("fetch count went back")
	}
	// The provider is down: the last good keys (the new key) keep serving.
	time.Sleep(1200 * time.Millisecond)
	if _, err := v.Verify(t.Context(), providers.Credential{IDToken: iss.Mint(t, baseClaims())}); err != nil {
		t.Fatalf("the last good keys stopped serving while the provider is down: %v", err)
	}
}

// TestDiscoveredEndpointsMustBeHTTPS: a discovery document that names a
// plain-http jwks_uri or token_endpoint on a non-loopback host is refused;
// the provider stays unavailable and Ready says why. Loopback http (the
// test issuer) is fine.
func TestDiscoveredEndpointsMustBeHTTPS(t *testing.T) {
	for _, tt := range []struct{ name, jwks, token, want string }{
		{"http jwks_uri", "http://keys.example.com/keys", "", "jwks_uri"},
		{"http token_endpoint", "", "http://login.example.com/token", "token_endpoint"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var base string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				jwks, token := tt.jwks, tt.token
				if jwks == "" {
					jwks = base + "/keys"
				}
				if token == "" {
					token = base + "/token"
				}
				w.Write([]byte(`{"issuer":"` + base + `","jwks_uri":"` + jwks + `","token_endpoint":"` + token + `"}`))
			}))
			t.Cleanup(srv.Close)
			base = srv.URL
			v, err := providers.New(t.Context(), providers.WithTiming(providers.Config{
				Name: "o", Type: "oidc", Issuer: base, ClientIDs: []string{webClient}, Logger: quiet,
			}, time.Hour, time.Hour, time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				err := v.Ready()
				if err != nil && strings.Contains(err.Error(), "must use https") {
					if !strings.Contains(err.Error(), tt.want) {
						t.Fatalf("Ready = %v", err)
					}
					return
				}
				if err == nil || time.Now().After(deadline) {
					t.Fatalf("Ready = %v", err)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}
