package web_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/authex/authex/exchange"
)

// Once the throttle remembers its cap of accounts with spent tokens, a
// flood of failed logins for new addresses must not take the budget of a
// legitimate login for another address: each address keeps a bucket of its
// own, and the least recently used is forgotten.
func TestPasswordThrottleFullOfKeys(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig(func(c *exchange.PasswordConfig) {
		c.AccountBurst, c.IPBurst, c.ThrottleKeys = 2, 1000, 4
	})))
	h.register("legit@example.com", goodPassword, "")
	// Fill the cap with accounts whose buckets have not refilled, then
	// keep failing with new addresses.
	for i := range 12 {
		email := fmt.Sprintf("nobody%d@example.com", i)
		assertError(t, h.login(email, "wrong password "+email), http.StatusUnauthorized, "invalid_credentials", "invalid_credentials")
	}
	in := h.login("legit@example.com", goodPassword)
	if in.status != http.StatusOK {
		t.Fatalf("legitimate login after a flood of new addresses: %d %s", in.status, in.body)
	}
	// An account's own budget still holds.
	for range 2 {
		assertError(t, h.login("legit@example.com", "not the password"), http.StatusUnauthorized, "invalid_credentials", "invalid_credentials")
	}
	res := h.login("legit@example.com", goodPassword)
	assertError(t, res, http.StatusTooManyRequests, "rate_limited", "rate_limited")
	if res.header.Get("Retry-After") == "" {
		t.Fatal("rate_limited without Retry-After")
	}
}
