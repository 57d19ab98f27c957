package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckVerifiesNonce: verifies_nonce belongs to a confidential
// client; on a public one it is refused with its key path.
func TestConfigCheckVerifiesNonce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nonce.yaml")
	writeFile(t, path, `
providers:
  corp: { type: oidc, issuer: "https://login.example.com", client_ids: [ "authex" ] }
clients:
  - { id: nextjs, secret: "${NEXTJS_SECRET}", verifies_nonce: true }
  - { id: ios-app, public: true, verifies_nonce: true }
  - { id: spa, public: true, verifies_nonce: false }
`)
	env := map[string]string{"NEXTJS_SECRET": "nextjs-secret-0123456789"}
	out, err := checkConfigFile(t, path, func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("config check accepted verifies_nonce on a public client")
	}
	outputHas(t, out, "clients[1].verifies_nonce: only a confidential client may attest the nonce")
	if !strings.Contains(out, "1 problem(s)") {
		t.Errorf("want exactly the one problem:\n%s", out)
	}

	ok := filepath.Join(dir, "ok.yaml")
	writeFile(t, ok, fmt.Sprintf(`
providers:
  corp: { type: oidc, issuer: "https://login.example.com", client_ids: [ "authex" ] }
clients:
  - { id: nextjs, secret: %q, verifies_nonce: true }
`, env["NEXTJS_SECRET"]))
	if out, err := checkConfigFile(t, ok, noEnv); err != nil {
		t.Fatalf("verifies_nonce on a confidential client refused: %v\n%s", err, out)
	}
}
