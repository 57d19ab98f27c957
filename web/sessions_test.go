package web_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

type sessionsAnswer struct {
	Sessions []struct {
		ID            string    `json:"id"`
		CreatedAt     time.Time `json:"created_at"`
		LastRefreshAt time.Time `json:"last_refresh_at"`
		ExpiresAt     time.Time `json:"expires_at"`
		UserAgent     string    `json:"user_agent"`
		IP            string    `json:"ip"`
		Provider      string    `json:"provider"`
		Current       bool      `json:"current"`
	} `json:"sessions"`
}

func (h *harness) sessions(accessToken string) sessionsAnswer {
	h.t.Helper()
	res := h.get("/v1/me/sessions", accessToken)
	if res.status != http.StatusOK {
		h.t.Fatalf("sessions: %d %s", res.status, res.body)
	}
	var out sessionsAnswer
	if err := json.Unmarshal(res.body, &out); err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) exchangeWithUA(provider, idToken, ua string) tokens {
	h.t.Helper()
	res := h.postJSON("/v1/exchange", map[string]any{"provider": provider, "id_token": idToken}, "User-Agent", ua)
	if res.status != http.StatusOK {
		h.t.Fatalf("exchange: %d %s", res.status, res.body)
	}
	return decodeTokens(h.t, res)
}

func TestSessionsListAndRevoke(t *testing.T) {
	h := newHarness(t)
	laptop := h.exchangeWithUA("corp", h.idToken("sess-a", nil), "Laptop/1.0")
	h.clock.Advance(time.Minute)
	phone := h.exchangeWithUA("corp", h.idToken("sess-a", nil), "Phone/2.0")
	stranger := h.exchangeOK("corp", h.idToken("sess-stranger", nil))

	// Refresh the laptop session so last_refresh_at moves.
	h.clock.Advance(time.Minute)
	res := h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": laptop.RefreshToken})
	if res.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", res.status, res.body)
	}
	laptop2 := decodeTokens(t, res)

	list := h.sessions(phone.AccessToken)
	if len(list.Sessions) != 2 {
		t.Fatalf("want 2 sessions, got %+v", list)
	}
	byID := map[string]int{}
	for i, s := range list.Sessions {
		byID[s.ID] = i
		if s.Provider != "corp" || s.IP != "127.0.0.1" || s.CreatedAt.IsZero() || !s.ExpiresAt.After(s.CreatedAt) {
			t.Fatalf("session fields: %+v", s)
		}
	}
	l, p := list.Sessions[byID[laptop.SessionID]], list.Sessions[byID[phone.SessionID]]
	if l.UserAgent != "Laptop/1.0" || p.UserAgent != "Phone/2.0" || l.Current || !p.Current {
		t.Fatalf("user agents or current flags wrong: %+v", list)
	}
	if !l.LastRefreshAt.After(l.CreatedAt) || !p.LastRefreshAt.Equal(p.CreatedAt) {
		t.Fatalf("last_refresh_at: laptop %+v phone %+v", l, p)
	}
	if list.Sessions[0].ID != phone.SessionID {
		t.Fatalf("sessions not newest first: %+v", list)
	}

	// Another user's session id, or an unknown one: 404, nothing written.
	before := h.snapshot()
	assertError(t, h.del("/v1/me/sessions/"+stranger.SessionID, phone.AccessToken), 404, "not_found", "not_found")
	assertError(t, h.del("/v1/me/sessions/nope", phone.AccessToken), 404, "not_found", "not_found")
	assertError(t, h.get("/v1/me/sessions", ""), 401, "invalid_token", "missing_token")
	h.assertUnchanged(before)
	if got := h.sessions(stranger.AccessToken); len(got.Sessions) != 1 {
		t.Fatalf("stranger's sessions: %+v", got)
	}

	// Revoking the laptop from the phone: its refresh token dies, the list shrinks.
	if res := h.del("/v1/me/sessions/"+laptop.SessionID, phone.AccessToken); res.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", res.status, res.body)
	}
	assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": laptop2.RefreshToken}), 400, "invalid_grant", "revoked")
	assertError(t, h.get("/v1/me", laptop2.AccessToken), 401, "invalid_token", "revoked")
	if got := h.sessions(phone.AccessToken); len(got.Sessions) != 1 || got.Sessions[0].ID != phone.SessionID {
		t.Fatalf("after revoke: %+v", got)
	}
	if got := h.auditTypes(); countOf(got, "session.revoked") != 1 {
		t.Fatalf("audit trail: %v", got)
	}
	// Revoking it again is idempotent and writes nothing.
	before = h.snapshot()
	if res := h.del("/v1/me/sessions/"+laptop.SessionID, phone.AccessToken); res.status != http.StatusNoContent {
		t.Fatalf("second revoke: %d %s", res.status, res.body)
	}
	h.assertUnchanged(before)

	// Revoking the current session signs this device out.
	if res := h.del("/v1/me/sessions/"+phone.SessionID, phone.AccessToken); res.status != http.StatusNoContent {
		t.Fatalf("revoke current: %d %s", res.status, res.body)
	}
	assertError(t, h.get("/v1/me/sessions", phone.AccessToken), 401, "invalid_token", "revoked")
}
