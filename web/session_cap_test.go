package web_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/storage"
)

// tokens.max_sessions_per_user: a sign-in past the cap revokes the user's
// oldest live session (reason session_limit, audited); the newer ones and
// the new one keep working.
func TestSessionCapRevokesTheOldest(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) { c.exchange.MaxSessionsPerUser = 3 })
	var signIns []tokens
	for range 3 {
		signIns = append(signIns, h.exchangeOK("corp", h.idToken("capped", nil)))
		h.clock.Advance(1) // distinct creation times
	}
	for _, s := range signIns {
		if res := h.get("/v1/me", s.AccessToken); res.status != http.StatusOK {
			t.Fatalf("a session within the cap: %d %s", res.status, res.body)
		}
	}
	fourth := h.exchangeOK("corp", h.idToken("capped", nil))

	oldest := signIns[0]
	assertError(t, h.get("/v1/me", oldest.AccessToken), http.StatusUnauthorized, "invalid_token", "revoked")
	assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": oldest.RefreshToken}),
		http.StatusBadRequest, "invalid_grant", "revoked")
	for _, s := range append(signIns[1:], fourth) {
		if res := h.get("/v1/me", s.AccessToken); res.status != http.StatusOK {
			t.Fatalf("a newer session after the cap: %d %s", res.status, res.body)
		}
	}
	sess, err := h.store.GetSession(context.Background(), oldest.SessionID)
	if err != nil || sess.RevokedReason != exchange.RevokeReasonSessionLimit {
		t.Fatalf("oldest session: reason %q, %v; want %q", sess.RevokedReason, err, exchange.RevokeReasonSessionLimit)
	}
	events, _ := h.store.ListAudit(context.Background(), storage.AuditFilter{Type: "session.revoked"})
	if len(events) != 1 || events[0].SessionID != oldest.SessionID {
		t.Fatalf("audit: %+v", events)
	}
	// Another user's sign-in touches none of this user's sessions.
	h.exchangeOK("corp", h.idToken("someone-else", nil))
	live := 0
	list, _ := h.store.ListSessions(context.Background(), fourth.User.ID)
	for _, s := range list {
		if !s.Revoked() {
			live++
		}
	}
	if live != 3 {
		t.Fatalf("%d live sessions, want the cap of 3", live)
	}
}
