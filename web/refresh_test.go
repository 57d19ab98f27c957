package web_test

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestConcurrentRefreshesShareOneAnswer(t *testing.T) {
	h := newHarness(t)
	tk := h.exchangeOK("corp", h.idToken("busy", nil))
	const n = 20
	answers := make([]tokens, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res := h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": tk.RefreshToken})
			if res.status != http.StatusOK {
				t.Errorf("refresh %d: %d %s", i, res.status, res.body)
				return
			}
			answers[i] = decodeTokens(t, res)
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, a := range answers {
		if a.AccessToken != answers[0].AccessToken || a.RefreshToken != answers[0].RefreshToken {
			t.Fatalf("answer %d differs from answer 0", i)
		}
	}
	if answers[0].RefreshToken == tk.RefreshToken {
		t.Fatal("the token was not rotated")
	}
	// The session rotated exactly once.
	sess, err := h.store.GetSession(t.Context(), tk.SessionID)
	if err != nil || sess.Generation != 2 {
		t.Fatalf("generation %d after %d concurrent refreshes (%v)", sess.Generation, n, err)
	}
	// And the new token works.
	if res := h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": answers[0].RefreshToken}); res.status != http.StatusOK {
		t.Fatalf("new token: %d %s", res.status, res.body)
	}
}

func TestRefreshReuseAfterGraceRevokesSession(t *testing.T) {
	h := newHarness(t)
	tk := h.exchangeOK("corp", h.idToken("reuser", nil))
	res := h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": tk.RefreshToken})
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.body)
	}
	newest := decodeTokens(t, res)

	h.clock.Advance(h.cfg.ReuseGrace + time.Second)
	before := h.snapshot()
	assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": tk.RefreshToken}), 400, "invalid_grant", "reused")
	// The newest token dies with the session.
	assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": newest.RefreshToken}), 400, "invalid_grant", "revoked")
	assertError(t, h.get("/v1/me", newest.AccessToken), 401, "invalid_token", "revoked")
	after := h.snapshot()
	sessions := after.Sessions[tk.User.ID]
	if len(sessions) != 1 || sessions[0].RevokedReason != "reused" || len(after.Audit) != len(before.Audit)+1 ||
		after.Audit[0].Type != "session.reused" {
		t.Fatalf("reuse was not recorded: %+v %+v", sessions, after.Audit)
	}
}

