package storagetest

import (
	"sync"
	"testing"
	"time"

	"github.com/authex/authex/storage"
)

// testDeleteExpiredSessionsFollowsWrites: a backend may index sessions by
// when the sweep may delete them (both do); that time moves with a rotation
// and a revocation, and the sweep must follow it both ways. It also sweeps
// more sessions than either backend deletes in one transaction (1000).
func testDeleteExpiredSessionsFollowsWrites(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	u, _ := signUp(t, s, t0, "u@example.com", true, "google", "g-u")
	now := t0.Add(day)

	// Due at t0+1h when created, then rotated past now: it stays.
	rotated := newSession(u, t0)
	rotated.IdleExpiresAt = t0.Add(time.Hour)
	// Revoked with the user's other sessions before now: they go.
	revoked1, revoked2 := newSession(u, t0), newSession(u, t0)
	for _, sess := range []storage.Session{rotated, revoked1, revoked2} {
		mustCreateSession(t, s, sess)
	}
	if _, err := s.RotateSession(ctx, rotated.ID, rotated.Generation, t0.Add(30*time.Minute), t0.Add(2*day)); err != nil {
		t.Fatalf("RotateSession: %v", err)
	}
	if n, err := s.RevokeUserSessions(ctx, u.ID, rotated.ID, t0.Add(2*time.Hour), "password"); err != nil || n != 2 {
		t.Fatalf("RevokeUserSessions = %d, %v; want 2", n, err)
	}
	// Revoked at a time after now: it stays until then.
	later := newSession(u, t0)
	mustCreateSession(t, s, later)
	if err := s.RevokeSession(ctx, later.ID, now.Add(time.Hour), "logout"); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}

	const expired = 1100
	createMany(t, s, expired, func() storage.Session {
		sess := newSession(u, t0)
		sess.IdleExpiresAt = now.Add(-time.Minute)
		return sess
	})

	n, err := s.DeleteExpiredSessions(ctx, now)
	if err != nil || n != expired+2 {
		t.Fatalf("DeleteExpiredSessions = %d, %v; want %d", n, err, expired+2)
	}
	for _, sess := range []storage.Session{revoked1, revoked2} {
		_, err := s.GetSession(ctx, sess.ID)
		wantErr(t, "GetSession of a session revoked before now", err, storage.ErrNotFound)
	}
	left := mustListSessions(t, s, u.ID)
	if len(left) != 2 {
		t.Fatalf("ListSessions after the sweep: %d sessions, want 2 (rotated, later)", len(left))
	}
	for _, id := range []string{rotated.ID, later.ID} {
		if _, err := s.GetSession(ctx, id); err != nil {
			t.Errorf("GetSession(%s) after the sweep: %v (rotated past now, or revoked after it)", id, err)
		}
	}

	if n, err := s.DeleteExpiredSessions(ctx, now.Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("DeleteExpiredSessions at the later revocation = %d, %v; want 1", n, err)
	}
	if n, err := s.DeleteExpiredSessions(ctx, t0.Add(2*day)); err != nil || n != 1 {
		t.Errorf("DeleteExpiredSessions at the rotated idle limit = %d, %v; want 1", n, err)
	}
	if left := mustListSessions(t, s, u.ID); len(left) != 0 {
		t.Errorf("ListSessions after the last sweep: %d sessions, want 0", len(left))
	}
}

// createMany creates n sessions from 20 goroutines, so a backend that
// shares commits between callers can.
func createMany(t *testing.T, s storage.Store, n int, mk func() storage.Session) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range 20 {
		wg.Go(func() {
			for i := w; i < n; i += 20 {
				if err := s.CreateSession(t.Context(), mk()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}
