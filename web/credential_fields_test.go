package web_test

import (
	"net/http"
	"net/url"
	"testing"
)

// The dj-rest-auth social login reads the credential fields from a form
// body too, and takes no nonce: a nonce sent is ignored, as dj-rest-auth's
// view ignores it, so a token that carries one is a nonce_mismatch.
func TestCompatDjRestAuthCredentialFields(t *testing.T) {
	h := newHarness(t, withCompat("djrestauth"))
	form := url.Values{"id_token": {h.idToken("g-form", map[string]any{"email": "form@example.com"})}}
	res := h.do(http.MethodPost, "/api/auth/google/", "application/x-www-form-urlencoded", []byte(form.Encode()))
	fields(t, res, "access", "refresh", "user")

	before := h.snapshot()
	withNonce := h.idToken("g-nonce", map[string]any{"nonce": "n-1"})
	wantStatus(t, h.postJSON("/api/auth/google/", map[string]string{"id_token": withNonce, "nonce": "n-1"}), 400, "nonce_mismatch")
	h.assertUnchanged(before)
}
