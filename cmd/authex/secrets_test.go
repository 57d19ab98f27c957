package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authex/authex/envelope"
	"github.com/authex/authex/providers/providertest"
	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/storage/postgres/pgtest"
)

// plainForms opens every signing key and secret of s with kek and returns
// each in every spelling a leak could take: the raw bytes, base64 (both
// alphabets, padded or not), hex, and for keys the PEM and the private
// scalar. It also returns the sealed records as stored.
func plainForms(t *testing.T, s storage.Store, kek []byte) (plain, sealed map[string][]byte) {
	t.Helper()
	sealer, err := envelope.New(kek)
	if err != nil {
		t.Fatal(err)
	}
	plain, sealed = map[string][]byte{}, map[string][]byte{}
	add := func(name string, b []byte) {
		plain[name] = b
		for enc, e := range map[string]*base64.Encoding{"std": base64.StdEncoding, "raw-std": base64.RawStdEncoding,
			"url": base64.URLEncoding, "raw-url": base64.RawURLEncoding} {
			plain[name+" base64 "+enc] = []byte(e.EncodeToString(b))
		}
		plain[name+" hex"] = []byte(hex.EncodeToString(b))
	}
	ctx := context.Background()
	keys, err := s.ListSigningKeys(ctx)
	if err != nil || len(keys) == 0 {
		t.Fatalf("signing keys: %d, %v", len(keys), err)
	}
	for _, k := range keys {
		if !envelope.IsSealed(k.PrivateKey) {
			t.Fatalf("signing key %s is stored in clear", k.ID)
		}
		sealed["key "+k.ID] = k.PrivateKey
		der, err := sealer.Open("signing-key:"+k.ID, k.PrivateKey)
		if err != nil {
			t.Fatalf("open key %s: %v", k.ID, err)
		}
		add("key "+k.ID+" DER", der)
		plain["key "+k.ID+" PEM"] = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		priv, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			t.Fatal(err)
		}
		if ec, ok := priv.(*ecdsa.PrivateKey); ok {
			scalar, err := ec.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			add("key "+k.ID+" scalar", scalar)
		}
	}
	secrets, err := s.ListSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	macs := 0
	for _, sec := range secrets {
		if !strings.HasPrefix(sec.Name, "refresh-mac") {
			continue
		}
		macs++
		if !envelope.IsSealed(sec.Value) {
			t.Fatalf("secret %s is stored in clear", sec.Name)
		}
		sealed["secret "+sec.Name] = sec.Value
		v, err := sealer.Open("secret:"+sec.Name, sec.Value)
		if err != nil {
			t.Fatalf("open secret %s: %v", sec.Name, err)
		}
		add("secret "+sec.Name, v)
		if len(v) > 32 {
			add("secret "+sec.Name+" key", v[len(v)-32:])
		}
	}
	if macs < 2 {
		t.Fatalf("%d MAC secrets, want the first and a rotated one", macs)
	}
	return plain, sealed
}

// assertClean fails when data holds any plaintext form, and when it lacks
// a sealed record (in the spelling the format stores it).
func assertClean(t *testing.T, what string, data []byte, plain, sealed map[string][]byte, sealedAs func([]byte) []byte) {
	t.Helper()
	for name, b := range plain {
		if bytes.Contains(data, b) {
			t.Errorf("%s carries %s", what, name)
		}
	}
	for name, b := range sealed {
		if !bytes.Contains(data, sealedAs(b)) {
			t.Errorf("%s lacks the sealed %s", what, name)
		}
	}
}

func b64(b []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(b)) }

