package postgres_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/storage/postgres/pgtest"
	"github.com/authex/authex/storage/storagetest"
)

// open returns a store on a schema of its own, dropped when t ends.
func open(t *testing.T, opts postgres.Options) *postgres.Store {
	t.Helper()
	dsn, schema := pgtest.Schema(t)
	opts.Schema = schema
	opts.Logger = quiet
	if opts.SweepInterval == 0 {
		opts.SweepInterval = -1
	}
	s, err := postgres.Open(t.Context(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openViaProxy returns a store on a schema of its own that reaches the
// database through a proxy the test can cut, closed when t ends.
func openViaProxy(t *testing.T) (*postgres.Store, *pgtest.Proxy) {
	t.Helper()
	dsn, schema := pgtest.Schema(t)
	proxy, viaProxy := pgtest.NewProxy(t, dsn)
	s, err := postgres.Open(t.Context(), viaProxy, postgres.Options{Schema: schema, ConnectTimeout: time.Second, SweepInterval: -1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, proxy
}

func TestConformance(t *testing.T) {
	pgtest.DSN(t)
	storagetest.Run(t, func(t *testing.T) storage.Store { return open(t, postgres.Options{}) })
}

var quiet = slog.New(slog.DiscardHandler)

func newUser(email, subject string) (storage.User, storage.Identity) {
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	u := storage.User{ID: uuid.NewString(), Email: email, EmailVerified: true, Roles: []string{}, CreatedAt: t0, UpdatedAt: t0}
	id := storage.Identity{ID: uuid.NewString(), UserID: u.ID, Provider: "google", Issuer: "https://accounts.google.com",
		Subject: subject, Email: email, EmailVerified: true, CreatedAt: t0, LastLoginAt: t0}
	return u, id
}

// Instances that start together on an empty schema migrate it once.
func TestMigrationsConcurrent(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*postgres.Store, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema, SweepInterval: -1, Logger: quiet})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer stores[i].Close()
		if v := stores[i].SchemaVersion(); v != postgres.LatestVersion() || v < 1 {
			t.Errorf("store %d at schema version %d, want %d", i, v, postgres.LatestVersion())
		}
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var rows, max int
	if err := conn.QueryRow(t.Context(), "SELECT count(*), max(version) FROM "+schema+".schema_version").Scan(&rows, &max); err != nil {
		t.Fatal(err)
	}
	if rows != postgres.LatestVersion() || max != postgres.LatestVersion() {
		t.Fatalf("schema_version has %d rows up to %d, want each of 1..%d once", rows, max, postgres.LatestVersion())
	}

	// A schema from a newer authex is refused, not touched.
	if _, err := conn.Exec(t.Context(), "INSERT INTO "+schema+".schema_version (version, name) VALUES (999, 'future')"); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema, SweepInterval: -1, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "newer than this authex") {
		t.Fatalf("Open on a newer schema: %v", err)
	}
}

// The DSN's password never shows in an error, whether the DSN is malformed
// or the server cannot be reached; the latter is ErrUnavailable.
func TestErrorsNeverShowThePassword(t *testing.T) {
	const password = "hunter2-very-secret"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	tests := []struct {
		name, dsn   string
		unavailable bool
	}{
		{"malformed", "postgres://authex:" + password + "@127.0.0.1:notaport/authex", false},
		{"unknown parameter", "postgres://authex:" + password + "@127.0.0.1/authex?sslmode=sometimes", false},
		{"nothing listening", fmt.Sprintf("postgres://authex:%s@127.0.0.1:%d/authex?sslmode=disable", password, closedPort), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := postgres.Open(t.Context(), tt.dsn, postgres.Options{ConnectTimeout: time.Second, SweepInterval: -1, Logger: quiet})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if strings.Contains(err.Error(), password) {
				t.Fatalf("error shows the password: %v", err)
			}
			if got := errors.Is(err, storage.ErrUnavailable); got != tt.unavailable {
				t.Fatalf("errors.Is(%v, ErrUnavailable) = %v, want %v", err, got, tt.unavailable)
			}
		})
	}
}

// When the database goes away, calls fail with ErrUnavailable (quickly,
// and nothing half-written); when it returns, the pool reconnects by itself.
func TestOutageAndRecovery(t *testing.T) {
	s, proxy := openViaProxy(t)
	ctx := t.Context()
	before, beforeID := newUser("before@example.com", "before")
	if err := s.CreateUser(ctx, before, beforeID); err != nil {
		t.Fatal(err)
	}

	proxy.Cut()
	during, duringID := newUser("during@example.com", "during")
	for name, call := range map[string]func() error{
		"Ping":       func() error { return s.Ping(ctx) },
		"CreateUser": func() error { return s.CreateUser(ctx, during, duringID) },
		"GetUser":    func() error { _, err := s.GetUser(ctx, before.ID); return err },
		"Rotate": func() error {
			_, err := s.RotateSession(ctx, uuid.NewString(), 1, time.Now(), time.Now().Add(time.Hour))
			return err
		},
	} {
		start := time.Now()
		err := call()
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s while the database is away: err = %v, want ErrUnavailable", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s took %s to fail", name, d)
		}
	}

	proxy.Restore()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after the database returned: %v", err)
	}
	if _, err := s.GetUser(ctx, during.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the user refused during the outage: err = %v, want ErrNotFound", err)
	}
	if err := s.CreateUser(ctx, during, duringID); err != nil {
		t.Fatalf("CreateUser after recovery: %v", err)
	}
	if n, err := s.CountUsers(ctx); err != nil || n != 2 {
		t.Fatalf("CountUsers = %d, %v; want 2", n, err)
	}
}

