package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigClaimsHook: hooks.claims is checked with key paths, never
// prints the secret, and takes its defaults.
func TestConfigClaimsHook(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, `
hooks:
  claims: { url: "http://app.example.com/claims", secret: "short-secret", timeout: 1m, cache_ttl: -1s, on_failure: maybe }
`)
	out, err := checkConfigFile(t, bad, noEnv)
	if err == nil {
		t.Fatalf("accepted:\n%s", out)
	}
	outputHas(t, out,
		"hooks.claims.url: must be https",
		"hooks.claims.secret: must be at least 16 characters",
		"hooks.claims.timeout: must be between",
		"hooks.claims.cache_ttl: must be 0",
		"hooks.claims.on_failure: must be deny or omit",
	)
	if strings.Contains(out, "short-secret") {
		t.Errorf("config check printed the secret:\n%s", out)
	}

	ok := filepath.Join(dir, "ok.yaml")
	writeFile(t, ok, `
hooks:
  claims: { url: "http://127.0.0.1:9000/claims", secret: "0123456789abcdef0123" }
`)
	cfg, err := loadConfig(ok, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.claimsHook()
	if h == nil || h.Timeout != 500*time.Millisecond || h.CacheTTL != time.Minute || h.OnFailure != "deny" {
		t.Fatalf("%+v", h)
	}
}

// TestConfigAnonymous: anonymous is off by default, checked with key
// paths, and takes its defaults.
func TestConfigAnonymous(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, `
anonymous: { enabled: true, per_ip: -1, window: -1s, sweep_after: 1m }
providers:
  anonymous: { type: google, client_ids: [ "x.apps.googleusercontent.com" ] }
`)
	out, err := checkConfigFile(t, bad, noEnv)
	if err == nil {
		t.Fatalf("accepted:\n%s", out)
	}
	outputHas(t, out, "anonymous.per_ip: must be positive", "anonymous.window: must be positive",
		"anonymous.sweep_after: must be at least 1h", "providers.anonymous: the name anonymous")

	ok := filepath.Join(dir, "ok.yaml")
	writeFile(t, ok, "anonymous: { enabled: true }\n")
	cfg, err := loadConfig(ok, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.anonymous(); a == nil || a.PerIP != 10 || a.Window != time.Hour || a.SweepAfter != 720*time.Hour {
		t.Fatalf("%+v", a)
	}
	off := filepath.Join(dir, "off.yaml")
	writeFile(t, off, "log: { level: info }\n")
	if cfg, err := loadConfig(off, noEnv); err != nil || cfg.anonymous() != nil {
		t.Fatalf("anonymous users on by default: %v", err)
	}
}
