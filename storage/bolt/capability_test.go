package bolt_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
)

func TestCountActiveSessionsAndVerifiedBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := bolt.Open(filepath.Join(dir, "a.db"), bolt.Options{NoSync: true, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	u := storage.User{ID: "u1", Email: "a@example.com", CreatedAt: now}
	if err := s.CreateUser(ctx, u, storage.Identity{ID: "i1", UserID: "u1", Issuer: "iss", Subject: "sub", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for i, sess := range []storage.Session{
		{ID: "live1", IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour)},
		{ID: "live2", IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour)},
		{ID: "idle", IdleExpiresAt: now.Add(-time.Second), ExpiresAt: now.Add(time.Hour)},
		{ID: "revoked", IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour), RevokedAt: now, RevokedReason: "logout"},
	} {
		sess.UserID, sess.Generation, sess.CreatedAt, sess.RotatedAt = "u1", uint64(i+1), now, now
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	var c storage.SessionCounter = s
	if n, err := c.CountActiveSessions(ctx, now); err != nil || n != 2 {
		t.Fatalf("active sessions: %d %v, want 2", n, err)
	}

	var buf bytes.Buffer
	var b storage.Backuper = s
	n, err := b.Backup(ctx, &buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("backup: %d bytes, %v (buffer %d)", n, err, buf.Len())
	}
	good := filepath.Join(dir, "good.db")
	if err := os.WriteFile(good, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := bolt.Verify(good); err != nil {
		t.Fatalf("verify a whole backup: %v", err)
	}
	for name, content := range map[string][]byte{
		"truncated.db": buf.Bytes()[:buf.Len()/2],
		"garbage.db":   bytes.Repeat([]byte("x"), 64<<10),
		"empty.db":     {},
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := bolt.Verify(p); err == nil {
			t.Errorf("%s verified", name)
		}
	}
	// A whole bbolt file that is not an authex store.
	otherPath := filepath.Join(dir, "other.db")
	other, err := bbolt.Open(otherPath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	other.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("mine")); return err })
	other.Close()
	if err := bolt.Verify(otherPath); err == nil {
		t.Error("a bbolt file without authex's buckets verified")
	}
	if err := bolt.Verify(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("a missing file verified")
	}
	// The backup opens as a store and holds the sessions.
	restored, err := bolt.Open(good, bolt.Options{NoSync: true, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if list, err := restored.ListSessions(ctx, "u1"); err != nil || len(list) != 4 {
		t.Fatalf("restored sessions: %d %v", len(list), err)
	}
}

// slowWriter stands for a backup client on a slow network.
type slowWriter struct{ calls int }

func (w *slowWriter) Write(p []byte) (int, error) {
	w.calls++
	time.Sleep(20 * time.Millisecond)
	return len(p), nil
}

// TestSlowBackupDoesNotBlockWriters holds a backup's read transaction open
// for a long transfer while the file grows: writes must keep committing
// (bbolt remaps to grow, and a remap waits for readers; see mmap.go), and
// the copy must be the snapshot from the backup's start.
func TestSlowBackupDoesNotBlockWriters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := bolt.Open(filepath.Join(dir, "a.db"), bolt.Options{NoSync: true, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	add := func(i int) {
		t.Helper()
		id := fmt.Sprintf("u%06d", i)
		now := time.Now().UTC()
		// Large names make the file grow past bbolt's default mapping.
		u := storage.User{ID: id, Name: strings.Repeat("n", 2000), CreatedAt: now}
		if err := s.CreateUser(ctx, u, storage.Identity{ID: "i" + id, UserID: id, Issuer: "iss", Subject: id, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	const before = 200
	for i := range before {
		add(i)
	}
	var copyBuf bytes.Buffer
	w := &slowWriter{}
	done := make(chan error, 1)
	go func() {
		_, err := s.Backup(ctx, io.MultiWriter(&copyBuf, w))
		done <- err
	}()
	time.Sleep(5 * time.Millisecond)
	during := 0
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
			add(before + during)
			during++
			if during > 20000 {
				t.Fatal("the backup never finished")
			}
		}
	}
	if during < 50 {
		t.Fatalf("only %d writes committed during a %d-chunk slow backup: writers were blocked", during, w.calls)
	}
	path := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(path, copyBuf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	copyStore, err := bolt.Open(path, bolt.Options{NoSync: true, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer copyStore.Close()
	if n, err := copyStore.CountUsers(ctx); err != nil || n != before {
		t.Fatalf("the copy has %d users (%v), want the %d of the snapshot", n, err, before)
	}
	t.Logf("%d writes committed while a backup streamed in %d slow chunks", during, w.calls)
}
