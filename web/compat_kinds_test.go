package web_test

import (
	"net/http"
	"testing"

	"github.com/authex/authex/exchange"
)

// A misconfigured client on the simplejwt token views is invalid_client,
// not a bad token: a client told its token is bad throws it away and signs
// the user out, and the operator never learns the config is wrong.
func TestCompatTokenViewsKeepInvalidClient(t *testing.T) {
	// Clients configured, no compat_client (config check refuses this; the
	// routes must still answer it truthfully).
	h := newHarness(t, withCompat("djrestauth"), withClients(exchange.ClientConfig{ID: "spa", Public: true}))
	before := h.snapshot()
	res := h.postJSON("/api/auth/token/refresh/", map[string]string{"refresh": "whatever.1.x"})
	if res.status != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401: %s", res.status, res.body)
	}
	m := res.json(t)
	if m["reason"] != "missing_client" || m["code"] != nil || m["detail"] == "Token is invalid or expired" || m["detail"] == "" {
		t.Fatalf("body %v: want the client's own refusal, not token_not_valid", m)
	}
	if got := res.header.Get("WWW-Authenticate"); got != `Basic realm="authex", charset="UTF-8"` {
		t.Fatalf("WWW-Authenticate %q, want the client authentication scheme", got)
	}
	h.assertUnchanged(before)
}
