package main

import (
	"path/filepath"
	"testing"
)

// TestConfigSignals: the signals section is checked with key paths, and
// the Google preset fills issuer, jwks_uri and the audiences.
func TestConfigSignals(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, `
providers:
  google: { type: google, client_ids: [ "web.apps.googleusercontent.com" ] }
signals:
  - provider: nope
  - provider: google
    preset: microsoft
  - provider: google
    issuer: "not a url"
    jwks_uri: "ftp://x"
    audiences: [ "" ]
    max_age: -1h
`)
	out, err := checkConfigFile(t, bad, noEnv)
	if err == nil {
		t.Fatalf("accepted:\n%s", out)
	}
	outputHas(t, out,
		"signals[0].provider: names no configured id_token provider",
		"signals[0].issuer: must be the transmitter's issuer URL",
		"signals[1].preset: must be google or empty",
		"signals[2].issuer: must be the transmitter's issuer URL",
		"signals[2].jwks_uri: must be the transmitter's JWKS URL",
		"signals[2].audiences[0]: must not be empty",
		"signals[2].max_age: must be positive",
	)

	ok := filepath.Join(dir, "ok.yaml")
	writeFile(t, ok, `
providers:
  google: { type: google, client_ids: [ "web.apps.googleusercontent.com" ] }
signals:
  - { provider: google, preset: google }
`)
	if out, err := checkConfigFile(t, ok, noEnv); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	cfg, err := loadConfig(ok, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	sc := cfg.Signals[0].resolved(cfg.Providers)
	if sc.Issuer != "https://accounts.google.com/" || sc.JWKSURI != "https://www.googleapis.com/oauth2/v3/certs" ||
		len(sc.Audiences) != 1 || sc.Audiences[0] != "web.apps.googleusercontent.com" {
		t.Fatalf("preset: %+v", sc)
	}
	rs, err := buildSignals(cfg, nil)
	if err != nil || len(rs) != 1 || rs[0].IdentityIssuer != "https://accounts.google.com" {
		t.Fatalf("%+v %v", rs, err)
	}
}