// A connection that dies inside CreateUser's transaction, after the user
// row and before the identity row, leaves neither behind.
func TestNoPartialUserWhenTheConnectionDies(t *testing.T) {
	s, proxy := openViaProxy(t)
	ctx := t.Context()
	u, id := newUser("half@example.com", "half")

	proxy.KillOn("INSERT INTO identities")
	err := s.CreateUser(ctx, u, id)
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("CreateUser with the connection dying half way: err = %v, want ErrUnavailable", err)
	}
	t.Logf("CreateUser with the connection dying half way: %v", err)
	proxy.KillOn("")
	if _, err := s.GetUser(ctx, u.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetUser of the half-written user: err = %v, want ErrNotFound", err)
	}
	if _, err := s.GetUserByVerifiedEmail(ctx, u.Email); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the half-written user holds the email index: %v", err)
	}
	if n, err := s.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("CountUsers = %d, %v; want 0", n, err)
	}
	if err := s.CreateUser(ctx, u, id); err != nil {
		t.Fatalf("CreateUser once the connection holds: %v", err)
	}
}

// Two stores on one schema are two instances: rotations from one
// generation on both, concurrently, have exactly one winner.
func TestRotateAcrossInstances(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	var stores [2]*postgres.Store
	for i := range stores {
		s, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema, SweepInterval: -1, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	ctx := t.Context()
	u, id := newUser("u@example.com", "u")
	if err := stores[0].CreateUser(ctx, u, id); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	sess := storage.Session{ID: uuid.NewString(), UserID: u.ID, Generation: 1, RotatedAt: now, CreatedAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour)}
	if err := stores[1].CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	const n = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := stores[i%2].RotateSession(ctx, sess.ID, 1, now.Add(time.Second), now.Add(2*time.Hour))
			switch {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case !errors.Is(err, storage.ErrStale):
				t.Errorf("rotation %d: %v", i, err)
			case got.Generation != 2:
				t.Errorf("loser %d saw generation %d, want 2", i, got.Generation)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d rotations won, want exactly 1", wins)
	}
}

// Benchmarks on the test server (loopback): go test -bench . -run '^$'
// with AUTHEX_TEST_POSTGRES_DSN set.

func BenchmarkRotateSession(b *testing.B) {
	dsn, schema := pgtest.Schema(b)
	s, err := postgres.Open(b.Context(), dsn, postgres.Options{Schema: schema, SweepInterval: -1, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	u, id := newUser("bench@example.com", "bench")
	if err := s.CreateUser(b.Context(), u, id); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	b.RunParallel(func(pb *testing.PB) {
		sess := storage.Session{ID: uuid.NewString(), UserID: u.ID, Generation: 1, RotatedAt: now, CreatedAt: now,
			IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour)}
		if err := s.CreateSession(b.Context(), sess); err != nil {
			b.Fatal(err)
		}
		for gen := uint64(1); pb.Next(); gen++ {
			if _, err := s.RotateSession(b.Context(), sess.ID, gen, now, now.Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCreateUser(b *testing.B) {
	dsn, schema := pgtest.Schema(b)
	s, err := postgres.Open(b.Context(), dsn, postgres.Options{Schema: schema, SweepInterval: -1, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u, id := newUser(uuid.NewString()+"@example.com", uuid.NewString())
			if err := s.CreateUser(b.Context(), u, id); err != nil {
				b.Fatal(err)
			}
		}
	})
}
