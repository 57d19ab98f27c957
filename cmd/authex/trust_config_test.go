package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckTrust: config check refuses an empty tokens.audience and
// weak admin tokens (short, placeholder, repetitive, one kind of
// character), with key paths and without printing the tokens, and warns
// about an http public_url on a non-loopback host.
func TestConfigCheckTrust(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "weak.yaml")
	weak := []string{
		"short-token",                               // [0] under 32 characters
		"changeme-changeme-changeme-changeme",       // [1] a placeholder
		"abababababababababababababababababababab",  // [2] repetitive
		"12345678901234567890123456789012",          // [3] digits only: ~106 bits
		"3f9c1b7e0d6a45c2a8e1f0b9d7c6e5a4b3c2d1e0f", // [4] fine
	}
	writeFile(t, path, `
server: { listen: ":8080", public_url: "http://auth.example.com" }
tokens: { audience: [] }
admin:
  tokens: [ "`+strings.Join(weak, `", "`)+`" ]
`)
	out, err := checkConfigFile(t, path, noEnv)
	if err == nil {
		t.Fatalf("accepted:\n%s", out)
	}
	outputHas(t, out,
		"tokens.audience: must name at least one API",
		"admin.tokens[0]: must be at least 32 characters",
		"admin.tokens[1]: looks like a placeholder",
		"admin.tokens[2]: is too predictable",
		"admin.tokens[3]: is too predictable",
		"warning: server.public_url: is http on a non-loopback host",
		"5 problem(s)",
	)
	if strings.Contains(out, "admin.tokens[4]") {
		t.Errorf("a strong token was refused:\n%s", out)
	}
	for _, tok := range weak {
		if strings.Contains(out, tok) {
			t.Errorf("config check printed a token:\n%s", out)
		}
	}

	// Loopback http and https are fine, and a sound file passes.
	for _, u := range []string{"http://localhost:8080", "http://127.0.0.1:8080", "https://auth.example.com"} {
		ok := filepath.Join(dir, "ok.yaml")
		writeFile(t, ok, `
server: { listen: ":8080", public_url: "`+u+`" }
admin: { tokens: [ "`+weak[4]+`" ] }
`)
		out, err := checkConfigFile(t, ok, noEnv)
		if err != nil || strings.Contains(out, "warning") {
			t.Errorf("%s: %v\n%s", u, err, out)
		}
	}
}
