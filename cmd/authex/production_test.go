package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// checkProduction runs `authex config check -production` on yaml and
// returns what it printed to stdout and stderr.
func checkProduction(t *testing.T, yaml string, getenv func(string) string) (string, string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "authex.yaml")
	writeFile(t, path, yaml)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"config", "check", "-production", "-config", path}, getenv, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestConfigCheckProduction(t *testing.T) {
	// The example config is a development config: -production names each
	// thing it must change, with its key path, all at once.
	_, out, err := checkProduction(t, readFile(t, "../../config.example.yaml"), noEnv)
	if err == nil {
		t.Fatalf("config.example.yaml passed -production:\n%s", out)
	}
	outputHas(t, out, "production problem(s)", "server.public_url: must be https", "clients: none configured", "secrets.kek: is not set")

	weak := `
server:
  public_url: "http://auth.example.com"
  listen: ":8080"
  admin_listen: "0.0.0.0:9090"
  trusted_proxies: [ "0.0.0.0/0" ]
log: { level: debug }
admin: { tokens: [ "${ADMIN}" ] }
clients:
  - { id: ios, public: true }
providers:
  corp: { type: oidc, issuer: "http://127.0.0.1:9999", client_ids: [ "authex" ] }
  ms: { type: microsoft, client_ids: [ "x" ], allowed_tenants: [ "*" ] }
`
	env := func(k string) string {
		switch k {
		case "ADMIN":
			return "q7V2kR9xLm4Tn8Wc3Zp6Yb1Hd5Gf0Js2"
		case "KEK":
			return testKEK
		}
		return ""
	}
	_, out, err = checkProduction(t, weak, env)
	if err == nil {
		t.Fatalf("a weak config passed -production")
	}
	outputHas(t, out,
		`server.public_url: must be https`,
		`clients: every client is public`,
		`server.admin_listen: listens on every interface`,
		`server.trusted_proxies[0]: trusts every address`,
		`log.level: debug`,
		`providers.corp.issuer: is plain http`,
		`providers.ms.allowed_tenants[0]`,
	)

	good := `
server:
  public_url: "https://auth.example.com"
  listen: ":8080"
  admin_listen: "127.0.0.1:9090"
  trusted_proxies: [ "10.0.0.0/8" ]
admin: { tokens: [ "${ADMIN}" ] }
clients:
  - { id: nextjs, secret: "${ADMIN}" }
  - { id: ios, public: true }
secrets: { kek: "${KEK}" }
providers:
  google: { type: google, client_ids: [ "web.apps.googleusercontent.com" ] }
`
	stdout, out, err := checkProduction(t, good, env)
	if err != nil {
		t.Fatalf("a production config was refused: %v\n%s", err, out)
	}
	if !strings.Contains(stdout, "ok for production") {
		t.Errorf("stdout = %q, want it to say ok for production", stdout)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSecurityDocNamesRealTests holds docs/security.md's threat table to
// the code: every test or fuzz target it cites as proof exists.
func TestSecurityDocNamesRealTests(t *testing.T) {
	doc := readFile(t, "../../docs/security.md")
	cited := regexp.MustCompile("`((?:Test|Fuzz)[A-Za-z0-9_]+)`").FindAllStringSubmatch(doc, -1)
	if len(cited) < 30 {
		t.Fatalf("docs/security.md cites %d tests; the threat table should cite one per defence", len(cited))
	}
	defined := map[string]bool{}
	decl := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz)[A-Za-z0-9_]+)\(`)
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") {
			for _, m := range decl.FindAllStringSubmatch(readFile(t, path), -1) {
				defined[m[1]] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cited {
		if !defined[c[1]] {
			t.Errorf("docs/security.md cites %s, which no test file defines", c[1])
		}
	}
}
