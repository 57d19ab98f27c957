package postgres_test

import (
	"testing"
	"time"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/postgres"
)

func TestCountActiveSessions(t *testing.T) {
	s := open(t, postgres.Options{})
	ctx := t.Context()
	now := time.Now().UTC()
	if err := s.CreateUser(ctx, storage.User{ID: "u1", CreatedAt: now},
		storage.Identity{ID: "i1", UserID: "u1", Issuer: "iss", Subject: "sub", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for _, sess := range []storage.Session{
		{ID: "live1", IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour)},
		{ID: "live2", IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour)},
		{ID: "idle", IdleExpiresAt: now.Add(-time.Second), ExpiresAt: now.Add(time.Hour)},
		{ID: "absolute", IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(-time.Second)},
		{ID: "revoked", IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour), RevokedAt: now, RevokedReason: "logout"},
	} {
		sess.UserID, sess.Generation, sess.CreatedAt, sess.RotatedAt = "u1", 1, now, now
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	var c storage.SessionCounter = s
	if n, err := c.CountActiveSessions(ctx, now); err != nil || n != 2 {
		t.Fatalf("active sessions: %d %v, want 2", n, err)
	}
	if _, ok := storage.As[storage.Backuper](s); ok {
		t.Fatal("the PostgreSQL store claims a hot backup")
	}
}
