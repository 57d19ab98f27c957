package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/providers"
	"github.com/authex/authex/providers/providertest"
)

func TestConfigProviderTypes(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "gh.secret")
	writeFile(t, secretFile, "from-the-file\n")
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, fmt.Sprintf(`
providers:
  apple:  { type: apple, client_ids: [ "com.example.app" ] }
  ms:     { type: microsoft, client_ids: [ "app-id" ], allowed_tenants: [ "*" ] }
  github: { type: github, client_ids: [ "gh-app" ], client_secret_file: %q }
  acme:
    type: oauth2
    issuer: "https://acme.example"
    client_ids: [ "acme" ]
    client_secret: "${ACME_SECRET}"
    introspection_url: "https://acme.example/introspect"
    userinfo_url: "https://acme.example/userinfo"
  corp:   { type: oidc, issuer: "https://login.example.com", client_ids: [ "x" ], link_by_email: auto }
`, secretFile))
	env := func(k string) string {
		if k == "ACME_SECRET" {
			return "from-env"
		}
		return ""
	}
	cfg, err := loadConfig(good, env)
	if err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, want := range map[string]string{
		"apple": exchange.LinkAuto, "ms": exchange.LinkConfirm, "github": exchange.LinkConfirm,
		"acme": exchange.LinkConfirm, "corp": exchange.LinkAuto,
	} {
		if got := cfg.Providers[name].Spec.Shared().LinkByEmail; got != want {
			t.Errorf("providers.%s.link_by_email = %q, want %q", name, got, want)
		}
	}
	if cfg.Providers["github"].Spec.Shared().ClientSecret != "from-the-file" || cfg.Providers["acme"].Spec.Shared().ClientSecret != "from-env" {
		t.Fatal("client_secret_file or ${ACME_SECRET} not read")
	}

	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, fmt.Sprintf(`
providers:
  ms:      { type: microsoft, client_ids: [ "app-id" ], tenant: "a/b" }
  github:  { type: github, client_ids: [ "a", "b" ] }
  acme:    { type: oauth2, issuer: "https://acme.example", client_ids: [ "acme" ], userinfo_url: "https://acme.example/me" }
  intro:   { type: oauth2, issuer: "https://acme.example", client_ids: [ "acme" ], userinfo_url: "https://acme.example/me", introspection_url: "https://acme.example/i" }
  google:  { type: google, client_ids: [ "g" ], allowed_tenants: [ "*" ], api_url: "https://api.github.com" }
  both:    { type: oidc, issuer: "https://x.example", client_ids: [ "x" ], client_secret: "s3cr3t-value", client_secret_file: %q }
  nofile:  { type: oidc, issuer: "https://x.example", client_ids: [ "x" ], client_secret_file: %q }
  badurl:  { type: github, client_ids: [ "a" ], client_secret: "s3cr3t-value", api_url: "api.github.com" }
`, secretFile, filepath.Join(dir, "missing")))
	out, err := checkConfigFile(t, bad, noEnv)
	if err == nil {
		t.Fatal("config check accepted the bad provider config")
	}
	outputHas(t, out,
		"providers.ms.allowed_tenants: is required with type microsoft",
		"providers.ms.tenant: must be common, organizations, consumers or a tenant id",
		"providers.github.client_ids: github takes exactly one client id",
		"providers.github.client_secret: is required with type github",
		"providers.acme.introspection_url: type oauth2 needs a way to bind access tokens",
		"providers.intro.client_secret: is required with introspection_url",
		"providers.google.allowed_tenants: applies to type microsoft only",
		"providers.google.api_url: applies to type github only",
		"providers.both.client_secret_file: set client_secret or client_secret_file, not both",
		"providers.nofile.client_secret_file: cannot be read",
		"providers.badurl.api_url: must be an absolute http(s) URL",
	)
	if strings.Contains(out, "s3cr3t-value") {
		t.Fatalf("config check printed a secret:\n%s", out)
	}
}

