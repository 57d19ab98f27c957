package web_test

import (
	"net/http"
	"testing"

	"github.com/authex/authex/exchange"
)

// withCompatClient names the public client the compat routes act as.
func withCompatClient(id string) harnessOption {
	return func(c *harnessConfig) { c.web.CompatClient = id }
}

// TestCompatActsAsCompatClient: with clients configured the compat routes
// act as compat_client, so its provider list applies, its id is the
// tokens' client_id, and the DRF refresh route does not refresh another
// client's session (which would bypass that client's secret).
func TestCompatActsAsCompatClient(t *testing.T) {
	h := newHarness(t, withCompat("djrestauth"), withCompatClient("spa"), withClients(
		exchange.ClientConfig{ID: "spa", Public: true, Providers: []string{"corp"}},
		exchange.ClientConfig{ID: "nextjs", Secret: nextjsSecret},
	))
	const base = "/api/auth"

	before := h.snapshot()
	m := wantStatus(t, h.postJSON(base+"/google/", map[string]string{"id_token": h.idToken("g-spa", nil)}), 400, "provider_not_allowed")
	firstOf(t, m, "non_field_errors")
	h.assertUnchanged(before)

	res := h.postJSON(base+"/corp/", map[string]string{"id_token": h.idToken("c-spa", nil)})
	if res.status != http.StatusOK {
		t.Fatalf("social login with an allowed provider: %d %s", res.status, res.body)
	}
	login := fields(t, res, "access", "refresh", "user")
	if got := verifyWithJWKS(t, h, str(login, "access"))["client_id"]; got != "spa" {
		t.Fatalf("client_id claim %v, want spa", got)
	}
	res = h.postJSON(base+"/token/refresh/", map[string]string{"refresh": str(login, "refresh")})
	if res.status != http.StatusOK {
		t.Fatalf("refresh of the compat session: %d %s", res.status, res.body)
	}
	if got := verifyWithJWKS(t, h, str(fields(t, res, "access", "refresh"), "access"))["client_id"]; got != "spa" {
		t.Fatalf("client_id claim %v after refresh, want spa", got)
	}

	// A confidential client's session: not refreshed by the compat route.
	ex := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("c-next", nil)}, basic("nextjs", nextjsSecret)...)
	if ex.status != http.StatusOK {
		t.Fatalf("exchange: %d %s", ex.status, ex.body)
	}
	before = h.snapshot()
	m = wantStatus(t, h.postJSON(base+"/token/refresh/", map[string]string{"refresh": decodeTokens(t, ex).RefreshToken}), 401, "client_mismatch")
	if m["code"] != "token_not_valid" {
		t.Fatalf("refusal shape: %v", m)
	}
	h.assertUnchanged(before)
}

// TestCompatPasswordRoutesHonourCompatClient: the password routes of the
// fastapi and simplejwt profiles are refused when compat_client may not
// use the password provider, and sign in as compat_client when it may.
func TestCompatPasswordRoutesHonourCompatClient(t *testing.T) {
	for _, tc := range []struct {
		name      string
		providers []string
		allowed   bool
	}{
		{"password not allowed", []string{"corp"}, false},
		{"password allowed", []string{"corp", exchange.PasswordProvider}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, withPassword(passwordConfig()), withCompat("simplejwt", "fastapi"), withCompatClient("spa"), withClients(
				exchange.ClientConfig{ID: "spa", Public: true, Providers: tc.providers},
				exchange.ClientConfig{ID: "nextjs", Secret: nextjsSecret},
			))
			const email = "pw-spa@example.com"
			if res := h.postJSON("/v1/register", map[string]string{"email": email, "password": goodPassword}, basic("nextjs", nextjsSecret)...); res.status != http.StatusCreated && res.status != http.StatusOK {
				t.Fatalf("register: %d %s", res.status, res.body)
			}
			calls := []struct {
				path  string
				body  map[string]string
				token string // the answer's access token field
			}{
				{"/users/login/", map[string]string{"username": email, "password": goodPassword}, "access_token"},
				{"/api/auth/login/", map[string]string{"username": email, "password": goodPassword}, "access"},
			}
			for _, call := range calls {
				before := h.snapshot()
				res := h.postJSON(call.path, call.body)
				if !tc.allowed {
					wantStatus(t, res, 400, "provider_not_allowed")
					h.assertUnchanged(before)
					continue
				}
				if res.status != http.StatusOK {
					t.Fatalf("%s: %d %s", call.path, res.status, res.body)
				}
				if got := verifyWithJWKS(t, h, str(res.json(t), call.token))["client_id"]; got != "spa" {
					t.Fatalf("%s: client_id claim %v, want spa", call.path, got)
				}
			}
			before := h.snapshot()
			res := h.postJSON("/api/auth/register/", map[string]string{
				"username": "new-spa@example.com", "email": "new-spa@example.com", "password": goodPassword, "password2": goodPassword})
			if !tc.allowed {
				wantStatus(t, res, 400, "provider_not_allowed")
				h.assertUnchanged(before)
			} else if res.status != http.StatusCreated {
				t.Fatalf("register: %d %s", res.status, res.body)
			}
		})
	}
}

// TestCompatWithoutCompatClientRefuses: should a config with clients but no
// compat_client reach the server (config check refuses it), the compat
// routes refuse rather than mint sessions bound to no client.
func TestCompatWithoutCompatClientRefuses(t *testing.T) {
	h := newHarness(t, withCompat("djrestauth"), withClients(exchange.ClientConfig{ID: "spa", Public: true}))
	before := h.snapshot()
	wantStatus(t, h.postJSON("/api/auth/corp/", map[string]string{"id_token": h.idToken("nobody", nil)}), 401, "missing_client")
	h.assertUnchanged(before)
}
