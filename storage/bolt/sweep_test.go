package bolt_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
)

func checkSweepIndex(t *testing.T, s *bolt.Store, after string) {
	t.Helper()
	if err := bolt.CheckSweepIndex(s); err != nil {
		t.Fatalf("after %s: %v", after, err)
	}
}

func mustCreateSession(t *testing.T, s storage.Store, sess storage.Session) storage.Session {
	t.Helper()
	if err := s.CreateSession(context.Background(), sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return sess
}

func sessionGone(t *testing.T, s storage.Store, id string) bool {
	t.Helper()
	_, err := s.GetSession(context.Background(), id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetSession(%s): %v", id, err)
	}
	return err != nil
}

// TestSweepIndexFollowsSessionWrites checks session_sweep against the
// sessions bucket after every kind of session write.
func TestSweepIndexFollowsSessionWrites(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "authex.db"), bolt.Options{NoSync: true, SweepInterval: -1})
	now := time.Now().UTC()
	u1, _ := mustCreateUser(t, s, now)
	u2, _ := mustCreateUser(t, s, now)

	rotated := mustCreateSession(t, s, newSession(u1, now))
	revoked := mustCreateSession(t, s, newSession(u1, now))
	cascade := mustCreateSession(t, s, newSession(u1, now))
	capped := newSession(u2, now) // ExpiresAt comes first: rotating moves no entry
	capped.ExpiresAt = now.Add(time.Hour)
	capped = mustCreateSession(t, s, capped)
	zero := newSession(u2, now) // zero limits: due at once, and the key must encode year 1
	zero.IdleExpiresAt, zero.ExpiresAt = time.Time{}, time.Time{}
	zero = mustCreateSession(t, s, zero)
	checkSweepIndex(t, s, "CreateSession")

	for _, sess := range []*storage.Session{&rotated, &capped} {
		got, err := s.RotateSession(ctx, sess.ID, sess.Generation, now.Add(time.Minute), now.Add(20*24*time.Hour))
		if err != nil {
			t.Fatalf("RotateSession: %v", err)
		}
		*sess = got
	}
	checkSweepIndex(t, s, "RotateSession")
	if _, err := s.RotateSession(ctx, rotated.ID, rotated.Generation-1, now.Add(time.Minute), now.Add(30*24*time.Hour)); !errors.Is(err, storage.ErrStale) {
		t.Fatalf("stale RotateSession: err = %v, want ErrStale", err)
	}
	checkSweepIndex(t, s, "a stale RotateSession")

	if err := s.RevokeSession(ctx, revoked.ID, now.Add(2*time.Minute), "logout"); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	if err := s.RevokeSession(ctx, revoked.ID, now.Add(3*time.Minute), "again"); err != nil {
		t.Fatalf("second RevokeSession: %v", err)
	}
	checkSweepIndex(t, s, "RevokeSession")

	if n, err := s.RevokeUserSessions(ctx, u1.ID, rotated.ID, now.Add(4*time.Minute), "password"); err != nil || n != 1 {
		t.Fatalf("RevokeUserSessions = %d, %v; want 1 (cascade)", n, err)
	}
	checkSweepIndex(t, s, "RevokeUserSessions")

	// Revocations count from their time: before it, nothing of u1 is due.
	if n, err := s.DeleteExpiredSessions(ctx, now.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredSessions before the revocations = %d, %v; want 1 (the zero session)", n, err)
	}
	checkSweepIndex(t, s, "a sweep")
	if n, err := s.DeleteExpiredSessions(ctx, now.Add(4*time.Minute)); err != nil || n != 2 {
		t.Fatalf("DeleteExpiredSessions after the revocations = %d, %v; want 2", n, err)
	}
	checkSweepIndex(t, s, "a second sweep")
	for _, sess := range []storage.Session{zero, revoked, cascade} {
		if !sessionGone(t, s, sess.ID) {
			t.Errorf("session %s survived the sweep", sess.ID)
		}
	}
	for _, sess := range []storage.Session{rotated, capped} {
		if sessionGone(t, s, sess.ID) {
			t.Errorf("live session %s was swept", sess.ID)
		}
	}

	// capped's ExpiresAt (an hour) is its due time, not its later idle limit.
	if n, err := s.DeleteExpiredSessions(ctx, now.Add(time.Hour)); err != nil || n != 1 || !sessionGone(t, s, capped.ID) {
		t.Fatalf("DeleteExpiredSessions at capped's ExpiresAt = %d, %v; want 1 (capped)", n, err)
	}
	checkSweepIndex(t, s, "a sweep at ExpiresAt")

	mustCreateSession(t, s, newSession(u2, now))
	if err := s.DeleteUser(ctx, u2.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	checkSweepIndex(t, s, "DeleteUser")
	if err := s.DeleteUser(ctx, u1.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	checkSweepIndex(t, s, "DeleteUser")
}

// TestSweepDeletesMoreThanAChunk crosses the sweep's transaction size.
func TestSweepDeletesMoreThanAChunk(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "authex.db"), bolt.Options{NoSync: true, SweepInterval: -1})
	now := time.Now()
	u, _ := mustCreateUser(t, s, now)
	const expired, live = 2500, 10
	createSessions(t, s, expired, func(int) storage.Session {
		sess := newSession(u, now.Add(-time.Hour))
		sess.IdleExpiresAt = now
		return sess
	})
	createSessions(t, s, live, func(int) storage.Session { return newSession(u, now) })
	if n, err := s.DeleteExpiredSessions(ctx, now); err != nil || n != expired {
		t.Fatalf("DeleteExpiredSessions = %d, %v; want %d", n, err, expired)
	}
	if got, err := s.ListSessions(ctx, u.ID); err != nil || len(got) != live {
		t.Fatalf("ListSessions after the sweep = %d sessions, %v; want %d", len(got), err, live)
	}
	checkSweepIndex(t, s, "a sweep of three chunks")
	if n, err := s.DeleteExpiredSessions(ctx, now); err != nil || n != 0 {
		t.Fatalf("second DeleteExpiredSessions = %d, %v; want 0", n, err)
	}
}

