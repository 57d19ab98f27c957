package web_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authex/authex/exchange"
)

const (
	nextjsSecret   = "nextjs-secret-0123456789"
	corpOnlySecret = "corp:only/secret%+0123456789" // needs form-encoding in Basic
)

func clientHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	return newHarness(t, append([]harnessOption{withClients(
		exchange.ClientConfig{ID: "nextjs", Secret: nextjsSecret},
		exchange.ClientConfig{ID: "ios-app", Public: true},
		exchange.ClientConfig{ID: "corp-only", Secret: corpOnlySecret, Providers: []string{"corp"}},
	)}, opts...)...)
}

// basic builds an RFC 6749 §2.3.1 Authorization header: id and secret
// form-encoded, then Basic.
func basic(id, secret string) []string {
	raw := url.QueryEscape(id) + ":" + url.QueryEscape(secret)
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(raw))}
}

func TestClientAuthOnExchange(t *testing.T) {
	h := clientHarness(t)
	cred := func(extra map[string]any) map[string]any {
		m := map[string]any{"provider": "corp", "id_token": h.idToken("cl-user", nil)}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	refusals := []refusal{
		{"missing", cred(nil), nil, 401, "invalid_client", "missing_client"},
		// An unknown id answers as a known one with a wrong or missing
		// secret: the answer must not enumerate client ids.
		{"unknown client", cred(map[string]any{"client_id": "who", "client_secret": nextjsSecret}), nil, 401, "invalid_client", "invalid_secret"},
		{"unknown client in Basic", cred(nil), basic("who", "nope"), 401, "invalid_client", "invalid_secret"},
		{"unknown client without secret", cred(map[string]any{"client_id": "who"}), nil, 401, "invalid_client", "missing_secret"},
		{"wrong secret in body", cred(map[string]any{"client_id": "nextjs", "client_secret": nextjsSecret + "x"}), nil, 401, "invalid_client", "invalid_secret"},
		{"wrong secret in Basic", cred(nil), basic("nextjs", "nope"), 401, "invalid_client", "invalid_secret"},
		{"confidential without secret", cred(map[string]any{"client_id": "nextjs"}), nil, 401, "invalid_client", "missing_secret"},
		{"public client with a secret", cred(map[string]any{"client_id": "ios-app", "client_secret": "anything"}), nil, 401, "invalid_client", "unexpected_secret"},
		{"Basic and body secret", cred(map[string]any{"client_secret": nextjsSecret}), basic("nextjs", nextjsSecret), 400, "invalid_request", "multiple_client_auth"},
		{"Basic and another body id", cred(map[string]any{"client_id": "ios-app"}), basic("nextjs", nextjsSecret), 400, "invalid_request", "multiple_client_auth"},
		{"Basic not form-encoded", cred(nil), basic("nextjs", "x") /* replaced below */, 400, "invalid_request", "malformed_client_auth"},
		{"Basic not base64", cred(nil), []string{"Authorization", "Basic !!!"}, 400, "invalid_request", "malformed_client_auth"},
		{"provider not allowed", map[string]any{"provider": "google", "id_token": h.idToken("cl-user", nil)},
			basic("corp-only", corpOnlySecret), 400, "unauthorized_client", "provider_not_allowed"},
	}
	for i := range refusals {
		if refusals[i].name == "Basic not form-encoded" {
			refusals[i].headers = []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("nextjs:%zz"))}
		}
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot()
			res := h.postJSON("/v1/exchange", tc.body, tc.headers...)
			assertError(t, res, tc.status, tc.code, tc.reason)
			h.assertUnchanged(before)
			if tc.status == 401 && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Basic") {
				t.Fatalf("401 invalid_client without WWW-Authenticate Basic: %q", res.header.Get("WWW-Authenticate"))
			}
			if strings.Contains(string(res.body), nextjsSecret) || strings.Contains(string(res.body), corpOnlySecret) {
				t.Fatalf("a secret is echoed: %s", res.body)
			}
		})
	}

	accepted := []struct {
		name     string
		body     map[string]any
		headers  []string
		clientID string
	}{
		{"Basic", cred(nil), basic("nextjs", nextjsSecret), "nextjs"},
		{"Basic with the id repeated in the body", cred(map[string]any{"client_id": "nextjs"}), basic("nextjs", nextjsSecret), "nextjs"},
		{"body", cred(map[string]any{"client_id": "nextjs", "client_secret": nextjsSecret}), nil, "nextjs"},
		{"public client", cred(map[string]any{"client_id": "ios-app"}), nil, "ios-app"},
		{"form-encoded Basic, allowed provider", cred(nil), basic("corp-only", corpOnlySecret), "corp-only"},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			res := h.postJSON("/v1/exchange", tc.body, tc.headers...)
			if res.status != http.StatusOK {
				t.Fatalf("%d %s", res.status, res.body)
			}
			tk := decodeTokens(t, res)
			if got := verifyWithJWKS(t, h, tk.AccessToken)["client_id"]; got != tc.clientID {
				t.Fatalf("client_id claim %v, want %s", got, tc.clientID)
			}
			for _, s := range h.sessions(tk.AccessToken).Sessions {
				if s.ID == tk.SessionID {
					return
				}
			}
			t.Fatal("session not listed")
		})
	}
}

