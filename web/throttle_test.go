package web_test

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/authex/authex/exchange"
)

// withForwardedFor trusts X-Forwarded-For from loopback, so a test can
// speak from any client address.
func withForwardedFor() harnessOption {
	return func(c *harnessConfig) {
		_, n, _ := net.ParseCIDR("127.0.0.1/32")
		c.web.TrustedProxies = []*net.IPNet{n}
	}
}

func (h *harness) loginFrom(ip, email, password string) response {
	h.t.Helper()
	return h.postJSON("/v1/login", map[string]string{"email": email, "password": password}, "X-Forwarded-For", ip)
}

// The flood attack (issue 11, finding 3): an attacker spends a victim's
// guesses, then floods failed logins for distinct addresses until the
// throttle holds its cap of keys, hoping the victim's spent bucket is
// forgotten. It never is: the flood's new keys are refused instead, and
// the victim's account stays throttled (even for the right password).
func TestPasswordThrottleSurvivesAFlood(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig(func(c *exchange.PasswordConfig) {
		c.AccountBurst, c.IPBurst, c.ThrottleKeys = 2, 1000, 4
	})))
	h.register("victim@example.com", goodPassword, "")
	for range 2 {
		assertError(t, h.login("victim@example.com", "not the password"), http.StatusUnauthorized, "invalid_credentials", "invalid_credentials")
	}
	assertError(t, h.login("victim@example.com", goodPassword), http.StatusTooManyRequests, "rate_limited", "rate_limited")
	before := h.snapshot()
	flooded := 0
	for i := range 12 {
		email := fmt.Sprintf("nobody%d@example.com", i)
		res := h.login(email, "wrong password "+email)
		switch res.status {
		case http.StatusUnauthorized:
			assertError(t, res, http.StatusUnauthorized, "invalid_credentials", "invalid_credentials")
		default:
			assertError(t, res, http.StatusTooManyRequests, "rate_limited", "rate_limited")
			if s, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || s < 1 {
				t.Fatalf("table full: Retry-After %q", res.header.Get("Retry-After"))
			}
			flooded++
		}
	}
	if flooded == 0 {
		t.Fatal("12 new keys past a cap of 4 and none refused")
	}
	res := h.login("victim@example.com", goodPassword)
	assertError(t, res, http.StatusTooManyRequests, "rate_limited", "rate_limited")
	h.assertUnchanged(before)
	// Once the victim's bucket has refilled, the owner signs in.
	h.clock.Advance(passwordConfig().Window)
	h.loginOK("victim@example.com", goodPassword)
}

// Locking an account out is not free: one network's failures lock the
// account for that network only; the owner, elsewhere, still signs in.
// Only failures from enough networks to spend the account's total budget
// lock it everywhere.
func TestPasswordLockoutCostsManyNetworks(t *testing.T) {
	h := newHarness(t, withForwardedFor(), withPassword(passwordConfig(func(c *exchange.PasswordConfig) {
		c.AccountBurst, c.AccountTotalBurst, c.IPBurst = 2, 4, 100
	})))
	h.register("victim@example.com", goodPassword, "")
	for range 2 {
		assertError(t, h.loginFrom("198.51.100.7", "victim@example.com", "guess"), http.StatusUnauthorized, "invalid_credentials", "invalid_credentials")
	}
	// Another address of the attacker's /24 is the same network.
	assertError(t, h.loginFrom("198.51.100.8", "victim@example.com", goodPassword), http.StatusTooManyRequests, "rate_limited", "rate_limited")
	// The owner, on another network, is not locked out.
	if res := h.loginFrom("203.0.113.5", "victim@example.com", goodPassword); res.status != http.StatusOK {
		t.Fatalf("owner from another network after an attacker's failures: %d %s", res.status, res.body)
	}
	// A second attacker network spends the total: now everyone waits.
	for range 2 {
		assertError(t, h.loginFrom("192.0.2.9", "victim@example.com", "guess"), http.StatusUnauthorized, "invalid_credentials", "invalid_credentials")
	}
	assertError(t, h.loginFrom("203.0.113.5", "victim@example.com", goodPassword), http.StatusTooManyRequests, "rate_limited", "rate_limited")
}
