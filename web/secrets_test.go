package web_test

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authex/authex/exchange"
)

// TestRefreshTokenGenerationIsCanonical: a refresh token whose generation
// is spelled with leading zeros or a sign (the MAC covers the number, so
// these used to pass) is malformed, and writes nothing.
func TestRefreshTokenGenerationIsCanonical(t *testing.T) {
	h := newHarness(t)
	tk := h.exchangeOK("corp", h.idToken("canon", nil))
	res := h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": tk.RefreshToken})
	if res.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", res.status, res.body)
	}
	cur := decodeTokens(t, res).RefreshToken
	parts := strings.Split(cur, ".")
	if len(parts) != 4 || parts[1] == "0" {
		t.Fatalf("refresh token %q: want session.generation.secret.mac", cur)
	}
	g := parts[1]
	h.clock.Advance(time.Minute) // past the reuse grace: a replay would revoke
	before := h.snapshot()
	for _, gen := range []string{"0" + g, "00" + g, "+" + g, g + " ", " " + g, "0x" + g, g + "_", "-" + g} {
		for _, token := range []string{
			parts[0] + "." + gen + "." + parts[2] + "." + parts[3],
			parts[0] + "." + gen + "." + parts[3], // legacy form
		} {
			res := h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": token})
			assertError(t, res, http.StatusBadRequest, "invalid_grant", "malformed")
		}
	}
	h.assertUnchanged(before)
	if res := h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": cur}); res.status != http.StatusOK {
		t.Fatalf("the canonical token after the attempts: %d %s", res.status, res.body)
	}
}

// TestKidIsPublicKeyThumbprint: every kid in the JWKS is the RFC 7638
// thumbprint of its public key (not derived from the private key).
func TestKidIsPublicKeyThumbprint(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken))
	h.adminOK("POST", "/admin/v1/keys/rotate", nil)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(h.get("/.well-known/jwks.json", "").body, &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("JWKS: %v, %d keys", err, len(set.Keys))
	}
	for _, k := range set.Keys {
		tp, err := k.Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if want := base64.RawURLEncoding.EncodeToString(tp); k.KeyID != want {
			t.Errorf("kid %s, want the RFC 7638 thumbprint %s", k.KeyID, want)
		}
	}
}

// TestAdminRevokeKey: revoking the signing key takes it out of the JWKS
// and refuses its access tokens at once (/v1/me, and the verified-token
// cache does not keep them alive); a fresh key signs at once.
func TestAdminRevokeKey(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken))
	tk := h.exchangeOK("corp", h.idToken("revoke-me", nil))
	if res := h.get("/v1/me", tk.AccessToken); res.status != http.StatusOK { // now cached as verified
		t.Fatalf("/v1/me: %d %s", res.status, res.body)
	}
	kid := kidOf(t, tk.AccessToken)
	out := h.adminOK("POST", "/admin/v1/keys/"+kid+"/revoke", nil)
	key, repl := out["key"].(map[string]any), out["replacement"].(map[string]any)
	if key["state"] != "revoked" || key["revoked_at"] == nil || repl["state"] != "active" || repl["id"] == kid {
		t.Fatalf("revoke answer: %v", out)
	}
	assertError(t, h.get("/v1/me", tk.AccessToken), http.StatusUnauthorized, "invalid_token", "malformed")
	if strings.Contains(string(h.get("/.well-known/jwks.json", "").body), kid) {
		t.Fatal("the revoked key is still in the JWKS")
	}
	fresh := h.exchangeOK("corp", h.idToken("after-revoke", nil))
	if got := kidOf(t, fresh.AccessToken); got != repl["id"] {
		t.Fatalf("new tokens signed by %s, want the replacement %s", got, repl["id"])
	}
	if res := h.get("/v1/me", fresh.AccessToken); res.status != http.StatusOK {
		t.Fatalf("/v1/me with the replacement's token: %d %s", res.status, res.body)
	}
	// Idempotent; an unknown kid is 404.
	if again := h.adminOK("POST", "/admin/v1/keys/"+kid+"/revoke", nil); again["replacement"] != nil {
		t.Fatalf("revoking twice made another key: %v", again)
	}
	assertError(t, h.admin("POST", "/admin/v1/keys/nope/revoke", nil), http.StatusNotFound, "not_found", "not_found")
	if ev := h.adminOK("GET", "/admin/v1/audit?type=key.revoked", nil)["events"].([]any); len(ev) != 1 {
		t.Fatalf("audit: %v", ev)
	}
}

