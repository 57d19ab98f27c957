package exchange

import (
	"context"
	"testing"
	"time"

	"github.com/authex/authex/providers"
	"github.com/authex/authex/storage"
)

// TestClaimIsOneTransaction: a takeover of an unverified password account
// that fails at its last step (the verified identity is someone else's by
// then) leaves the account as it was, on both backends: the password, the
// identities and the sessions the earlier steps wiped, unlinked and
// revoked are all back.
func TestClaimIsOneTransaction(t *testing.T) {
	for _, backend := range bothBackends() {
		t.Run(backend.name, func(t *testing.T) {
			ctx, store := t.Context(), backend.open(t)
			svc, err := New(ctx, Config{
				Issuer: "https://authex.example", Audience: []string{"api"}, Algorithm: AlgES256,
				AccessTTL: 15 * time.Minute, RefreshTTL: time.Hour, SessionMax: 2 * time.Hour, ReuseGrace: 10 * time.Second,
			}, store, nil, Options{Password: &PasswordConfig{
				Argon2:      Argon2Params{Memory: 4096, Iterations: 1, Parallelism: 1},
				AllowSignup: true, AccountBurst: 5, IPBurst: 5, Window: time.Minute}})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC().Truncate(time.Second)
			att := storage.User{ID: newID(), Email: "victim@gmail.com", Name: "Not The Victim", Roles: []string{},
				PasswordHash: "$argon2id$v=19$m=4096,t=1,p=1$c2FsdA$aGFzaA", CreatedAt: now, UpdatedAt: now}
			pwIdent := svc.passwordIdentity(att, now)
			if err := store.CreateUser(ctx, att, pwIdent); err != nil {
				t.Fatal(err)
			}
			sess := storage.Session{ID: newID(), UserID: att.ID, Provider: PasswordProvider, ClientID: "web", Generation: 1,
				RotatedAt: now, CreatedAt: now, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour)}
			if err := store.CreateSession(ctx, sess); err != nil {
				t.Fatal(err)
			}
			id := providers.Identity{Provider: "google", Issuer: "https://accounts.google.com", Subject: "victim-google",
				Email: "victim@gmail.com", EmailVerified: true}
			// Someone else holds the verified identity: the claim's last
			// write (AddIdentity) fails after every other step.
			other := storage.User{ID: newID(), Roles: []string{}, CreatedAt: now, UpdatedAt: now}
			if err := store.CreateUser(ctx, other, identityRecord(id, other.ID, now)); err != nil {
				t.Fatal(err)
			}

			if _, ok, err := svc.claimPasswordAccount(ctx, id, identityRecord(id, "", now)); err == nil || ok {
				t.Fatalf("claim = %v, %v; want it to fail at AddIdentity", ok, err)
			}
			got, err := store.GetUser(context.Background(), att.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.PasswordHash != att.PasswordHash || got.EmailVerified {
				t.Errorf("the failed claim left the account changed: hash %q, verified %v", got.PasswordHash, got.EmailVerified)
			}
			if idents, err := store.ListIdentities(ctx, att.ID); err != nil || len(idents) != 1 || idents[0].ID != pwIdent.ID {
				t.Errorf("identities after the failed claim: %+v, %v; want the password identity", idents, err)
			}
			if s, err := store.GetSession(ctx, sess.ID); err != nil || s.Revoked() {
				t.Errorf("session after the failed claim: %+v, %v; want it live", s, err)
			}
		})
	}
}
