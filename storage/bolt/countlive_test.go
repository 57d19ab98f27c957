package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
)

// BenchmarkCountLive counts the live sessions of a user with 50 (a user
// signed in daily from a few devices), as every sign-in does: through the
// liveness-only decode, against decoding each whole session as before.
func BenchmarkCountLive(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "authex.db"), Options{NoSync: true, SweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx, now := context.Background(), time.Now().UTC()
	u := storage.User{ID: "u-count", Email: "count@example.com", Roles: []string{}, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateUser(ctx, u, storage.Identity{ID: "i-count", UserID: u.ID, Provider: "p", Issuer: "https://p.example", Subject: "1", CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	for i := range 50 {
		sess := storage.Session{ID: fmt.Sprintf("s-%02d", i), UserID: u.ID, Provider: "p", ClientID: "web", Generation: 1,
			RotatedAt: now, CreatedAt: now, IdleExpiresAt: now.Add(14 * 24 * time.Hour), ExpiresAt: now.Add(90 * 24 * time.Hour),
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36", IP: "203.0.113.7"}
		if i%5 == 0 {
			sess.RevokedAt, sess.RevokedReason = now, "logout"
		}
		if err := s.CreateSession(ctx, sess); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name  string
		count func(*bolt.Tx) (int, error)
	}{
		{"limits", func(tx *bolt.Tx) (int, error) { return countLive(tx, u.ID, now) }},
		{"whole", func(tx *bolt.Tx) (int, error) {
			n := 0
			for _, id := range childIDs(tx.Bucket(bucketKeyUserSessions), u.ID) {
				sess, err := getSession(tx, id)
				if err != nil {
					return 0, err
				}
				if live(sess, now) {
					n++
				}
			}
			return n, nil
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				err := s.view(func(tx *bolt.Tx) error {
					n, err := bc.count(tx)
					if err == nil && n != 40 {
						err = fmt.Errorf("%d live, want 40", n)
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
