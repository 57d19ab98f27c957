package exchange_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/storage/bolt"
)

// TestPasswordRehashOnLogin: hashes carry their parameters, so a server
// restarted with new ones still checks old hashes and rehashes each at its
// owner's next login.
func TestPasswordRehashOnLogin(t *testing.T) {
	ctx := context.Background()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "authex.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	service := func(p exchange.Argon2Params) *exchange.Service {
		t.Helper()
		svc, err := exchange.New(ctx, exchange.Config{
			Issuer: "https://authex.example", Audience: []string{"api"}, Algorithm: exchange.AlgES256,
			AccessTTL: 15 * time.Minute, RefreshTTL: time.Hour, SessionMax: 2 * time.Hour, ReuseGrace: 10 * time.Second,
		}, store, nil, exchange.Options{Password: &exchange.PasswordConfig{
			Argon2: p, AllowSignup: true, AccountBurst: 5, IPBurst: 5, Window: time.Minute}})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	const pw = "an old but good passphrase"
	old := service(exchange.Argon2Params{Memory: 4096, Iterations: 1, Parallelism: 1})
	reg, err := old.Register(ctx, exchange.RegisterRequest{Email: "re@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	hashOf := func() string {
		u, err := store.GetUser(ctx, reg.User.ID)
		if err != nil {
			t.Fatal(err)
		}
		return u.PasswordHash
	}
	first := hashOf()
	if !strings.HasPrefix(first, "$argon2id$v=19$m=4096,t=1,p=1$") {
		t.Fatalf("hash %q", first)
	}

	// Same parameters: nothing is rewritten.
	if _, err := old.Login(ctx, exchange.LoginRequest{Email: "re@example.com", Password: pw}); err != nil {
		t.Fatal(err)
	}
	if hashOf() != first {
		t.Fatal("a login with unchanged parameters rewrote the hash")
	}

	// New parameters: the old hash still checks, and is replaced.
	updated := service(exchange.Argon2Params{Memory: 8192, Iterations: 2, Parallelism: 2})
	if _, err := updated.Login(ctx, exchange.LoginRequest{Email: "re@example.com", Password: pw}); err != nil {
		t.Fatal(err)
	}
	if h := hashOf(); !strings.HasPrefix(h, "$argon2id$v=19$m=8192,t=2,p=2$") {
		t.Fatalf("not rehashed: %q", h)
	}
	// And the new hash checks; a wrong password still fails.
	if _, err := updated.Login(ctx, exchange.LoginRequest{Email: "re@example.com", Password: pw}); err != nil {
		t.Fatal(err)
	}
	_, err = updated.Login(ctx, exchange.LoginRequest{Email: "re@example.com", Password: pw + "x"})
	if e := exchange.AsError(err); e.Kind != exchange.KindInvalidCredentials || e.Reason != "invalid_credentials" {
		t.Fatalf("wrong password after rehash: %v", err)
	}
}
