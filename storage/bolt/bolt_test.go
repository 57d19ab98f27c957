package bolt_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	bbolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
	"github.com/authex/authex/storage/storagetest"
)

// TestConformance runs the suite against real files with fsync on: durable
// writes are what we ship.
func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return open(t, filepath.Join(t.TempDir(), "authex.db"), bolt.Options{})
	})
}

func open(tb testing.TB, path string, opts bolt.Options) *bolt.Store {
	tb.Helper()
	s, err := bolt.Open(path, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// newUser returns a user and its first identity, both new.
func newUser(at time.Time) (storage.User, storage.Identity) {
	u := storage.User{ID: uuid.NewString(), Email: uuid.NewString() + "@example.com", EmailVerified: true, Name: "Ada", Roles: []string{"member"}, CreatedAt: at, UpdatedAt: at}
	id := storage.Identity{ID: uuid.NewString(), UserID: u.ID, Provider: "google", Issuer: "https://accounts.google.com", Subject: uuid.NewString(), Email: u.Email, EmailVerified: true, CreatedAt: at, LastLoginAt: at}
	return u, id
}

func newSession(u storage.User, at time.Time) storage.Session {
	return storage.Session{ID: uuid.NewString(), UserID: u.ID, Provider: "google", ClientID: "web", Generation: 1, RotatedAt: at, CreatedAt: at, IdleExpiresAt: at.Add(14 * 24 * time.Hour), ExpiresAt: at.Add(90 * 24 * time.Hour)}
}

func mustCreateUser(tb testing.TB, s storage.Store, at time.Time) (storage.User, storage.Identity) {
	tb.Helper()
	u, id := newUser(at)
	if err := s.CreateUser(context.Background(), u, id); err != nil {
		tb.Fatalf("CreateUser: %v", err)
	}
	return u, id
}

// readVersion reads the schema version straight from a closed file: the
// on-disk layout is part of what these tests pin.
func readVersion(tb testing.TB, path string) uint64 {
	tb.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		tb.Fatalf("bbolt.Open: %v", err)
	}
	defer db.Close()
	var v uint64
	err = db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		if meta == nil {
			return errors.New("no meta bucket")
		}
		raw := meta.Get([]byte("version"))
		if len(raw) != 8 {
			return fmt.Errorf("version = %x, want 8 bytes", raw)
		}
		for _, b := range raw {
			v = v<<8 | uint64(b)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("read version: %v", err)
	}
	return v
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "authex.db")
	s, err := bolt.Open(path, bolt.Options{SweepInterval: -1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	at := time.Now().UTC().Truncate(time.Microsecond)
	u, id := mustCreateUser(t, s, at)
	sess := newSession(u, at)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if _, err := s.EnsureSecret(ctx, "mac", []byte("secret")); err != nil {
		t.Fatalf("EnsureSecret: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if v := readVersion(t, path); v != bolt.SchemaVersion {
		t.Errorf("schema version after create = %d, want %d", v, bolt.SchemaVersion)
	}

	s = open(t, path, bolt.Options{SweepInterval: -1})
	if got, err := s.GetUser(ctx, u.ID); err != nil || got.Email != u.Email {
		t.Errorf("GetUser after reopen = %+v, %v", got, err)
	}
	if got, err := s.GetIdentity(ctx, id.Issuer, id.Subject); err != nil || got.UserID != u.ID {
		t.Errorf("GetIdentity after reopen = %+v, %v", got, err)
	}
	if got, err := s.GetUserByVerifiedEmail(ctx, strings.ToUpper(u.Email)); err != nil || got.ID != u.ID {
		t.Errorf("GetUserByVerifiedEmail after reopen = %+v, %v", got, err)
	}
	if got, err := s.GetSession(ctx, sess.ID); err != nil || !got.IdleExpiresAt.Equal(sess.IdleExpiresAt) {
		t.Errorf("GetSession after reopen = %+v, %v", got, err)
	}
	if got, err := s.EnsureSecret(ctx, "mac", []byte("other")); err != nil || string(got) != "secret" {
		t.Errorf("EnsureSecret after reopen = %q, %v", got, err)
	}
	if n, err := s.CountUsers(ctx); err != nil || n != 1 {
		t.Errorf("CountUsers after reopen = %d, %v; want 1", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if v := readVersion(t, path); v != bolt.SchemaVersion {
		t.Errorf("schema version after reopen = %d, want %d", v, bolt.SchemaVersion)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authex.db")
	s, err := bolt.Open(path, bolt.Options{SweepInterval: -1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s.Close()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt.Open: %v", err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("version"), binary.BigEndian.AppendUint64(nil, bolt.SchemaVersion+1))
	})
	db.Close()
	if err != nil {
		t.Fatalf("set version: %v", err)
	}

	s, err = bolt.Open(path, bolt.Options{SweepInterval: -1})
	if err == nil {
		s.Close()
		t.Fatal("Open of a file at a newer schema version succeeded")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open error = %q, want it to say the file is newer", err)
	}
	if v := readVersion(t, path); v != bolt.SchemaVersion+1 {
		t.Errorf("schema version after the refused open = %d, want %d (untouched)", v, bolt.SchemaVersion+1)
	}
}

func TestOpenLockedFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authex.db")
	open(t, path, bolt.Options{SweepInterval: -1})

	start := time.Now()
	s, err := bolt.Open(path, bolt.Options{SweepInterval: -1})
	elapsed := time.Since(start)
	if err == nil {
		s.Close()
		t.Fatal("second Open of a held file succeeded")
	}
	if !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("second Open error = %q, want it to say the file is locked by another process", err)
	}
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("second Open error = %v, want it to wrap storage.ErrUnavailable", err)
	}
	if elapsed > 5*time.Second {
		t.Errorf("second Open took %s, want about a second", elapsed)
	}
}

func TestBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "authex.db"), bolt.Options{SweepInterval: -1})
	at := time.Now()
	var users []storage.User
	for range 20 {
		u, _ := mustCreateUser(t, s, at)
		users = append(users, u)
	}

	var buf bytes.Buffer
	n, err := s.Backup(ctx, &buf)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if n != int64(buf.Len()) || n == 0 {
		t.Errorf("Backup returned %d, wrote %d bytes", n, buf.Len())
	}
	// The store keeps serving after a hot backup, and later writes are not in it.
	mustCreateUser(t, s, at)

	backup := filepath.Join(dir, "backup.db")
	if err := os.WriteFile(backup, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	b := open(t, backup, bolt.Options{SweepInterval: -1})
	if c, err := b.CountUsers(ctx); err != nil || c != len(users) {
		t.Errorf("CountUsers of the backup = %d, %v; want %d", c, err, len(users))
	}
	for _, u := range users {
		if got, err := b.GetUser(ctx, u.ID); err != nil || got.Email != u.Email {
			t.Errorf("GetUser(%s) of the backup = %+v, %v", u.ID, got, err)
		}
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Backup(cancelled, &bytes.Buffer{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Backup with a cancelled context: err = %v, want context.Canceled", err)
	}
}

func TestSweepRemovesExpiredSessions(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "authex.db")
	s, err := bolt.Open(path, bolt.Options{SweepInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	now := time.Now()
	u, _ := mustCreateUser(t, s, now)
	expired := newSession(u, now.Add(-time.Hour))
	expired.IdleExpiresAt = now.Add(-time.Minute)
	live := newSession(u, now)
	for _, sess := range []storage.Session{expired, live} {
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}

	// Background work: poll, with a generous deadline, rather than sleep.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.GetSession(ctx, expired.ID)
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expired session still there after 10s of sweeping (err %v)", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := s.GetSession(ctx, live.ID); err != nil {
		t.Errorf("GetSession of the live session after a sweep: %v", err)
	}
	// Close stops and waits for the sweeper; afterwards the store says so.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.GetUser(ctx, u.ID); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("GetUser after Close: err = %v, want storage.ErrUnavailable", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Ping after Close: err = %v, want storage.ErrUnavailable", err)
	}
}

// Benchmarks run with fsync on. The write benchmarks use 32 goroutines per
// CPU to stand for concurrent requests, which is what Batch is for.

func benchStore(b *testing.B) *bolt.Store {
	b.Helper()
	return open(b, filepath.Join(b.TempDir(), "authex.db"), bolt.Options{SweepInterval: -1})
}

func BenchmarkCreateUser(b *testing.B) {
	s := benchStore(b)
	ctx, at := context.Background(), time.Now()
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u, id := newUser(at)
			if err := s.CreateUser(ctx, u, id); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkGetIdentity(b *testing.B) {
	const users = 10000
	s := benchStore(b)
	ctx, at := context.Background(), time.Now()
	ids := make([]storage.Identity, users)
	var wg sync.WaitGroup
	for w := range 100 { // concurrent, so setup shares fsyncs
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < users; i += 100 {
				u, id := newUser(at)
				if err := s.CreateUser(ctx, u, id); err != nil {
					b.Error(err)
					return
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := ids[next.Add(1)%users]
			if _, err := s.GetIdentity(ctx, id.Issuer, id.Subject); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkRotateSession(b *testing.B) {
	s := benchStore(b)
	ctx, at := context.Background(), time.Now()
	u, _ := mustCreateUser(b, s, at)
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		sess := newSession(u, at) // one session per goroutine: every rotation wins
		if err := s.CreateSession(ctx, sess); err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			now := time.Now()
			got, err := s.RotateSession(ctx, sess.ID, sess.Generation, now, now.Add(14*24*time.Hour))
			if err != nil {
				b.Error(err)
				return
			}
			sess = got
		}
	})
}

// BenchmarkDeleteExpiredSessions times one sweep that finds 100 expired
// sessions among many live ones: the sweep should cost what it deletes, not
// what the store holds. NoSync: the commit's fsync is the same in every
// case and would hide the difference this measures.
func BenchmarkDeleteExpiredSessions(b *testing.B) {
	for _, live := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("live=%d", live), func(b *testing.B) {
			const expired = 100
			s := open(b, filepath.Join(b.TempDir(), "authex.db"), bolt.Options{NoSync: true, SweepInterval: -1})
			ctx, now := context.Background(), time.Now()
			users := make([]storage.User, 100)
			for i := range users {
				users[i], _ = mustCreateUser(b, s, now)
			}
			createSessions(b, s, live, func(i int) storage.Session { return newSession(users[i%len(users)], now) })
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				createSessions(b, s, expired, func(i int) storage.Session {
					sess := newSession(users[i%len(users)], now.Add(-time.Hour))
					sess.IdleExpiresAt = now.Add(-time.Minute)
					return sess
				})
				b.StartTimer()
				n, err := s.DeleteExpiredSessions(ctx, now)
				if err != nil || n != expired {
					b.Fatalf("DeleteExpiredSessions = %d, %v; want %d", n, err, expired)
				}
			}
		})
	}
}

// createSessions creates n sessions from 50 goroutines, so they share commits.
func createSessions(tb testing.TB, s storage.Store, n int, mk func(int) storage.Session) {
	tb.Helper()
	var wg sync.WaitGroup
	for w := range 50 {
		wg.Go(func() {
			for i := w; i < n; i += 50 {
				if err := s.CreateSession(context.Background(), mk(i)); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
