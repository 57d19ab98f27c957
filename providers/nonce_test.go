package providers_test

import (
	"errors"
	"testing"

	"github.com/authex/authex/providers"
	"github.com/authex/authex/providers/providertest"
)

// TestNonceCheckedByClient pins what NonceCheckedByClient lifts and what it
// leaves: only the comparison with a nonce the request did not send. A sent
// nonce is compared, require_nonce still needs the token to carry one, and
// every other check still runs.
func TestNonceCheckedByClient(t *testing.T) {
	iss := providertest.NewIssuer(t)
	plain := newVerifier(t, iss, nil)
	strict := newVerifier(t, iss, func(c *providers.Config) { c.RequireNonce = true })

	tests := []struct {
		name         string
		v            providers.Verifier
		claims       map[string]any
		nonce        string
		attested     bool
		want         string // reason; "" means verified
		wantAttested bool
	}{
		{name: "attested, nonce token, no nonce sent", v: plain, claims: with("nonce", "n-1"), attested: true, wantAttested: true},
		{name: "not attested, nonce token, no nonce sent", v: plain, claims: with("nonce", "n-1"), want: providers.ReasonNonce},
		{name: "attested, nonce sent and right", v: plain, claims: with("nonce", "n-1"), nonce: "n-1", attested: true},
		{name: "attested, nonce sent and wrong", v: plain, claims: with("nonce", "n-1"), nonce: "n-2", attested: true, want: providers.ReasonNonce},
		{name: "attested, token without nonce", v: plain, claims: baseClaims(), attested: true},
		{name: "attested, other checks still run", v: plain, claims: with("nonce", "n-1", "aud", "someone-else"), attested: true, want: providers.ReasonAudience},
		{name: "attested, expired", v: plain, claims: with("nonce", "n-1", "exp", 1), attested: true, want: providers.ReasonExpired},
		{name: "require_nonce, attested, nonce token", v: strict, claims: with("nonce", "n-1"), attested: true, wantAttested: true},
		{name: "require_nonce, attested, token without nonce", v: strict, claims: baseClaims(), attested: true, want: providers.ReasonNonceRequired},
		{name: "require_nonce, not attested, no nonce sent", v: strict, claims: with("nonce", "n-1"), want: providers.ReasonNonceRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := iss.Mint(t, tt.claims)
			id, err := tt.v.Verify(t.Context(), providers.Credential{IDToken: token, Nonce: tt.nonce, NonceCheckedByClient: tt.attested})
			if tt.want != "" {
				checkRefused(t, err, tt.want, token)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v (reason %q, detail %v)", err, providers.ReasonOf(err), errors.Unwrap(err))
			}
			if id.NonceAttested != tt.wantAttested {
				t.Fatalf("NonceAttested %v, want %v", id.NonceAttested, tt.wantAttested)
			}
			if id.TokenKey == "" {
				t.Fatal("an attested id_token names no TokenKey: it could be replayed")
			}
		})
	}
}
