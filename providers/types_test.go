package providers_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authex/authex/providers"
	"github.com/authex/authex/providers/providertest"
)

func TestNewTypeConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  providers.Config
		want string
	}{
		{"microsoft without allowed_tenants", providers.Config{Type: "microsoft"}, "allowed_tenants is required"},
		{"microsoft with an issuer", providers.Config{Type: "microsoft", Issuer: "https://x", AllowedTenants: []string{"*"}}, "issuer is not used"},
		{"microsoft blank tenant entry", providers.Config{Type: "microsoft", AllowedTenants: []string{"a", " "}}, "allowed_tenants[1] is empty"},
		{"microsoft bad tenant", providers.Config{Type: "microsoft", Tenant: "a/b", AllowedTenants: []string{"*"}}, "must be common"},
		{"microsoft bad authority", providers.Config{Type: "microsoft", Authority: "login", AllowedTenants: []string{"*"}}, "authority"},
		{"allowed_tenants elsewhere", providers.Config{Type: "oidc", Issuer: "https://x", AllowedTenants: []string{"*"}}, "only supported by type microsoft"},
		{"github without secret", providers.Config{Type: "github"}, "client_secret is required"},
		{"github with two apps", providers.Config{Type: "github", ClientIDs: []string{"a", "b"}, ClientSecret: "s"}, "exactly one client id"},
		{"github bad api_url", providers.Config{Type: "github", ClientSecret: "s", APIURL: "api.github.com"}, "api_url"},
		{"oauth2 without binding", providers.Config{Type: "oauth2", Issuer: "https://x", UserInfoURL: "https://x/me"}, "needs a way to bind"},
		{"oauth2 with both bindings", providers.Config{Type: "oauth2", Issuer: "https://x", UserInfoURL: "https://x/me", TokenInfoURL: "https://x/ti", IntrospectionURL: "https://x/in", ClientSecret: "s"}, "not both"},
		{"oauth2 introspection without secret", providers.Config{Type: "oauth2", Issuer: "https://x", UserInfoURL: "https://x/me", IntrospectionURL: "https://x/in"}, "needs client_secret"},
		{"oauth2 without userinfo", providers.Config{Type: "oauth2", Issuer: "https://x", TokenInfoURL: "https://x/ti"}, "userinfo_url is required"},
		{"oauth2 without issuer", providers.Config{Type: "oauth2", UserInfoURL: "https://x/me", TokenInfoURL: "https://x/ti"}, "issuer is required"},
		{"apple with allowed_domains", providers.Config{Type: "apple", AllowedDomains: []string{"x.com"}}, "only supported by type google"},
		{"google bad tokeninfo_url", providers.Config{Type: "google", TokenInfoURL: "nope"}, "tokeninfo_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Name, cfg.Logger = "p", quiet
			if cfg.ClientIDs == nil {
				cfg.ClientIDs = []string{"client"}
			}
			v, err := providers.New(t.Context(), cfg)
			if err == nil {
				t.Fatalf("New succeeded (%s), want an error containing %q", v.Name(), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

const msTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

func newMicrosoft(tb testing.TB, iss *providertest.Issuer, cooldown time.Duration) providers.Verifier {
	tb.Helper()
	iss.AddDiscovery("/organizations/v2.0", iss.URL()+"/{tenantid}/v2.0")
	cfg := providers.WithTiming(providers.Config{
		Name: "ms", Type: "microsoft", Authority: iss.URL(), Tenant: "organizations",
		AllowedTenants: []string{strings.ToUpper(msTenant)}, ClientIDs: []string{webClient}, Logger: quiet,
	}, 10*time.Millisecond, 50*time.Millisecond, cooldown)
	v, err := providers.New(tb.Context(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	waitReady(tb, v)
	return v
}

func msClaims(iss *providertest.Issuer, kv ...any) map[string]any {
	c := map[string]any{"aud": webClient, "sub": "pairwise-sub", "tid": msTenant, "iss": iss.URL() + "/" + msTenant + "/v2.0", "email": "a@contoso.example"}
	for i := 0; i < len(kv); i += 2 {
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

func TestMicrosoftIdentity(t *testing.T) {
	iss := providertest.NewIssuer(t)
	v := newMicrosoft(t, iss, 30*time.Second)
	tests := []struct {
		name     string
		claims   map[string]any
		verified bool
		reason   string
	}{
		{name: "no xms_edov: email not verified", claims: msClaims(iss, "email_verified", true)},
		{name: "xms_edov true", claims: msClaims(iss, "xms_edov", true), verified: true},
		{name: "xms_edov as string", claims: msClaims(iss, "xms_edov", "true"), verified: true},
		{name: "xms_edov without email", claims: msClaims(iss, "xms_edov", true, "email", nil)},
		{name: "xms_edov false", claims: msClaims(iss, "xms_edov", false)},
		{name: "tenant not allowed", claims: msClaims(iss, "tid", "00000000-0000-0000-0000-000000000001", "iss", iss.URL()+"/00000000-0000-0000-0000-000000000001/v2.0"), reason: providers.ReasonTenant},
		{name: "iss of the template", claims: msClaims(iss, "iss", iss.URL()+"/{tenantid}/v2.0"), reason: providers.ReasonIssuer},
		{name: "iss without v2.0", claims: msClaims(iss, "iss", iss.URL()+"/"+msTenant), reason: providers.ReasonIssuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := iss.Mint(t, tt.claims)
			id, err := v.Verify(t.Context(), providers.Credential{IDToken: token})
			if tt.reason != "" {
				checkRefused(t, err, tt.reason, token)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.EmailVerified != tt.verified || id.Issuer != iss.URL()+"/"+msTenant+"/v2.0" || id.TenantID != msTenant || id.Subject != "pairwise-sub" {
				t.Fatalf("identity %+v, want verified %v and the per-tenant issuer", id, tt.verified)
			}
		})
	}
}

// The multi-tenant keys behave like any issuer's: a rotation costs one
// fetch, forged kids are held by the cooldown, the last good keys serve
// while the JWKS is down.
func TestMicrosoftKeys(t *testing.T) {
	iss := providertest.NewIssuer(t)
	v := newMicrosoft(t, iss, 100*time.Millisecond)
	verify := func(token string) error {
		_, err := v.Verify(t.Context(), providers.Credential{IDToken: token})
		return err
	}
	before := iss.JWKSFetches()
	iss.RotateKey()
	if err := verify(iss.Mint(t, msClaims(iss))); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if n := iss.JWKSFetches() - before; n != 1 {
		t.Fatalf("rotation cost %d fetches, want 1", n)
	}
	forged := iss.MintWith(t, providertest.MintOptions{Key: providertest.ForeignKey(), KeyID: "forged"}, msClaims(iss))
	time.Sleep(120 * time.Millisecond) // past the cooldown the rotation's refetch started
	for range 20 {
		checkRefused(t, verify(forged), providers.ReasonUnknownKey, forged)
	}
	if n := iss.JWKSFetches() - before; n != 2 {
		t.Fatalf("20 forged kids cost %d fetches in all, want 2", n)
	}
	iss.SetDown(true)
	time.Sleep(120 * time.Millisecond)
	checkRefused(t, verify(forged), providers.ReasonUnknownKey, forged)
	if err := verify(iss.Mint(t, msClaims(iss))); err != nil {
		t.Fatalf("known key while the JWKS is down: %v", err)
	}
}

func TestAppleClaims(t *testing.T) {
	iss := providertest.NewIssuer(t)
	v := newVerifier(t, iss, func(c *providers.Config) { c.Type = "apple" })
	id, err := v.Verify(t.Context(), providers.Credential{IDToken: iss.Mint(t, with("email_verified", "true", "is_private_email", "true", "name", nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !id.EmailVerified || !id.PrivateEmail || id.Name != "" {
		t.Fatalf("identity %+v", id)
	}
	id, err = v.Verify(t.Context(), providers.Credential{IDToken: iss.Mint(t, with("email_verified", "false", "is_private_email", false))})
	if err != nil || id.EmailVerified || id.PrivateEmail {
		t.Fatalf("identity %+v, %v", id, err)
	}
}

func TestAppleDefaultIssuer(t *testing.T) {
	// No network: New must not wait, and Ready names Apple's issuer.
	v, err := providers.New(t.Context(), providers.WithTiming(providers.Config{
		Name: "apple", Type: "apple", ClientIDs: []string{"com.example.app"}, Logger: quiet,
		HTTPClient: &http.Client{Transport: refuseTransport{}},
	}, time.Hour, time.Hour, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Ready(); err == nil || !strings.Contains(err.Error(), "https://appleid.apple.com") {
		t.Fatalf("Ready() = %v, want it to name Apple's issuer", err)
	}
}

type refuseTransport struct{}

func (refuseTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no network in tests")
}
