package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/authex/authex/exchange"
)

func withAlgorithm(alg string) harnessOption {
	return func(c *harnessConfig) { c.exchange.Algorithm = alg }
}

// TestGoOIDCMinimalSetupVerifiesAccessTokens: an API in Go verifies our
// access tokens with go-oidc's usual two lines, NewProvider(issuer) and
// Verifier(&Config{ClientID: audience}), without SupportedSigningAlgs:
// the discovery document names the algorithm, for each one we sign with.
func TestGoOIDCMinimalSetupVerifiesAccessTokens(t *testing.T) {
	for _, alg := range []string{exchange.AlgES256, exchange.AlgEdDSA, exchange.AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			h := newHarness(t, withAlgorithm(alg))
			tk := h.exchangeOK("corp", h.idToken("gooidc", nil))
			ctx := context.Background()
			provider, err := oidc.NewProvider(ctx, h.url)
			if err != nil {
				t.Fatal(err)
			}
			verifier := provider.Verifier(&oidc.Config{ClientID: "api"})
			tok, err := verifier.Verify(ctx, tk.AccessToken)
			if err != nil {
				t.Fatalf("go-oidc refused our %s access token: %v", alg, err)
			}
			if tok.Subject != tk.User.ID || tok.Issuer != h.cfg.Issuer {
				t.Fatalf("sub %q iss %q, want %q %q", tok.Subject, tok.Issuer, tk.User.ID, h.cfg.Issuer)
			}

			// The same setup still refuses what it must.
			if _, err := provider.Verifier(&oidc.Config{ClientID: "billing"}).Verify(ctx, tk.AccessToken); err == nil {
				t.Error("a verifier for another audience accepted the token")
			}
			if _, err := verifier.Verify(ctx, withSubject(t, tk.AccessToken, "someone-else")); err == nil {
				t.Error("a token whose payload was altered verified")
			}
		})
	}
}

// withSubject returns the token with its payload's sub replaced and the
// original signature kept.
func withSubject(t testing.TB, token, sub string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	claims["sub"] = sub
	raw, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// TestMetadataAtBothWellKnownPaths: RFC 8414's path serves the document of
// OpenID Discovery's, with the issuer exactly our public URL, the fields
// both specifications require, and nothing a client cannot use.
func TestMetadataAtBothWellKnownPaths(t *testing.T) {
	for _, tc := range []struct {
		name          string
		opts          []harnessOption
		introspection bool
	}{
		{"without clients", nil, false},
		{"with clients", []harnessOption{withClients(exchange.ClientConfig{ID: "nextjs", Secret: strings.Repeat("s", 32)})}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opts...)
			oidcRes := h.get("/.well-known/openid-configuration", "")
			oauthRes := h.get("/.well-known/oauth-authorization-server", "")
			if oidcRes.status != http.StatusOK || oauthRes.status != http.StatusOK {
				t.Fatalf("statuses %d %d", oidcRes.status, oauthRes.status)
			}
			if ct := oauthRes.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("RFC 8414 metadata Content-Type %q", ct)
			}
			doc := oauthRes.json(t)
			if !reflect.DeepEqual(doc, oidcRes.json(t)) {
				t.Fatalf("the two documents differ:\n%s\n%s", oauthRes.body, oidcRes.body)
			}
			if doc["issuer"] != h.cfg.Issuer {
				t.Errorf("issuer %v, want exactly %s", doc["issuer"], h.cfg.Issuer)
			}
			for _, key := range []string{"jwks_uri", "token_endpoint", "response_types_supported", "subject_types_supported",
				"id_token_signing_alg_values_supported", "grant_types_supported"} {
				if _, ok := doc[key]; !ok {
					t.Errorf("%s is missing", key)
				}
			}
			if algs := doc["id_token_signing_alg_values_supported"].([]any); len(algs) != 1 || algs[0] != "ES256" {
				t.Errorf("id_token_signing_alg_values_supported = %v", algs)
			}
			// Nothing we do not serve: no authorization or userinfo endpoint,
			// no scopes (the token endpoint takes none).
			for _, key := range []string{"authorization_endpoint", "userinfo_endpoint", "scopes_supported",
				"code_challenge_methods_supported", "registration_endpoint"} {
				if v, ok := doc[key]; ok {
					t.Errorf("%s = %v is listed but not served", key, v)
				}
			}
			if _, ok := doc["introspection_endpoint"]; ok != tc.introspection {
				t.Errorf("introspection_endpoint listed: %v, want %v (it refuses everyone without clients)", ok, tc.introspection)
			}
			// Every endpoint listed answers (a GET on a POST route is 405, not 404).
			for _, key := range []string{"jwks_uri", "token_endpoint", "revocation_endpoint", "introspection_endpoint"} {
				u, ok := doc[key].(string)
				if !ok {
					continue
				}
				res := h.get(strings.TrimPrefix(u, h.cfg.Issuer), "")
				if res.status == http.StatusNotFound {
					t.Errorf("%s %s: 404", key, u)
				}
			}
		})
	}
}
