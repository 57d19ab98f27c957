package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/authex/authex/providers/providertest"
	"github.com/authex/authex/storage/bolt"
)

// TestSigningKeysFromPEMFiles: with tokens.signing_key_files the first
// file's key signs, every file's key is in the JWKS under its RFC 7638
// thumbprint, nothing is written to the store, and rotation and
// revocation answer a clear 409 keys_from_files.
func TestSigningKeysFromPEMFiles(t *testing.T) {
	iss := providertest.NewIssuer(t)
	dir := t.TempDir()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ed)
	ecFile, edFile := filepath.Join(dir, "ec.pem"), filepath.Join(dir, "ed.pem")
	writeFile(t, ecFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})))
	writeFile(t, edFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})))
	thumb := func(pub any) string {
		b, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	ecKid, edKid := thumb(&ec.PublicKey), thumb(ed.Public())

	s := startOps(t, iss, dir, opsOptions{tokens: fmt.Sprintf(", signing_key_files: [ %q, %q ]", ecFile, edFile)})
	ex, _ := signIn(t, iss, s.base, "pem-user")
	if kid := jwtKid(t, ex.AccessToken); kid != ecKid {
		t.Fatalf("token kid = %s, want the first file's thumbprint %s", kid, ecKid)
	}
	if got := jwks(t, s.base); len(got) != 2 || got[0] != ecKid || got[1] != edKid {
		t.Fatalf("JWKS kids = %v, want [%s %s]", got, ecKid, edKid)
	}
	if st, body := request(t, "GET", s.base+"/v1/me", ex.AccessToken); st != http.StatusOK {
		t.Fatalf("/v1/me: %d %s", st, body)
	}
	for _, args := range [][]string{{"keys", "rotate"}, {"keys", "revoke", "--", ecKid}} {
		out, errOut, code := s.cli(t, nil, args...)
		if code == 0 || !strings.Contains(out+errOut, "keys_from_files") {
			t.Fatalf("authex %s with PEM keys: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
	if out := s.cliOK(t, "keys", "list"); !strings.Contains(out, ecKid) || !strings.Contains(out, "active") {
		t.Fatalf("keys list: %s", out)
	}
	s.stop(t)
	store, err := bolt.Open(filepath.Join(dir, "data", "authex.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if keys, err := store.ListSigningKeys(context.Background()); err != nil || len(keys) != 0 {
		t.Fatalf("the store holds %d signing keys (%v); PEM keys are never stored", len(keys), err)
	}
}

// TestConfigCheckSigningKeyFiles: an unreadable file, a non-key and a
// weak RSA key are refused with the key path.
func TestConfigCheckSigningKeyFiles(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	writeFile(t, junk, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	cfg := writeBoltConfig(t, dir, "c", 8080, "http://127.0.0.1:8080",
		fmt.Sprintf("tokens: { signing_key_files: [ %q, %q ] }\n", filepath.Join(dir, "missing.pem"), junk))
	out, err := checkConfigFile(t, cfg, func(string) string { return "" })
	if err == nil || !strings.Contains(out, "tokens.signing_key_files[0]: cannot be read") ||
		!strings.Contains(out, "tokens.signing_key_files[1]:") || !strings.Contains(out, "not a private key") {
		t.Fatalf("bad signing_key_files: %v\n%s", err, out)
	}
}
