package main

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/authex/authex/providers"
)

// TestConfigProviderPolicy: redirect_uris (required where codes are
// accepted), max_age, require_nonce and jwks_refresh_max are read, checked
// with their key paths, and refused on types they do not apply to.
func TestConfigProviderPolicy(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, `
providers:
  corp:
    type: oidc
    issuer: "https://login.example.com"
    client_ids: [ "x" ]
    client_secret: "s3cr3t-value"
    redirect_uris: [ "https://app.example.com/api/auth/callback/corp", "com.example.app:/oauth2redirect" ]
    max_age: 10m
    require_nonce: true
    jwks_refresh_max: 30m
  github: { type: github, client_ids: [ "gh-app" ], client_secret: "s3cr3t-value" }
`)
	cfg, err := loadConfig(good, noEnv)
	if err != nil {
		t.Fatalf("good config: %v", err)
	}
	c := cfg.Providers["corp"].Spec.(*providers.OIDCConfig)
	if !slices.Equal(c.RedirectURIs, []string{"https://app.example.com/api/auth/callback/corp", "com.example.app:/oauth2redirect"}) ||
		c.MaxAge != 10*time.Minute || !c.RequireNonce || c.JWKSRefreshMax != 30*time.Minute {
		t.Fatalf("corp = %+v", c)
	}

	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, `
providers:
  nolist:  { type: oidc, issuer: "https://x.example", client_ids: [ "x" ], client_secret: "s3cr3t-value" }
  google:  { type: google, client_ids: [ "g" ], client_secret: "s3cr3t-value", redirect_uris: [ "/relative", "https://app.example.com/cb#frag" ] }
  nocodes: { type: apple, client_ids: [ "a" ], redirect_uris: [ "https://app.example.com/cb" ], max_age: -1s, jwks_refresh_max: 1m }
  gh:      { type: github, client_ids: [ "a" ], client_secret: "s3cr3t-value", max_age: 5m, require_nonce: true }
`)
	out, err := checkConfigFile(t, bad, noEnv)
	if err == nil {
		t.Fatal("config check accepted the bad provider config")
	}
	outputHas(t, out,
		"providers.nolist.redirect_uris: is required with client_secret",
		"providers.google.redirect_uris[0]: must be an absolute URL",
		"providers.google.redirect_uris[1]: must not have a fragment",
		"providers.nocodes.redirect_uris: applies to providers that exchange codes",
		"providers.nocodes.max_age: must not be negative",
		"providers.nocodes.jwks_refresh_max: must be between 5m and 24h",
		"providers.gh.max_age: applies to type",
		"providers.gh.require_nonce: applies to type",
	)
}
