package web_test

import (
	"testing"
	"time"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/providers"
	"github.com/authex/authex/providers/providertest"
)

// TestLeakedCodeAlone (issue 11, finding 7): a leaked authorization code
// sent alone (no code_verifier, no redirect_uri) used to be redeemed, at a
// provider that does not itself insist on PKCE. authex now requires a PKCE
// verifier and one of the provider's redirect_uris before it calls the
// token endpoint at all.
func TestLeakedCodeAlone(t *testing.T) {
	h := newHarness(t, withProvider("corp-code", providerSpec{typ: "oidc", link: exchange.LinkConfirm, allowSignup: true,
		setup: func(_ *providertest.Issuer, cfg *providers.Config) {
			cfg.ClientSecret = "corp-secret"
			cfg.RedirectURIs = []string{"https://app.example.com/callback"}
		}}))
	// The provider's record of the flow has no PKCE and no redirect_uri:
	// it would hand the tokens to whoever presents the code.
	h.iss.AddCode("leaked", providertest.CodeGrant{ClientID: webClientID, ClientSecret: "corp-secret", IDToken: h.idToken("victim", nil)})
	calls := h.iss.TokenCalls()
	h.checkRefusals(t, []refused{
		{"code alone", map[string]any{"provider": "corp-code", "code": "leaked"}, 400, "invalid_request", "pkce_required"},
		{"code and redirect_uri", map[string]any{"provider": "corp-code", "code": "leaked", "redirect_uri": "https://app.example.com/callback"}, 400, "invalid_request", "pkce_required"},
		{"code and verifier", map[string]any{"provider": "corp-code", "code": "leaked", "code_verifier": pkceVerifier}, 400, "invalid_request", "redirect_uri_not_allowed"},
		{"attacker's redirect_uri", map[string]any{"provider": "corp-code", "code": "leaked", "code_verifier": pkceVerifier, "redirect_uri": "https://evil.example/cb"}, 400, "invalid_request", "redirect_uri_not_allowed"},
	})
	if h.iss.TokenCalls() != calls {
		t.Fatal("the token endpoint was called for a refused code")
	}
}

// TestMaxAge (issue 11, finding 11): with max_age, an id_token issued
// longer ago (beyond the leeway), or without iat, is refused as too_old.
func TestMaxAge(t *testing.T) {
	h := newHarness(t, withProvider("strict", providerSpec{typ: "oidc", link: exchange.LinkConfirm, allowSignup: true,
		setup: func(_ *providertest.Issuer, cfg *providers.Config) { cfg.MaxAge = 10 * time.Minute }}))
	now := time.Now()
	h.exchangeBody(map[string]any{"provider": "strict", "id_token": h.idToken("fresh", map[string]any{"iat": now.Add(-10 * time.Minute).Unix()})})
	h.checkRefusals(t, []refused{
		{"ten years old", map[string]any{"provider": "strict", "id_token": h.idToken("old", map[string]any{"iat": now.AddDate(-10, 0, 0).Unix()})}, 401, "invalid_token", "too_old"},
		{"past max_age and leeway", map[string]any{"provider": "strict", "id_token": h.idToken("old", map[string]any{"iat": now.Add(-12 * time.Minute).Unix()})}, 401, "invalid_token", "too_old"},
		{"no iat", map[string]any{"provider": "strict", "id_token": h.idToken("old", map[string]any{"iat": nil})}, 401, "invalid_token", "too_old"},
	})
	// Without max_age the old token is accepted, as before.
	h.exchangeBody(map[string]any{"provider": "corp", "id_token": h.idToken("old", map[string]any{"iat": now.AddDate(-10, 0, 0).Unix()})})
}

// TestRequireNonce (issue 11, finding 11): with require_nonce, an id_token
// without nonce, or a request without one, is refused as nonce_required; an
// access token alone is refused too (it cannot carry a nonce).
func TestRequireNonce(t *testing.T) {
	h := newHarness(t, withProvider("strict", providerSpec{typ: "google", link: exchange.LinkConfirm, allowSignup: true,
		setup: func(_ *providertest.Issuer, cfg *providers.Config) { cfg.RequireNonce = true }}))
	h.exchangeBody(map[string]any{"provider": "strict", "nonce": "n-1", "id_token": h.idToken("a", map[string]any{"nonce": "n-1"})})
	h.checkRefusals(t, []refused{
		{"token without nonce", map[string]any{"provider": "strict", "nonce": "n-2", "id_token": h.idToken("b", nil)}, 401, "invalid_token", "nonce_required"},
		{"request without nonce", map[string]any{"provider": "strict", "id_token": h.idToken("b", map[string]any{"nonce": "n-2"})}, 401, "invalid_token", "nonce_required"},
		{"neither", map[string]any{"provider": "strict", "id_token": h.idToken("b", nil)}, 401, "invalid_token", "nonce_required"},
		{"nonce differs", map[string]any{"provider": "strict", "nonce": "n-3", "id_token": h.idToken("b", map[string]any{"nonce": "n-2"})}, 401, "invalid_token", "nonce_mismatch"},
		{"access token alone", map[string]any{"provider": "strict", "access_token": "ya29.x"}, 401, "invalid_token", "nonce_required"},
	})
}

// TestRemovedProviderKey (issue 11, finding 8): a key the provider removes
// stops signing anyone in once the cached key set falls due (1h without
// cache headers), with no unknown kid to trigger a refetch.
func TestRemovedProviderKey(t *testing.T) {
	clk := &clock{}
	h := newHarness(t, withProvider("corp", providerSpec{typ: "oidc", link: exchange.LinkConfirm, allowSignup: true,
		setup: func(_ *providertest.Issuer, cfg *providers.Config) { cfg.Now = clk.Now }}))
	exp := time.Now().Add(3 * time.Hour).Unix()
	stolen := h.idToken("victim", map[string]any{"exp": exp})
	stolen2 := h.idToken("victim", map[string]any{"exp": exp})
	h.iss.RotateKey() // the provider drops the compromised key

	clk.Advance(30 * time.Minute)
	h.exchangeBody(map[string]any{"provider": "corp", "id_token": stolen}) // still cached: accepted
	fetches := h.iss.JWKSFetches()

	clk.Advance(31 * time.Minute)
	h.checkRefusals(t, []refused{
		{"key removed an hour ago", map[string]any{"provider": "corp", "id_token": stolen2}, 401, "invalid_token", "unknown_key"},
	})
	if h.iss.JWKSFetches() == fetches {
		t.Fatal("the key set was not fetched again")
	}
	h.exchangeBody(map[string]any{"provider": "corp", "id_token": h.idToken("victim", map[string]any{"exp": exp})})
}
