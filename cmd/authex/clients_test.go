package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authex/authex/providers/providertest"
)

func TestConfigCheckClients(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	writeFile(t, secretFile, "file-secret-0123456789\n")
	path := filepath.Join(dir, "clients.yaml")
	writeFile(t, path, fmt.Sprintf(`
providers:
  corp: { type: oidc, issuer: "https://login.example.com", client_ids: [ "authex" ] }
clients:
  - { id: web, secret: "${WEB_SECRET}" }
  - { id: web, secret: "0123456789abcdefXYZ" }
  - { id: short, secret: "tooshort" }
  - { id: both, secret: "0123456789abcdefXYZ", secret_file: %q }
  - { id: none }
  - { id: pub, public: true, secret: "0123456789abcdefXYZ" }
  - { id: missing-file, secret_file: %q }
  - { secret_file: %q, providers: [ corp, nope ] }
`, secretFile, filepath.Join(dir, "absent"), secretFile))
	env := map[string]string{"WEB_SECRET": "env-secret-0123456789"}
	out, err := checkConfigFile(t, path, func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("config check accepted bad clients")
	}
	outputHas(t, out,
		`clients[1].id: "web" is listed twice`,
		"clients[2].secret: must be at least 16 characters",
		"clients[3].secret_file: set secret or secret_file, not both",
		"clients[4].secret: is required for a confidential client",
		"clients[5].public: a public client has no secret",
		"clients[6].secret_file: cannot be read",
		"clients[7].id: is required",
		`clients[7].providers[1]: names no configured provider: "nope"`,
	)
	if !strings.Contains(out, "8 problem(s)") {
		t.Errorf("want 8 problems:\n%s", out)
	}
	for _, secret := range []string{"env-secret-0123456789", "tooshort", "file-secret-0123456789", "0123456789abcdefXYZ"} {
		if strings.Contains(out, secret) {
			t.Errorf("a secret is printed: %s", out)
		}
	}
}

// TestClientsEndToEnd runs the real binary with a secret from the
// environment and one from a file: clients authenticate, the access token
// records who asked, and no secret reaches the log.
func TestClientsEndToEnd(t *testing.T) {
	iss := providertest.NewIssuer(t)
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	const envSecret, fileSecret = "env-secret-0123456789", "file-secret-0123456789"
	writeFile(t, filepath.Join(dir, "secret"), fileSecret+"\n")
	cfgPath := writeBoltConfig(t, dir, "authex", port, base, fmt.Sprintf(`
providers:
  corp: { type: oidc, issuer: %q, client_ids: [ "web" ] }
clients:
  - { id: nextjs, secret: "${TEST_NEXTJS_SECRET}" }
  - { id: backend, secret_file: %q }
  - { id: ios, public: true }
log: { format: json, level: debug }
`, iss.URL(), filepath.Join(dir, "secret")))
	t.Setenv("TEST_NEXTJS_SECRET", envSecret)
	p := startServe(t, cfgPath, base, nil)
	defer p.stop(t)

	form := func(id, secret string) (int, map[string]any) {
		t.Helper()
		v := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"subject_token":      {iss.Mint(t, map[string]any{"sub": "e2e", "aud": "web", "email": "e2e@example.com", "email_verified": true})},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}, "subject_issuer": {"corp"}}
		req, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if id != "" {
			req.SetBasicAuth(id, secret)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		m := map[string]any{}
		_ = json.Unmarshal(raw, &m)
		return res.StatusCode, m
	}
	for _, tc := range []struct{ id, secret, want string }{{"nextjs", envSecret, "nextjs"}, {"backend", fileSecret, "backend"}} {
		status, m := form(tc.id, tc.secret)
		if status != 200 {
			t.Fatalf("%s: %d %v", tc.id, status, m)
		}
		claims := payload(t, m["access_token"].(string))
		if claims["client_id"] != tc.want {
			t.Fatalf("client_id claim %v, want %s", claims["client_id"], tc.want)
		}
	}
	if status, m := form("nextjs", fileSecret); status != 401 || m["reason"] != "invalid_secret" {
		t.Fatalf("wrong secret: %d %v", status, m)
	}
	if status, m := form("", ""); status != 401 || m["reason"] != "missing_client" {
		t.Fatalf("no client: %d %v", status, m)
	}
	p.stop(t)
	logs := p.logs.String()
	if !strings.Contains(logs, `"clients":3`) {
		t.Errorf("startup log does not count the clients:\n%s", logs)
	}
	for _, s := range []string{envSecret, fileSecret} {
		if strings.Contains(logs, s) {
			t.Fatalf("a client secret reached the log:\n%s", logs)
		}
	}
}

func payload(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