// The binary wires the new keys through: a GitHub provider against a fake
// GitHub API signs a user in, and another app's token is refused.
func TestServeGitHubProvider(t *testing.T) {
	bin := buildBinary(t)
	gh := providertest.NewGitHub(t)
	gh.AddApp("gh-app", "gh-secret")
	user := providertest.GitHubUser{ID: 99, Login: "octo"}
	emails := []providertest.GitHubEmail{{Email: "octo@example.com", Primary: true, Verified: true}}
	gh.AddToken("gho_ours", providertest.GitHubToken{ClientID: "gh-app", User: user, Emails: emails})
	gh.AddToken("gho_theirs", providertest.GitHubToken{ClientID: "other", User: user, Emails: emails})

	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	writeFile(t, filepath.Join(dir, "gh.secret"), "gh-secret\n")
	cfgPath := writeBoltConfig(t, dir, "authex", port, base, fmt.Sprintf(`
providers:
  github: { type: github, client_ids: [ "gh-app" ], client_secret_file: %q, api_url: %q }
log: { format: json }
`, filepath.Join(dir, "gh.secret"), gh.URL()))
	p := startBinary(t, bin, cfgPath, base)
	defer p.stop(t) // on an early failure; a no-op after the stop below

	tk := postJSON(t, base+"/v1/exchange", map[string]any{"provider": "github", "access_token": "gho_ours"})
	if u := tk["user"].(map[string]any); u["email"] != "octo@example.com" {
		t.Fatalf("github exchange: %v", tk)
	}
	status, body := postRaw(t, base+"/v1/exchange", `{"provider":"github","access_token":"gho_theirs"}`)
	if status != 401 || !strings.Contains(body, `"reason":"audience_mismatch"`) {
		t.Fatalf("another app's token: %d %s", status, body)
	}
	p.stop(t) // the log buffer is read only once the process has exited
	if strings.Contains(p.logs.String(), "gh-secret") || strings.Contains(p.logs.String(), "gho_theirs") {
		t.Fatalf("a secret or token reached the log:\n%s", p.logs.String())
	}
}

func postRaw(t *testing.T, url, body string) (int, string) {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw)
}

// TestConfigProviderKeysByType: each provider decodes into its type's own
// struct, so a key of another type, or of none, is refused with its key
// path, a malformed value is reported without dropping the provider, and
// the type itself may come from the environment.
func TestConfigProviderKeysByType(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, path, `
providers:
  gh:   { type: github, client_ids: [ "a" ], client_secret: "s3cr3t-value", issuer: "https://x.example", colour: blue }
  corp:
    type: oidc
    issuer: "https://x.example"
    client_ids: [ "x" ]
    max_age: soon
    tenant: common
  env:  { type: "${PTYPE}", client_ids: [ "g" ], allowed_domains: [ "example.com" ] }
clients:
  - { id: web, public: true, providers: [ corp ] }
`)
	env := func(k string) string {
		if k == "PTYPE" {
			return "google"
		}
		return ""
	}
	out, err := checkConfigFile(t, path, env)
	if err == nil {
		t.Fatal("config check accepted keys of other types")
	}
	outputHas(t, out,
		"providers.gh.issuer: applies to type apple, google, oauth2, oidc only",
		"providers.gh.colour: unknown key (known: allow_signup, api_url, client_ids,",
		"providers.corp.max_age: cannot unmarshal",
		"providers.corp.tenant: applies to type microsoft only",
		"4 problem(s)",
	)
	if strings.Contains(out, "clients[0]") || strings.Contains(out, "providers.env") {
		t.Fatalf("a provider was dropped or the env type not read:\n%s", out)
	}

	// Defaults live with the type: google's issuer reaches the exchange.
	good := filepath.Join(t.TempDir(), "good.yaml")
	writeFile(t, good, "providers:\n  g: { type: google, client_ids: [ \"g\" ] }\n  ms: { type: microsoft, client_ids: [ \"m\" ], allowed_tenants: [ \"*\" ] }\n")
	cfg, err := loadConfig(good, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if iss := cfg.Providers["g"].Spec.IdentityIssuer(); iss != "https://accounts.google.com" {
		t.Fatalf("google issuer = %q", iss)
	}
	if ms := cfg.Providers["ms"].Spec.(*providers.MicrosoftConfig); ms.Authority != "https://login.microsoftonline.com" || ms.Tenant != "common" {
		t.Fatalf("microsoft defaults: %+v", ms)
	}
}
