package keyring

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
)

// openBolt opens a bbolt store in a temporary directory, closed when the
// test ends.
func openBolt(tb testing.TB, opts bolt.Options) *bolt.Store {
	tb.Helper()
	s, err := bolt.Open(filepath.Join(tb.TempDir(), "authex.db"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// newRing is a ring of ES256 keys on store, without PEM keys or sealing.
func newRing(store storage.Store) *Ring {
	return New(Config{Store: store, Algorithm: AlgES256, Now: time.Now})
}

// typAccess is the typ of exchange's access tokens.
const typAccess = "at+jwt"

// Two keyrings on one store stand for two instances.
func sharedStore(t *testing.T) storage.Store {
	t.Helper()
	return openBolt(t, bolt.Options{NoSync: true, SweepInterval: -1})
}

// Keyrings that start together on an empty store end with one key.
func TestKeyringBootstrapOneKey(t *testing.T) {
	store := sharedStore(t)
	const n = 8
	rings := make([]*Ring, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		rings[i] = newRing(store)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = rings[i].Ensure(t.Context())
		}()
	}
	wg.Wait()
	keys, err := store.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("%d keys after %d simultaneous starts, want 1", len(keys), n)
	}
	for i, r := range rings {
		if errs[i] != nil {
			t.Fatalf("ensure %d: %v", i, errs[i])
		}
		sk, err := r.signer()
		if err != nil || sk.record.ID != keys[0].ID {
			t.Fatalf("keyring %d signs with %v (%v), want %s", i, sk, err, keys[0].ID)
		}
		if string(r.JWKS()) != string(rings[0].JWKS()) {
			t.Fatalf("JWKS %d differs from JWKS 0", i)
		}
	}
}

// A key made by one instance is found by another when a token names it,
// and by the periodic reload otherwise.
func TestKeyringPicksUpAnotherInstancesKey(t *testing.T) {
	store := sharedStore(t)
	a, b := newRing(store), newRing(store)
	if err := a.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	fresh, err := a.Create(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.lookup(fresh.ID, typAccess); ok {
		t.Fatal("b knows the new key before any reload")
	}
	token, err := a.Sign(typAccess, jwt.RegisteredClaims{Subject: "u", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.Parse(token, b.Keyfunc); err != nil {
		t.Fatalf("b verifying a token signed with a's new key: %v", err)
	}
	if _, ok := b.lookup(fresh.ID, typAccess); !ok {
		t.Fatal("b did not load the new key")
	}

	// Tokens with unknown kids (anyone can send them) cause at most one
	// reload per cooldown.
	counting := &countingStore{Store: store}
	c := newRing(counting)
	if err := c.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := counting.lists.Load()
	forged := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{})
	forged.Header["kid"] = "nobody"
	raw, _ := forged.SignedString([]byte("x"))
	for range 20 {
		if _, err := jwt.Parse(raw, c.Keyfunc); err == nil {
			t.Fatal("a token with an unknown kid verified")
		}
	}
	if n := counting.lists.Load() - before; n != 1 {
		t.Fatalf("20 unknown kids within the cooldown caused %d reloads, want 1", n)
	}

	// Watch picks up a third key without any token naming it.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go b.Watch(ctx, 20*time.Millisecond, nil)
	third, err := a.Create(t.Context(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := b.lookup(third.ID, typAccess); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Watch did not publish a key created by another instance")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Published, but it does not sign before its NotBefore.
	if sk, _ := b.signer(); sk.record.ID == third.ID {
		t.Fatal("a key signs before its NotBefore")
	}
}

type countingStore struct {
	storage.Store
	lists atomic.Int64
}

func (c *countingStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	c.lists.Add(1)
	return c.Store.ListSigningKeys(ctx)
}

// Unwrap lets storage.As reach the backend's capabilities (KeyMaterial).
func (c *countingStore) Unwrap() storage.Store { return c.Store }