func TestNoClientsConfiguredKeepsExchangeOpen(t *testing.T) {
	h := newHarness(t)
	res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("open", nil),
		"client_id": "anything", "client_secret": "whatever"})
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.body)
	}
	if got, ok := verifyWithJWKS(t, h, decodeTokens(t, res).AccessToken)["client_id"]; ok {
		t.Fatalf("an unauthenticated client_id reached the token: %v", got)
	}
	doc := h.get("/.well-known/openid-configuration", "").json(t)
	if methods := doc["token_endpoint_auth_methods_supported"].([]any); len(methods) != 1 || methods[0] != "none" {
		t.Fatalf("auth methods without clients: %v", methods)
	}
}

func TestDiscoveryListsOAuthEndpoints(t *testing.T) {
	h := clientHarness(t)
	doc := h.get("/.well-known/openid-configuration", "").json(t)
	for key, path := range map[string]string{"token_endpoint": "/oauth/token", "revocation_endpoint": "/oauth/revoke",
		"introspection_endpoint": "/oauth/introspect", "jwks_uri": "/.well-known/jwks.json"} {
		if doc[key] != h.cfg.Issuer+path {
			t.Errorf("%s = %v", key, doc[key])
		}
	}
	grants := doc["grant_types_supported"].([]any)
	if len(grants) != 2 || grants[0] != "refresh_token" || grants[1] != "urn:ietf:params:oauth:grant-type:token-exchange" {
		t.Errorf("grant_types_supported = %v", grants)
	}
	methods := doc["token_endpoint_auth_methods_supported"].([]any)
	if len(methods) != 3 || methods[0] != "client_secret_basic" || methods[1] != "client_secret_post" {
		t.Errorf("token_endpoint_auth_methods_supported = %v", methods)
	}
}

// TestRefreshAuthenticatesClient: with clients configured, /v1/token/refresh
// authenticates the client as /oauth/token does, and a session refreshes
// only for the client it was issued to. Without that, a confidential
// client's stolen refresh token would refresh here without its secret.
func TestRefreshAuthenticatesClient(t *testing.T) {
	h := clientHarness(t)
	exchangeAs := func(t *testing.T, headers []string, body map[string]any) tokens {
		t.Helper()
		body["provider"], body["id_token"] = "corp", h.idToken("refresher", nil)
		res := h.postJSON("/v1/exchange", body, headers...)
		if res.status != http.StatusOK {
			t.Fatalf("exchange: %d %s", res.status, res.body)
		}
		return decodeTokens(t, res)
	}
	confidential := exchangeAs(t, basic("nextjs", nextjsSecret), map[string]any{})
	public := exchangeAs(t, nil, map[string]any{"client_id": "ios-app"})

	refusals := []struct {
		name    string
		token   string
		extra   map[string]any
		headers []string
		status  int
		code    string
		reason  string
	}{
		{"confidential session, no client", confidential.RefreshToken, nil, nil, 401, "invalid_client", "missing_client"},
		{"confidential session, its id without secret", confidential.RefreshToken, map[string]any{"client_id": "nextjs"}, nil, 401, "invalid_client", "missing_secret"},
		{"confidential session, wrong secret", confidential.RefreshToken, nil, basic("nextjs", "nope-nope-nope-nope"), 401, "invalid_client", "invalid_secret"},
		{"confidential session, a public client", confidential.RefreshToken, map[string]any{"client_id": "ios-app"}, nil, 400, "invalid_grant", "client_mismatch"},
		{"confidential session, another confidential client", confidential.RefreshToken, nil, basic("corp-only", corpOnlySecret), 400, "invalid_grant", "client_mismatch"},
		{"public session, no client", public.RefreshToken, nil, nil, 401, "invalid_client", "missing_client"},
		{"public session, another client", public.RefreshToken, map[string]any{"client_id": "nextjs", "client_secret": nextjsSecret}, nil, 400, "invalid_grant", "client_mismatch"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot()
			body := map[string]any{"refresh_token": tc.token}
			for k, v := range tc.extra {
				body[k] = v
			}
			res := h.postJSON("/v1/token/refresh", body, tc.headers...)
			assertError(t, res, tc.status, tc.code, tc.reason)
			h.assertUnchanged(before)
			if strings.Contains(string(res.body), nextjsSecret) {
				t.Fatalf("a secret is echoed: %s", res.body)
			}
		})
	}

	// Each session still refreshes for its own client: Basic or the body.
	res := h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": confidential.RefreshToken}, basic("nextjs", nextjsSecret)...)
	if res.status != http.StatusOK {
		t.Fatalf("confidential refresh with Basic: %d %s", res.status, res.body)
	}
	next := decodeTokens(t, res)
	if got := verifyWithJWKS(t, h, next.AccessToken)["client_id"]; got != "nextjs" {
		t.Fatalf("client_id claim %v after refresh", got)
	}
	res = h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": next.RefreshToken,
		"client_id": "nextjs", "client_secret": nextjsSecret})
	if res.status != http.StatusOK {
		t.Fatalf("confidential refresh with body credentials: %d %s", res.status, res.body)
	}
	res = h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": public.RefreshToken, "client_id": "ios-app"})
	if res.status != http.StatusOK {
		t.Fatalf("public refresh: %d %s", res.status, res.body)
	}
}

func TestRefreshWithoutClientsStaysOpen(t *testing.T) {
	h := newHarness(t)
	tk := h.exchangeOK("corp", h.idToken("open-refresh", nil))
	// Client fields are ignored without clients, as on /v1/exchange.
	res := h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": tk.RefreshToken, "client_id": "anything"})
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.body)
	}
}