// TestAdminRefreshSecrets: list, rotate and retire the refresh MAC
// secrets. Rotation signs nobody out; retiring an old secret ends the
// sessions whose current token it made; the signing one cannot be retired.
func TestAdminRefreshSecrets(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken))
	a := h.exchangeOK("corp", h.idToken("secret-a", nil))
	b := h.exchangeOK("corp", h.idToken("secret-b", nil))
	list := h.adminOK("GET", "/admin/v1/secrets/refresh", nil)["secrets"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != "0" || list[0].(map[string]any)["state"] != "signing" {
		t.Fatalf("secrets at start: %v", list)
	}
	sec := h.adminOK("POST", "/admin/v1/secrets/refresh/rotate", nil)["secret"].(map[string]any)
	id := sec["id"].(string)
	if sec["state"] != "pending" || len(id) != 8 {
		t.Fatalf("rotate answer: %v", sec)
	}
	h.clock.Advance(exchange.MACActivationDelay + time.Second)
	list = h.adminOK("GET", "/admin/v1/secrets/refresh", nil)["secrets"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["state"] != "verifying" || list[0].(map[string]any)["retires_at"] == nil ||
		list[1].(map[string]any)["state"] != "signing" {
		t.Fatalf("secrets after the activation: %v", list)
	}
	res := h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": a.RefreshToken})
	if res.status != http.StatusOK {
		t.Fatalf("a session from before the rotation: %d %s", res.status, res.body)
	}
	next := decodeTokens(t, res).RefreshToken
	if got := strings.Split(next, ".")[2]; got != id {
		t.Fatalf("next token's secret %s, want %s", got, id)
	}
	assertError(t, h.admin("POST", "/admin/v1/secrets/refresh/"+id+"/retire", nil), http.StatusConflict, "conflict", "secret_in_use")
	assertError(t, h.admin("POST", "/admin/v1/secrets/refresh/nope/retire", nil), http.StatusNotFound, "not_found", "not_found")
	h.adminOK("POST", "/admin/v1/secrets/refresh/0/retire", nil)
	assertError(t, h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": b.RefreshToken}),
		http.StatusBadRequest, "invalid_grant", "malformed")
	if res := h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": next}); res.status != http.StatusOK {
		t.Fatalf("a token of the new secret after retiring the old: %d %s", res.status, res.body)
	}
}

// TestRevokedKeyRefusedByIntrospectionAndLink: after revocation an access
// token of the key is inactive at /oauth/introspect. A link_token is sealed
// under a key derived from the refresh MAC secret, never signed by a
// signing key, so revoking a signing key leaves a pending one redeemable.
func TestRevokedKeyRefusedByIntrospectionAndLink(t *testing.T) {
	h := clientHarness(t, withAdmin(adminToken))
	auth := basic("nextjs", nextjsSecret)
	owner := decodeTokens(t, h.postJSON("/v1/exchange", map[string]any{"provider": "google",
		"id_token": h.idToken("g-rk", map[string]any{"email": "rk@example.com"})}, auth...))
	res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp",
		"id_token": h.idToken("c-rk", map[string]any{"email": "rk@example.com"})}, auth...)
	assertError(t, res, http.StatusConflict, "account_exists", "account_exists")
	linkToken := res.json(t)["link_token"].(string)
	active := func(token string) bool {
		t.Helper()
		res := h.postForm("/oauth/introspect", url.Values{"token": {token}}, auth...)
		if res.status != http.StatusOK {
			t.Fatalf("introspect: %d %s", res.status, res.body)
		}
		return res.json(t)["active"] == true
	}
	if !active(owner.AccessToken) {
		t.Fatal("access token inactive before the revocation")
	}
	h.adminOK("POST", "/admin/v1/keys/"+kidOf(t, owner.AccessToken)+"/revoke", nil)
	if active(owner.AccessToken) {
		t.Fatal("an access token of the revoked key is active at /oauth/introspect")
	}
	fresh := decodeTokens(t, h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": owner.RefreshToken}, auth...))
	res = h.postJSON("/v1/me/identities", map[string]any{"link_token": linkToken}, bearer(fresh.AccessToken)...)
	if res.status != http.StatusCreated {
		t.Fatalf("link after revoking a signing key: %d %s", res.status, res.body)
	}
}