// rawUpdate runs fn on the closed file at path with bbolt itself.
func rawUpdate(t *testing.T, path string, fn func(*bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt.Open: %v", err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatalf("raw update: %v", err)
	}
}

// TestOpenMigratesVersion1 opens a schema version 1 file (one without
// session_sweep, which is all version 2 changed), and sweeps it.
func TestOpenMigratesVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "authex.db")
	s, err := bolt.Open(path, bolt.Options{NoSync: true, SweepInterval: -1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	now := time.Now().UTC()
	u, _ := mustCreateUser(t, s, now)
	live := mustCreateSession(t, s, newSession(u, now))
	expired := newSession(u, now.Add(-time.Hour))
	expired.IdleExpiresAt = now.Add(-time.Minute)
	expired = mustCreateSession(t, s, expired)
	revoked := mustCreateSession(t, s, newSession(u, now))
	if err := s.RevokeSession(ctx, revoked.ID, now.Add(-time.Second), "logout"); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket([]byte("session_sweep")); err != nil {
			return err
		}
		return tx.Bucket([]byte("meta")).Put([]byte("version"), []byte{0, 0, 0, 0, 0, 0, 0, 1})
	})
	if v := readVersion(t, path); v != 1 {
		t.Fatalf("crafted file at schema version %d, want 1", v)
	}

	s = open(t, path, bolt.Options{NoSync: true, SweepInterval: -1})
	checkSweepIndex(t, s, "the migration")
	if n, err := s.DeleteExpiredSessions(ctx, now); err != nil || n != 2 {
		t.Fatalf("DeleteExpiredSessions after the migration = %d, %v; want 2", n, err)
	}
	if !sessionGone(t, s, expired.ID) || !sessionGone(t, s, revoked.ID) || sessionGone(t, s, live.ID) {
		t.Errorf("the sweep after the migration kept or removed the wrong sessions")
	}
	checkSweepIndex(t, s, "a sweep of the migrated file")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if v := readVersion(t, path); v != bolt.SchemaVersion {
		t.Errorf("schema version after the migrations = %d, want %d", v, bolt.SchemaVersion)
	}
}

// TestSweepRepairsStaleEntries: an entry that does not match its session
// (none of the writes leaves one) neither deletes a live session nor stays.
func TestSweepRepairsStaleEntries(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "authex.db")
	s, err := bolt.Open(path, bolt.Options{NoSync: true, SweepInterval: -1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	now := time.Now().UTC()
	u, _ := mustCreateUser(t, s, now)
	live := mustCreateSession(t, s, newSession(u, now))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("session_sweep"))
		if err := b.Put(append(make([]byte, 12), live.ID...), nil); err != nil { // due long ago
			return err
		}
		return b.Put(append(make([]byte, 12), "no-such-session"...), nil)
	})

	s = open(t, path, bolt.Options{NoSync: true, SweepInterval: -1})
	if bolt.CheckSweepIndex(s) == nil {
		t.Fatal("CheckSweepIndex found nothing wrong with two stale entries")
	}
	if n, err := s.DeleteExpiredSessions(ctx, now); err != nil || n != 0 {
		t.Fatalf("DeleteExpiredSessions = %d, %v; want 0", n, err)
	}
	if sessionGone(t, s, live.ID) {
		t.Error("a stale entry got a live session swept")
	}
	checkSweepIndex(t, s, "a sweep over stale entries")
}
