package web_test

import (
	"net/http"
	"net/url"
	"testing"
)

// Issue 11, finding 11: one id_token made any number of sessions. Now the
// first use spends it; a second use, on any route that takes a provider
// credential, is refused with replayed and writes nothing.
func TestIDTokenReplayRefused(t *testing.T) {
	h := newHarness(t)
	tok := h.idToken("replay", nil)
	first := h.exchangeOK("corp", tok)
	before := h.snapshot()

	res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": tok})
	assertError(t, res, http.StatusUnauthorized, "invalid_token", "replayed")
	h.assertUnchanged(before)

	// RFC 8693 token exchange of the same token: refused alike (a refused
	// subject token is invalid_request there).
	res = h.postForm("/oauth/token", url.Values{"grant_type": {grantTokenExchange}, "subject_token": {tok},
		"subject_token_type": {typeIDToken}, "subject_issuer": {"corp"}})
	assertError(t, res, http.StatusBadRequest, "invalid_request", "replayed")
	h.assertUnchanged(before)

	// Linking with a spent credential: refused before anything is linked.
	other := h.exchangeOK("google", h.idToken("replay-linker", nil))
	linkTok := h.idToken("replay-linked", nil)
	res = h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": linkTok})
	if res.status != http.StatusOK {
		t.Fatalf("first use of the link token: %d %s", res.status, res.body)
	}
	before = h.snapshot()
	res = h.do(http.MethodPost, "/v1/me/identities", "application/json",
		[]byte(`{"provider":"corp","id_token":"`+linkTok+`"}`), "Authorization", "Bearer "+other.AccessToken)
	assertError(t, res, http.StatusUnauthorized, "invalid_token", "replayed")
	h.assertUnchanged(before)

	// A token without jti is named by its hash: replayed too.
	noJTI := h.idToken("replay", map[string]any{"jti": nil})
	h.exchangeOK("corp", noJTI)
	before = h.snapshot()
	assertError(t, h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": noJTI}),
		http.StatusUnauthorized, "invalid_token", "replayed")
	h.assertUnchanged(before)

	// A fresh token of the same identity signs in as before.
	if again := h.exchangeOK("corp", h.idToken("replay", nil)); again.User.ID != first.User.ID {
		t.Fatalf("a fresh token signed in user %s, want %s", again.User.ID, first.User.ID)
	}
}

// The same id_token sent many times at once: exactly one sign-in, the rest
// replayed, and only that one's session written.
func TestIDTokenConcurrentReplay(t *testing.T) {
	h := newHarness(t)
	tok := h.idToken("double", nil)
	const n = 20
	answers := fire(t, h, n, "/v1/exchange", func(int) any {
		return map[string]any{"provider": "corp", "id_token": tok}
	})
	ok := 0
	for _, res := range answers {
		if res.status == http.StatusOK {
			ok++
			continue
		}
		assertError(t, res, http.StatusUnauthorized, "invalid_token", "replayed")
	}
	if ok != 1 {
		t.Fatalf("%d concurrent uses of one id_token: %d succeeded, want 1", n, ok)
	}
	snap := h.snapshot()
	if len(snap.Users) != 1 || len(snap.Sessions[snap.Users[0].ID]) != 1 {
		t.Fatalf("%d users, sessions %v; want one user with one session", len(snap.Users), snap.Sessions)
	}
}
