package exchange

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/authex/authex/providers"
	"github.com/authex/authex/storage"
)

// TestAnonymousOnBothBackends: creation (rate limited per address, the
// budget in the database on PostgreSQL), upgrade in place and the sweep,
// on bbolt and PostgreSQL.
func TestAnonymousOnBothBackends(t *testing.T) {
	for _, backend := range bothBackends() {
		t.Run(backend.name, func(t *testing.T) {
			ctx, store := t.Context(), backend.open(t)
			var mu sync.Mutex
			now := time.Now()
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
			svc, err := New(ctx, Config{
				Issuer: "https://authex.example", Audience: []string{"api"}, Algorithm: AlgES256,
				AccessTTL: 15 * time.Minute, RefreshTTL: 14 * 24 * time.Hour, SessionMax: 90 * 24 * time.Hour, ReuseGrace: 10 * time.Second,
			}, store, nil, Options{Now: clock, Anonymous: &AnonymousConfig{PerIP: 3, Window: time.Hour, SweepAfter: 24 * time.Hour}})
			if err != nil {
				t.Fatal(err)
			}
			c := Client{IP: "192.0.2.7"}
			stale, err := svc.CreateAnonymous(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			upgraded, err := svc.CreateAnonymous(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.CreateAnonymous(ctx, c); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.CreateAnonymous(ctx, c); AsError(err).Reason != ReasonRateLimited {
				t.Fatalf("fourth from one address: %v, want rate_limited", err)
			}
			if _, err := svc.CreateAnonymous(ctx, Client{IP: "198.51.100.1"}); err != nil {
				t.Fatalf("another address: %v", err)
			}

			id := providers.Identity{Provider: "google", Issuer: "https://accounts.google.com", Subject: "g-1",
				Email: "ada@example.com", EmailVerified: true}
			if _, err := svc.link(ctx, upgraded.User.ID, id, "credential"); err != nil {
				t.Fatal(err)
			}
			u, err := store.GetUser(ctx, upgraded.User.ID)
			if err != nil || u.Email != "ada@example.com" || !u.EmailVerified {
				t.Fatalf("upgraded user %+v %v", u, err)
			}
			idents, _ := store.ListIdentities(ctx, u.ID)
			if len(idents) != 1 || idents[0].Provider != "google" {
				t.Fatalf("identities %+v", idents)
			}

			advance(25 * time.Hour)
			n, err := svc.SweepAnonymous(ctx)
			if err != nil || n != 3 { // stale, the third, and the other address's; not the upgraded one
				t.Fatalf("swept %d, %v; want 3", n, err)
			}
			if _, err := store.GetUser(ctx, stale.User.ID); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("stale user: %v", err)
			}
			if _, err := store.GetUser(ctx, upgraded.User.ID); err != nil {
				t.Fatalf("upgraded user swept: %v", err)
			}
		})
	}
}