// runBin runs one authex command in process with env added to this
// process's environment, and demands exit 0.
func runBin(t *testing.T, env []string, args ...string) (stdout, stderr []byte) {
	t.Helper()
	out, errOut, code := runCLI(t, append(os.Environ(), env...), args...)
	if code != 0 {
		t.Fatalf("authex %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return []byte(out), []byte(errOut)
}

// TestBackupAndExportCarryNoKeyMaterialBolt: with no KEK configured, bbolt
// seals with a generated KEK file beside the database. A hot backup and an
// export of a store with signing keys and two MAC secrets hold none of them
// in clear in any spelling, and do hold the sealed records; the export
// imported elsewhere with the same KEK keeps the old access token
// verifying and the old refresh token refreshing.
func TestBackupAndExportCarryNoKeyMaterialBolt(t *testing.T) {
	iss := providertest.NewIssuer(t)
	dir := t.TempDir()
	s := startOps(t, iss, dir, opsOptions{})
	ex, _ := signIn(t, iss, s.base, "backup-user")
	s.cliOK(t, "keys", "rotate")
	s.cliOK(t, "keys", "rotate-refresh-secret")
	backup := filepath.Join(dir, "backup.db")
	s.cliOK(t, "backup", backup)
	s.stop(t)

	db := filepath.Join(dir, "data", "authex.db")
	info, err := os.Stat(db + ".kek")
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("generated KEK file: %v, mode %v; want mode 0600", err, info.Mode())
	}
	if !strings.Contains(s.logText(), "NO KEY-ENCRYPTION KEY CONFIGURED") {
		t.Fatal("no loud warning about the generated KEK in the log")
	}
	kek, err := readOrCreateKEK(db+".kek", false)
	if err != nil {
		t.Fatal(err)
	}
	store, err := bolt.Open(db, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	plain, sealed := plainForms(t, store, kek)
	store.Close()
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, kek) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(kek))) {
		t.Fatal("the database file holds the KEK")
	}
	assertClean(t, "the database file", raw, plain, sealed, func(b []byte) []byte { return b })
	bak, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	assertClean(t, "the /admin/v1/backup file", bak, plain, sealed, func(b []byte) []byte { return b })

	dump, _ := runBin(t, s.env, "export", "-config", s.cfgPath)
	assertClean(t, "authex export", dump, plain, sealed, b64)

	// Import into a fresh store that uses the same KEK (here: its file).
	dir2 := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// The same public URL (the tokens' issuer) on another port.
	cfg2 := writeBoltConfig(t, dir2, "restored", port, s.base, fmt.Sprintf(`
tokens: { audience: [ "api" ] }
providers:
  corp: { type: oidc, issuer: %q, client_ids: [ "web" ] }
secrets: { kek_file: %q }
`, iss.URL(), db+".kek"))
	in := filepath.Join(dir2, "dump.jsonl")
	writeFile(t, in, string(dump))
	runBin(t, nil, "import", "-config", cfg2, "-in", in)
	p := startServe(t, cfg2, base, nil)
	defer p.stop(t)
	if st, body := request(t, "GET", base+"/v1/me", ex.AccessToken); st != http.StatusOK {
		t.Fatalf("an access token from before the export, after the import: %d %s", st, body)
	}
	if _, st := refresh(t, base, ex.RefreshToken); st != http.StatusOK {
		t.Fatalf("a refresh token from before the export, after the import: %d", st)
	}
}

// TestExportCarriesNoKeyMaterialPostgres: the same on PostgreSQL.
func TestExportCarriesNoKeyMaterialPostgres(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	t.Setenv("AUTHEX_PG_DSN", dsn)
	t.Setenv("AUTHEX_ADMIN_TOKEN", testAdminToken)
	iss := providertest.NewIssuer(t)
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := pgConfig(t, dir, "src", port, schema, iss.URL(), `admin: { tokens: [ "${AUTHEX_ADMIN_TOKEN}" ] }`)
	p := startServe(t, cfg, base, nil)
	ex, _ := signIn(t, iss, base, "pg-export-user")
	runBin(t, []string{"AUTHEX_SERVER=" + base}, "keys", "rotate-refresh-secret")
	dump, _ := runBin(t, nil, "export", "-config", cfg)
	p.stop(t)

	kek, err := envelope.ParseKEK(testKEK)
	if err != nil {
		t.Fatal(err)
	}
	store, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	plain, sealed := plainForms(t, store, kek)
	store.Close()
	assertClean(t, "authex export (postgres)", dump, plain, sealed, b64)

	dsn2, schema2 := pgtest.Schema(t)
	if dsn2 != dsn {
		t.Setenv("AUTHEX_PG_DSN", dsn2)
	}
	port2 := freePort(t)
	base2 := fmt.Sprintf("http://127.0.0.1:%d", port2)
	cfg2 := pgConfig(t, dir, "dst", port2, schema2, iss.URL())
	in := filepath.Join(dir, "dump.jsonl")
	writeFile(t, in, string(dump))
	runBin(t, nil, "import", "-config", cfg2, "-in", in)
	p2 := startServe(t, cfg2, base2, nil)
	defer p2.stop(t)
	if st, body := request(t, "GET", base2+"/v1/me", ex.AccessToken); st != http.StatusOK {
		t.Fatalf("an access token from before the export, after the import: %d %s", st, body)
	}
	if _, st := refresh(t, base2, ex.RefreshToken); st != http.StatusOK {
		t.Fatalf("a refresh token from before the export, after the import: %d", st)
	}
}
