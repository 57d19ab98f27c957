package web_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/authex/authex/exchange"
)

// TestFastAPISessionRenewsOnlyCompatSessions: POST /users/session/ renews
// only sessions of the compat client. An access token of a session that a
// confidential client made on /v1/exchange is refused (401
// client_mismatch), nothing is written, and that client's refresh chain
// is untouched: its next refresh, after the reuse grace, still works.
func TestFastAPISessionRenewsOnlyCompatSessions(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()), withCompat("fastapi"), withCompatClient("spa"), withClients(
		exchange.ClientConfig{ID: "spa", Public: true},
		exchange.ClientConfig{ID: "nextjs", Secret: nextjsSecret},
	))
	ex := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("renew-victim", nil)},
		basic("nextjs", nextjsSecret)...)
	if ex.status != http.StatusOK {
		t.Fatalf("exchange: %d %s", ex.status, ex.body)
	}
	victim := decodeTokens(t, ex)
	session := func(token string) response {
		return h.do(http.MethodPost, "/users/session/", "application/json", nil, "Authorization", "Bearer "+token)
	}

	// Fresh, and within the renewal window: refused both times.
	before := h.snapshot()
	m := wantStatus(t, session(victim.AccessToken), 401, "client_mismatch")
	if m["detail"] != "Could not validate credentials" {
		t.Fatalf("refusal shape: %v", m)
	}
	h.clock.Advance(11 * time.Minute)
	wantStatus(t, session(victim.AccessToken), 401, "client_mismatch")
	h.assertUnchanged(before)

	// The real client refreshes well after the reuse grace: still its
	// current generation, so no reuse and no sign-out.
	h.clock.Advance(time.Minute)
	res := h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": victim.RefreshToken}, basic("nextjs", nextjsSecret)...)
	if res.status != http.StatusOK {
		t.Fatalf("the victim's refresh after the attack: %d %s", res.status, res.body)
	}

	// The compat client's own session still renews.
	reg := h.postJSON("/v1/register", map[string]any{"email": "fa@example.com", "password": goodPassword, "client_id": "spa"})
	if reg.status != http.StatusOK {
		t.Fatalf("register: %d %s", reg.status, reg.body)
	}
	login := h.postJSON("/users/login/", map[string]string{"username": "fa@example.com", "password": goodPassword})
	if login.status != http.StatusOK {
		t.Fatalf("compat login: %d %s", login.status, login.body)
	}
	token := str(login.json(t), "access_token")
	h.clock.Advance(11 * time.Minute)
	res = session(token)
	if res.status != http.StatusOK || str(res.json(t), "access_token") == token {
		t.Fatalf("compat session renewal: %d %s", res.status, res.body)
	}
}

// TestLogoutBindsTheClient: with clients configured, a stolen refresh
// token of a confidential client cannot sign the user out (scope global)
// without that client's authentication: no client is 401 missing_client,
// another client is 400 client_mismatch, and nothing is revoked.
// /oauth/revoke had the binding already; it is held here too.
func TestLogoutBindsTheClient(t *testing.T) {
	h := clientHarness(t)
	exchangeAs := func() tokens {
		res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("logout-victim", nil)},
			basic("nextjs", nextjsSecret)...)
		if res.status != http.StatusOK {
			t.Fatalf("exchange: %d %s", res.status, res.body)
		}
		return decodeTokens(t, res)
	}
	stolen, other := exchangeAs(), exchangeAs()

	before := h.snapshot()
	body := map[string]string{"refresh_token": stolen.RefreshToken, "scope": "global"}
	assertError(t, h.postJSON("/v1/logout", body), 401, "invalid_client", "missing_client")
	assertError(t, h.postJSON("/v1/logout", map[string]string{"refresh_token": stolen.RefreshToken, "scope": "global", "client_id": "ios-app"}),
		400, "invalid_grant", "client_mismatch")
	assertError(t, h.postJSON("/v1/logout", body, basic("nextjs", "wrong-secret-0123456789")...), 401, "invalid_client", "invalid_secret")
	assertError(t, h.do(http.MethodPost, "/oauth/revoke", "application/x-www-form-urlencoded", []byte("token="+stolen.RefreshToken)),
		401, "invalid_client", "missing_client")
	if res := h.do(http.MethodPost, "/oauth/revoke", "application/x-www-form-urlencoded",
		[]byte("client_id=ios-app&token="+stolen.RefreshToken)); res.status != http.StatusOK {
		t.Fatalf("revoke by another client: %d %s", res.status, res.body)
	}
	h.assertUnchanged(before)
	if res := h.get("/v1/me", other.AccessToken); res.status != http.StatusOK {
		t.Fatalf("the other session after the attack: %d %s", res.status, res.body)
	}

	// The client itself signs the user out everywhere.
	res := h.postJSON("/v1/logout", body, basic("nextjs", nextjsSecret)...)
	if res.status != http.StatusOK || res.json(t)["revoked"] != float64(2) {
		t.Fatalf("logout by its client: %d %s", res.status, res.body)
	}
}

// assertSealed fails when a link_token reveals any of secrets, in clear or
// in the base64 of any of its parts.
func assertSealed(t testing.TB, token string, secrets ...string) {
	t.Helper()
	views := []string{token}
	for _, part := range strings.Split(token, ".") {
		for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
			if b, err := enc.DecodeString(part); err == nil {
				views = append(views, string(b))
			}
		}
	}
	for _, v := range views {
		for _, secret := range secrets {
			if secret != "" && bytes.Contains(bytes.ToLower([]byte(v)), bytes.ToLower([]byte(secret))) {
				t.Fatalf("link_token reveals %q", secret)
			}
		}
	}
}

// TestLinkTokenIsSealed: a link_token is neither a JWT that our JWKS keys
// verify (an API that skips typ/aud checks cannot take it for an access
// token) nor readable: no email, subject or user id, in clear or base64.
// It is refused as a Bearer token, and the former JWT form is refused on
// redemption.
func TestLinkTokenIsSealed(t *testing.T) {
	h := newHarness(t)
	owner := h.exchangeOK("google", h.idToken("seal-owner", map[string]any{"email": "sealed.victim@example.com"}))
	lt := h.linkTokenFor("seal-new", "sealed.victim@example.com")
	assertSealed(t, lt, "sealed.victim@example.com", "sealed.victim", "seal-new", owner.User.ID, h.iss.URL(), "corp")

	var set jose.JSONWebKeySet
	if err := json.Unmarshal(h.get("/.well-known/jwks.json", "").body, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks: %v", err)
	}
	algs := []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.HS256}
	if parsed, err := josejwt.ParseSigned(lt, algs); err == nil {
		for _, k := range set.Keys {
			var claims map[string]any
			if parsed.Claims(k.Key, &claims) == nil {
				t.Fatalf("the link_token verifies with JWKS key %s: %v", k.KeyID, claims)
			}
		}
	}

	before := h.snapshot()
	assertError(t, h.get("/v1/me", lt), 401, "invalid_token", "malformed")
	h.assertUnchanged(before)

	// The former form (a JWT signed with the access-token key) is refused.
	old := h.idToken("not-a-link-token", nil)
	assertError(t, h.postJSON("/v1/me/identities", map[string]any{"link_token": old}, bearer(owner.AccessToken)...),
		400, "invalid_grant", "malformed")
	h.assertUnchanged(before)

	// And it still links.
	if res := h.postJSON("/v1/me/identities", map[string]any{"link_token": lt}, bearer(owner.AccessToken)...); res.status != http.StatusCreated {
		t.Fatalf("link: %d %s", res.status, res.body)
	}
}