func TestRefreshOlderGenerationIsReuseEvenInGrace(t *testing.T) {
	h := newHarness(t)
	tk := h.exchangeOK("corp", h.idToken("old", nil))
	gen2 := decodeTokens(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": tk.RefreshToken}))
	h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": gen2.RefreshToken})
	// Generation 1 is two behind: reuse at once, grace or not.
	assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": tk.RefreshToken}), 400, "invalid_grant", "reused")
}

func TestRefreshLimits(t *testing.T) {
	t.Run("idle expired", func(t *testing.T) {
		h := newHarness(t)
		tk := h.exchangeOK("corp", h.idToken("sleepy", nil))
		h.clock.Advance(h.cfg.RefreshTTL + time.Minute)
		before := h.snapshot()
		assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": tk.RefreshToken}), 400, "invalid_grant", "expired")
		h.assertUnchanged(before)
	})
	t.Run("refresh slides the idle limit but not the absolute one", func(t *testing.T) {
		h := newHarness(t)
		tk := h.exchangeOK("corp", h.idToken("steady", nil))
		token := tk.RefreshToken
		// Refresh every 10 days: idle limit (14d) never hits, absolute (90d) does.
		for elapsed := 0; ; elapsed += 10 {
			h.clock.Advance(10 * 24 * time.Hour)
			res := h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": token})
			if elapsed+10 >= 90 {
				assertError(t, res, 400, "invalid_grant", "expired")
				return
			}
			if res.status != http.StatusOK {
				t.Fatalf("day %d: %d %s", elapsed+10, res.status, res.body)
			}
			token = decodeTokens(t, res).RefreshToken
		}
	})
	t.Run("bad tokens", func(t *testing.T) {
		h := newHarness(t)
		tk := h.exchangeOK("corp", h.idToken("tamper", nil))
		before := h.snapshot()
		for _, bad := range []string{"garbage", tk.SessionID + ".5." + "AAAA", tk.RefreshToken + "x"} {
			assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": bad}), 400, "invalid_grant", "malformed")
		}
		assertError(t, h.postJSON("/v1/token/refresh", map[string]string{}), 400, "invalid_request", "missing_refresh_token")
		h.assertUnchanged(before)
	})
}

func TestLogoutScopes(t *testing.T) {
	h := newHarness(t)
	a := h.exchangeOK("corp", h.idToken("multi", nil))
	b := h.exchangeOK("corp", h.idToken("multi", nil))
	c := h.exchangeOK("corp", h.idToken("multi", nil))

	// others, by Bearer: b and c go, a stays.
	res := h.do(http.MethodPost, "/v1/logout", "application/json", []byte(`{"scope":"others"}`), "Authorization", "Bearer "+a.AccessToken)
	if res.status != http.StatusOK || res.json(t)["revoked"] != float64(2) {
		t.Fatalf("others: %d %s", res.status, res.body)
	}
	assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": b.RefreshToken}), 400, "invalid_grant", "revoked")
	assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": c.RefreshToken}), 400, "invalid_grant", "revoked")
	a2 := decodeTokens(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": a.RefreshToken}))

	d := h.exchangeOK("corp", h.idToken("multi", nil))
	// global, by refresh token: everything goes.
	res = h.postJSON("/v1/logout", map[string]string{"refresh_token": a2.RefreshToken, "scope": "global"})
	if res.status != http.StatusOK || res.json(t)["revoked"] != float64(2) {
		t.Fatalf("global: %d %s", res.status, res.body)
	}
	assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": d.RefreshToken}), 400, "invalid_grant", "revoked")

	// Logging out again is harmless; a bad scope or no credential is not.
	if res := h.postJSON("/v1/logout", map[string]string{"refresh_token": a2.RefreshToken}); res.status != http.StatusOK {
		t.Fatalf("second logout: %d %s", res.status, res.body)
	}
	assertError(t, h.postJSON("/v1/logout", map[string]string{"refresh_token": a2.RefreshToken, "scope": "galaxy"}), 400, "invalid_request", "invalid_scope")
	assertError(t, h.postJSON("/v1/logout", map[string]string{}), 400, "invalid_request", "missing_credential")
}

// TestLogoutWithSpentToken: a refresh token that can no longer refresh must
// not sign the user out of their other sessions.
func TestLogoutWithSpentToken(t *testing.T) {
	h := newHarness(t)
	a := h.exchangeOK("corp", h.idToken("spent", nil))
	b := h.exchangeOK("corp", h.idToken("spent", nil))
	rotated := decodeTokens(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": a.RefreshToken}))
	h.clock.Advance(h.cfg.ReuseGrace + time.Second)

	// The spent generation is reuse: its own session dies, the other lives.
	assertError(t, h.postJSON("/v1/logout", map[string]string{"refresh_token": a.RefreshToken, "scope": "global"}), 400, "invalid_grant", "reused")
	assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": rotated.RefreshToken}), 400, "invalid_grant", "revoked")
	if res := h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": b.RefreshToken}); res.status != http.StatusOK {
		t.Fatalf("the other session was touched: %d %s", res.status, res.body)
	}

	// A revoked session's token cannot reach the others either, by refresh
	// token or by its access token.
	before := h.snapshot()
	assertError(t, h.postJSON("/v1/logout", map[string]string{"refresh_token": rotated.RefreshToken, "scope": "others"}), 400, "invalid_grant", "revoked")
	res := h.do(http.MethodPost, "/v1/logout", "application/json", []byte(`{"scope":"global"}`), "Authorization", "Bearer "+rotated.AccessToken)
	assertError(t, res, 401, "invalid_token", "revoked")
	h.assertUnchanged(before)
	// Signing out of an already revoked session locally is harmless, and
	// counts nothing, by refresh token or by access token.
	if res := h.postJSON("/v1/logout", map[string]string{"refresh_token": rotated.RefreshToken}); res.status != http.StatusOK || res.json(t)["revoked"] != float64(0) {
		t.Fatalf("local logout of a revoked session: %d %s", res.status, res.body)
	}
	res = h.do(http.MethodPost, "/v1/logout", "", nil, "Authorization", "Bearer "+rotated.AccessToken)
	if res.status != http.StatusOK || res.json(t)["revoked"] != float64(0) {
		t.Fatalf("local Bearer logout of a revoked session: %d %s", res.status, res.body)
	}
}

// TestAccessTokenBoundBySession: an access token never outlives its
// session's absolute limit, and /v1/me refuses it once the session has
// expired (idle or absolute), even before the token's own exp.
func TestAccessTokenBoundBySession(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) {
		c.exchange.AccessTTL, c.exchange.RefreshTTL, c.exchange.SessionMax = 15*time.Minute, 5*time.Minute, 10*time.Minute
	})
	tk := h.exchangeOK("corp", h.idToken("bounded", nil))
	if tk.ExpiresIn > 600 || tk.ExpiresIn < 590 {
		t.Fatalf("expires_in %d: the access token outlives the session's 10m limit", tk.ExpiresIn)
	}
	h.clock.Advance(6 * time.Minute) // past the 5m idle limit, before exp
	assertError(t, h.get("/v1/me", tk.AccessToken), 401, "invalid_token", "expired")
}
