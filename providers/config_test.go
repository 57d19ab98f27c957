package providers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/authex/authex/providers"
)

// TestTypeConfigs: every type has a config struct whose defaults, with
// client ids and the type's required keys, validate cleanly and build a
// verifier through New.
func TestTypeConfigs(t *testing.T) {
	if got := providers.Types(); !slices.Equal(got, []string{"apple", "github", "google", "microsoft", "oauth2", "oidc"}) {
		t.Fatalf("Types() = %v", got)
	}
	if _, ok := providers.NewTypeConfig("oidcc"); ok {
		t.Fatal("an unknown type has a config")
	}
	required := map[string]func(providers.TypeConfig){
		"oidc":      func(c providers.TypeConfig) { c.(*providers.OIDCConfig).Issuer = "https://idp.example" },
		"microsoft": func(c providers.TypeConfig) { c.(*providers.MicrosoftConfig).AllowedTenants = []string{"*"} },
		"github":    func(c providers.TypeConfig) { c.Shared().ClientSecret = "s3cr3t" },
		"oauth2": func(c providers.TypeConfig) {
			o := c.(*providers.OAuth2Config)
			o.Issuer, o.UserInfoURL, o.TokenInfoURL = "https://idp.example", "https://idp.example/me", "https://idp.example/ti"
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no discovery
	for _, typ := range providers.Types() {
		c, _ := providers.NewTypeConfig(typ)
		if c.Shared().Type != typ {
			t.Errorf("%s: Type = %q", typ, c.Shared().Type)
		}
		if probs := c.Validate(); !hasKey(probs, "client_ids") {
			t.Errorf("%s without client ids: %v", typ, probs)
		}
		c.Shared().ClientIDs = []string{"app"}
		if f := required[typ]; f != nil {
			f(c)
		}
		if probs := c.Validate(); len(probs) > 0 {
			t.Errorf("%s: %v", typ, probs)
		}
		if strings.Contains(fmt.Sprintf("%+v %#v", c, c), "s3cr3t") {
			t.Errorf("%s: a printed config shows its secret", typ)
		}
		if _, err := providers.New(ctx, c.Config("p")); err != nil {
			t.Errorf("%s: New: %v", typ, err)
		}
	}
}

// TestTypeConfigValidate: problems carry their key below the provider.
func TestTypeConfigValidate(t *testing.T) {
	g, _ := providers.NewTypeConfig("google")
	gc := g.(*providers.GoogleConfig)
	gc.ClientIDs = []string{"g", ""}
	gc.UserInfoURL = "http://userinfo.example"
	gc.MaxAge = -1
	gc.RedirectURIs = []string{"https://app.example/cb"}
	var got []string
	for _, p := range g.Validate() {
		got = append(got, p.String())
	}
	for _, want := range []string{
		"client_ids[1]: must not be empty",
		"userinfo_url: must use https",
		"max_age: must not be negative",
		"redirect_uris: applies to providers that exchange codes",
	} {
		if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("missing %q in %q", want, got)
		}
	}
}

func hasKey(ps []providers.Problem, key string) bool {
	return slices.ContainsFunc(ps, func(p providers.Problem) bool { return p.Key == key })
}
