package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/storage/postgres/pgtest"
	"github.com/authex/authex/storage/transfer"
)

// exportFixture exports a small bbolt store (two users, a session, a key,
// the refresh secret, an audit event) to a file and returns its path and
// text.
func exportFixture(t *testing.T) (string, string) {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	src, err := bolt.Open(filepath.Join(dir, "src.db"), bolt.Options{NoSync: true, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	for _, name := range []string{"ada", "bob"} {
		u := storage.User{ID: "u-" + name, Email: name + "@example.com", EmailVerified: true, Roles: []string{}, CreatedAt: t0, UpdatedAt: t0}
		id := storage.Identity{ID: "i-" + name, UserID: u.ID, Provider: "corp", Issuer: "https://issuer.example.com", Subject: "sub-" + name, CreatedAt: t0}
		if err := src.CreateUser(ctx, u, id); err != nil {
			t.Fatal(err)
		}
		if err := src.CreateSession(ctx, storage.Session{ID: "s-" + name, UserID: u.ID, Provider: "corp", ClientID: "web", Generation: 1,
			CreatedAt: t0, RotatedAt: t0, IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.CreateSigningKey(ctx, storage.SigningKey{ID: "k1", Algorithm: "ES256", PrivateKey: []byte{1, 2, 3}, CreatedAt: t0, NotBefore: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.EnsureSecret(ctx, "refresh-mac", []byte("0123456789abcdef0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	if err := src.AppendAudit(ctx, storage.AuditEvent{Type: "user.created", UserID: "u-ada", Time: t0}); err != nil {
		t.Fatal(err)
	}
	var dump bytes.Buffer
	if _, err := transfer.Export(ctx, src, &dump); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dump.jsonl")
	writeFile(t, path, dump.String())
	return path, dump.String()
}

// importCmd runs `authex import -config cfg -in stream` (stream written to
// a file first) in process.
func importCmd(t *testing.T, cfg, stream string, getenv func(string) string) (string, error) {
	t.Helper()
	in := filepath.Join(t.TempDir(), "in.jsonl")
	writeFile(t, in, stream)
	var out bytes.Buffer
	err := run(t.Context(), []string{"import", "-config", cfg, "-in", in}, getenv, &out, &out)
	return out.String(), err
}

// badStreams are exports made bad in the ways an operator meets: cut off,
// counts that disagree, a line mangled in the middle, and one the store
// itself refuses half way (Bob's identity is Ada's), after the secret, the
// key and Ada were written.
func badStreams(dump string) map[string][2]string {
	lines := strings.SplitAfter(strings.TrimSuffix(dump, "\n"), "\n")
	n := len(lines)
	return map[string][2]string{
		"truncated":    {strings.Join(lines[:n-2], ""), "without its end line (truncated?)"},
		"cut mid-line": {dump[:len(dump)-len(lines[n-1])-7], fmt.Sprintf("line %d:", n-1)},
		"counts":       {strings.Replace(dump, `"sessions":2`, `"sessions":3`, 1), fmt.Sprintf("line %d (end): read 2 users, 2 identities, 2 sessions", n)},
		"mangled":      {strings.Replace(dump, `{"kind":"user","user":{"id":"u-bob"`, `{"kind":"user","user":{"id":"u-bob",`, 1), "invalid character"},
		"store refuses": {strings.Replace(dump, `"subject":"sub-bob"`, `"subject":"sub-ada"`, 1),
			"already belongs to a user"},
	}
}

// TestImportBoltAllOrNothing: a refused import leaves no file at the
// target path and no temporary file next to it; a good one then puts the
// whole store there; a second is refused and changes nothing.
func TestImportBoltAllOrNothing(t *testing.T) {
	t.Parallel() // waits on timers; runs beside the other waiting tests
	_, dump := exportFixture(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	target := filepath.Join(data, "authex.db")
	cfg := writeBoltConfig(t, dir, "authex", freePort(t), publicURL, `
providers:
  corp: { type: oidc, issuer: "https://issuer.example.com", client_ids: [ "web" ] }
`)
	files := func() []string {
		entries, _ := os.ReadDir(data)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}

	for name, bad := range badStreams(dump) {
		out, err := importCmd(t, cfg, bad[0], noEnv)
		if err == nil || !strings.Contains(err.Error(), bad[1]) || !strings.Contains(err.Error(), "nothing was written") {
			t.Fatalf("%s: err = %v, want one containing %q\n%s", name, err, bad[1], out)
		}
		if left := files(); len(left) != 0 {
			t.Fatalf("%s: files left in %s: %v", name, data, left)
		}
	}

	// An existing store that holds nothing (migrate made it) is replaced.
	var out bytes.Buffer
	if err := run(t.Context(), []string{"migrate", "-config", cfg}, noEnv, &out, &out); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out.String())
	}
	if out, err := importCmd(t, cfg, badStreams(dump)["store refuses"][0], noEnv); err == nil {
		t.Fatalf("store refuses, over an empty file: %s", out)
	}
	if left := files(); !slices.Equal(left, []string{"authex.db"}) {
		t.Fatalf("files after a refused import over an empty store: %v", left)
	}

	// While an instance holds the file, import is refused.
	held, err := bolt.Open(target, bolt.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := importCmd(t, cfg, dump, noEnv); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("import into a locked file: %v\n%s", err, out)
	}
	held.Close()

	if out, err := importCmd(t, cfg, dump, noEnv); err != nil || !strings.Contains(out, "imported into bolt: 2 users, 2 identities, 2 sessions, 1 signing keys, 1 secrets, 1 audit events") {
		t.Fatalf("good import: %v\n%s", err, out)
	}
	if left := files(); !slices.Equal(left, []string{"authex.db"}) {
		t.Fatalf("files after the import: %v", left)
	}
	if info, err := os.Stat(target); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("imported file: %v, %v", info, err)
	}
	if out, err := importCmd(t, cfg, dump, noEnv); err == nil || !strings.Contains(err.Error(), "import only into an empty store") {
		t.Fatalf("second import: %v\n%s", err, out)
	}
	s, err := bolt.Open(target, bolt.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.CountUsers(t.Context()); err != nil || n != 2 {
		t.Fatalf("users in the imported file: %d, %v", n, err)
	}
	if _, err := s.GetSession(t.Context(), "s-bob"); err != nil {
		t.Fatalf("Bob's session: %v", err)
	}
}

// TestImportPostgresAllOrNothing: the same bad streams leave the
// PostgreSQL schema empty (the store refusing Bob rolls back the secret,
// the key and Ada), and a good stream then imports.
func TestImportPostgresAllOrNothing(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	_, dump := exportFixture(t)
	getenv := func(k string) string {
		if k == "AUTHEX_PG_DSN" {
			return dsn
		}
		return ""
	}
	cfg := pgConfig(t, t.TempDir(), "imp", freePort(t), schema, "https://issuer.example.com")
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, bad := range badStreams(dump) {
		out, err := importCmd(t, cfg, bad[0], getenv)
		if err == nil || !strings.Contains(err.Error(), bad[1]) || !strings.Contains(err.Error(), "nothing was written") {
			t.Fatalf("%s: err = %v, want one containing %q\n%s", name, err, bad[1], out)
		}
		if empty, err := transfer.Empty(t.Context(), s); err != nil || !empty {
			t.Fatalf("%s: the store is not empty after a refused import (%v)", name, err)
		}
	}
	if out, err := importCmd(t, cfg, dump, getenv); err != nil || !strings.Contains(out, "imported into postgres: 2 users") {
		t.Fatalf("good import: %v\n%s", err, out)
	}
	if n, err := s.CountUsers(t.Context()); err != nil || n != 2 {
		t.Fatalf("users after the import: %d, %v", n, err)
	}
}
