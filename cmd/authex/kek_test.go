package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authex/authex/envelope"
	"github.com/authex/authex/providers/providertest"
	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
)

// TestConfigCheckKEK: config check warns loudly when bbolt will use a
// generated KEK file, refuses PostgreSQL without a KEK and a malformed KEK,
// naming the key path and never the value.
func TestConfigCheckKEK(t *testing.T) {
	dir := t.TempDir()
	env := func(k string) string {
		switch k {
		case "AUTHEX_PG_DSN":
			return "postgres://u:p@db.internal/authex"
		case "BAD_KEK":
			return "c2hvcnQta2Vr-not-32-bytes"
		}
		return ""
	}
	bolt := writeBoltConfig(t, dir, "bolt", 8080, "http://127.0.0.1:8080", "")
	out, err := checkConfigFile(t, bolt, env)
	if err != nil || !strings.Contains(out, "WARNING: no key-encryption key is configured") || !strings.Contains(out, "authex.db.kek") {
		t.Fatalf("bolt without a KEK: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "authex.db.kek")); err == nil {
		t.Fatal("config check created the KEK file")
	}
	withKEK := writeBoltConfig(t, dir, "kek", 8080, "http://127.0.0.1:8080", "secrets: { kek: \""+testKEK+"\" }\n")
	if out, err := checkConfigFile(t, withKEK, env); err != nil || strings.Contains(out, "WARNING") {
		t.Fatalf("bolt with a KEK: %v\n%s", err, out)
	}
	pg := filepath.Join(dir, "pg.yaml")
	writeFile(t, pg, "storage: { driver: postgres, postgres: { dsn: \"${AUTHEX_PG_DSN}\" } }\n")
	if out, err := checkConfigFile(t, pg, env); err == nil || !strings.Contains(out, "secrets.kek: is required with storage.driver postgres") {
		t.Fatalf("postgres without a KEK: %v\n%s", err, out)
	}
	bad := writeBoltConfig(t, dir, "bad", 8080, "http://127.0.0.1:8080", "secrets: { kek: \"${BAD_KEK}\", previous_keks: [ \"nope\" ] }\n")
	out, err = checkConfigFile(t, bad, env)
	if err == nil || !strings.Contains(out, "secrets.kek:") || !strings.Contains(out, "secrets.previous_keks[0]:") || strings.Contains(out, env("BAD_KEK")) {
		t.Fatalf("malformed KEKs: %v\n%s", err, out)
	}
}

// TestWrongKEKAndKEKRotation: a store sealed under one KEK refuses to start
// under another, with a message that names no secret; listing the old KEK
// in previous_keks reseals everything under the new one, and the sessions
// made before keep working.
func TestWrongKEKAndKEKRotation(t *testing.T) {
	iss := providertest.NewIssuer(t)
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	oldKEK, _ := envelope.NewKEK()
	newKEK, _ := envelope.NewKEK()
	cfg := func(name, secrets string) string {
		return writeBoltConfig(t, dir, name, port, base, fmt.Sprintf(`
providers:
  corp: { type: oidc, issuer: %q, client_ids: [ "web" ] }
secrets: %s
`, iss.URL(), secrets))
	}
	p := startServe(t, cfg("old", fmt.Sprintf("{ kek: %q }", oldKEK)), base, nil)
	ex, _ := signIn(t, iss, base, "kek-user")
	p.stop(t)

	wrong := launch(t, "", nil, "serve", "-config", cfg("wrong", fmt.Sprintf("{ kek: %q }", newKEK)))
	var out bytes.Buffer
	select {
	case <-wrong.done:
		out.WriteString(wrong.logs.String())
		exitCode(wrong.err, &out) // what main prints
		if wrong.err == nil || !strings.Contains(out.String(), "sealed with another key-encryption key") {
			t.Fatalf("start with the wrong KEK: %v\n%s", wrong.err, out.String())
		}
	case <-time.After(10 * time.Second):
		wrong.kill()
		t.Fatalf("authex kept running with the wrong KEK\n%s", wrong.logs.String())
	}
	for _, secret := range []string{oldKEK, newKEK} {
		if strings.Contains(out.String(), secret) {
			t.Fatal("the start-up error prints a KEK")
		}
	}

	p = startServe(t, cfg("rotating", fmt.Sprintf("{ kek: %q, previous_keks: [ %q ] }", newKEK, oldKEK)), base, nil)
	if st, body := request(t, "GET", base+"/v1/me", ex.AccessToken); st != http.StatusOK {
		t.Fatalf("access token after the KEK rotation: %d %s", st, body)
	}
	p.stop(t)
	// Everything is under the new KEK now: the old one can go.
	p = startServe(t, cfg("new", fmt.Sprintf("{ kek: %q }", newKEK)), base, nil)
	defer p.stop(t)
	if _, st := refresh(t, base, ex.RefreshToken); st != http.StatusOK {
		t.Fatalf("refresh token after the KEK rotation: %d", st)
	}
}

// TestLegacyPlaintextStoreIsSealedInPlace: a store written before key
// encryption (a plaintext PKCS#8 key whose kid is not a thumbprint, a
// plaintext MAC secret) is sealed at the first start with a KEK; the kid
// stays, keeps signing and verifying, and today's three-part refresh tokens
// of that secret keep refreshing.
func TestLegacyPlaintextStoreIsSealedInPlace(t *testing.T) {
	iss := providertest.NewIssuer(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "data", "authex.db")
	if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
		t.Fatal(err)
	}
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	macKey := make([]byte, 32)
	rand.Read(macKey)
	const legacyKid = "bGVnYWN5LWtpZC0x" // main's kids: base64url of 12 bytes of SHA-256(DER)
	store, err := bolt.Open(db, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().UTC().Add(-time.Hour)
	if err := store.CreateSigningKey(ctx, storage.SigningKey{ID: legacyKid, Algorithm: "ES256", PrivateKey: der, CreatedAt: now, NotBefore: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.EnsureSecret(ctx, "refresh-mac", macKey); err != nil {
		t.Fatal(err)
	}
	store.Close()

	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := writeBoltConfig(t, dir, "legacy", port, base, fmt.Sprintf(`
providers:
  corp: { type: oidc, issuer: %q, client_ids: [ "web" ] }
secrets: { kek: %q }
`, iss.URL(), testKEK))
	p := startServe(t, cfg, base, nil)
	ex, _ := signIn(t, iss, base, "legacy-user")
	if kid := jwtKid(t, ex.AccessToken); kid != legacyKid {
		t.Fatalf("kid = %s, want the stored key's %s", kid, legacyKid)
	}
	if !contains(jwks(t, base), legacyKid) {
		t.Fatal("the legacy kid left the JWKS")
	}
	parts := strings.Split(ex.RefreshToken, ".")
	if len(parts) != 4 || parts[2] != "0" {
		t.Fatalf("refresh token %q", ex.RefreshToken)
	}
	r, st := refresh(t, base, parts[0]+"."+parts[1]+"."+parts[3])
	if st != http.StatusOK {
		t.Fatalf("a three-part refresh token of the legacy secret: %d", st)
	}
	if st, body := request(t, "GET", base+"/v1/me", r.AccessToken); st != http.StatusOK {
		t.Fatalf("/v1/me: %d %s", st, body)
	}
	p.stop(t)

	kek, _ := envelope.ParseKEK(testKEK)
	sealer, _ := envelope.New(kek)
	store, err = bolt.Open(db, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys, _ := store.ListSigningKeys(ctx)
	if len(keys) != 1 || keys[0].ID != legacyKid || !sealer.Current(keys[0].PrivateKey) {
		t.Fatalf("stored keys after the start: %+v", keys)
	}
	if got, err := sealer.Open("signing-key:"+legacyKid, keys[0].PrivateKey); err != nil || !bytes.Equal(got, der) {
		t.Fatalf("the sealed key does not open to the original: %v", err)
	}
	secrets, _ := store.ListSecrets(ctx)
	for _, s := range secrets {
		if s.Name == "refresh-mac" {
			if got, err := sealer.Open("secret:refresh-mac", s.Value); err != nil || !bytes.Equal(got, macKey) {
				t.Fatalf("the sealed MAC secret does not open to the original: %v", err)
			}
		}
	}
}
