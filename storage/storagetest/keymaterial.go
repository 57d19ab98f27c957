package storagetest

import (
	"sync"
	"testing"
	"time"

	"github.com/authex/authex/storage"
)

// testKeyMaterial: the Store swaps key material in place with a
// compare-and-swap (two instances sealing one legacy record at once: one
// wins, the other sees ErrStale), keeps RevokedAt, and drops secrets.
func testKeyMaterial(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	km := s
	k := storage.SigningKey{ID: "kid-m", Algorithm: "ES256", PrivateKey: []byte{0x30, 1, 2}, CreatedAt: t0, NotBefore: t0}
	if err := s.CreateSigningKey(ctx, k); err != nil {
		t.Fatalf("CreateSigningKey: %v", err)
	}
	wantErr(t, "SwapSigningKeyMaterial from a wrong old value", km.SwapSigningKeyMaterial(ctx, k.ID, []byte{9}, []byte("sealed")), storage.ErrStale)
	wantErr(t, "SwapSigningKeyMaterial of a missing key", km.SwapSigningKeyMaterial(ctx, "nope", k.PrivateKey, []byte("sealed")), storage.ErrNotFound)

	// Concurrent swaps from the same old value: exactly one wins.
	var wg sync.WaitGroup
	results := make([]error, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = km.SwapSigningKeyMaterial(ctx, k.ID, k.PrivateKey, []byte{'s', byte('0' + i)})
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range results {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("swaps %d and %d both won", won, i)
		case err == nil:
			won = i
		default:
			wantErr(t, "a losing swap", err, storage.ErrStale)
		}
	}
	if won < 0 {
		t.Fatal("no swap won")
	}
	k.PrivateKey = []byte{'s', byte('0' + won)}
	k.RevokedAt = t0.Add(time.Minute).In(zoneWest)
	k.ExpiresAt = t0.Add(time.Minute)
	if err := s.UpdateSigningKey(ctx, k); err != nil {
		t.Fatalf("UpdateSigningKey with RevokedAt: %v", err)
	}
	got, err := s.ListSigningKeys(ctx)
	if err != nil {
		t.Fatalf("ListSigningKeys: %v", err)
	}
	check(t, "the swapped, revoked key", got, []storage.SigningKey{k})

	if _, err := s.EnsureSecret(ctx, "refresh-mac", []byte("plain")); err != nil {
		t.Fatalf("EnsureSecret: %v", err)
	}
	wantErr(t, "SwapSecret from a wrong old value", km.SwapSecret(ctx, "refresh-mac", []byte("other"), []byte("sealed")), storage.ErrStale)
	wantErr(t, "SwapSecret of a missing secret", km.SwapSecret(ctx, "nope", []byte("plain"), []byte("sealed")), storage.ErrNotFound)
	if err := km.SwapSecret(ctx, "refresh-mac", []byte("plain"), []byte("sealed")); err != nil {
		t.Fatalf("SwapSecret: %v", err)
	}
	secrets, err := km.ListSecrets(ctx)
	if err != nil {
		t.Fatalf("ListSecrets: %v", err)
	}
	check(t, "the swapped secret", secrets, []storage.Secret{{Name: "refresh-mac", Value: []byte("sealed")}})
	if err := km.DeleteSecret(ctx, "refresh-mac"); err != nil {
		t.Fatalf("DeleteSecret: %v", err)
	}
	wantErr(t, "DeleteSecret again", km.DeleteSecret(ctx, "refresh-mac"), storage.ErrNotFound)
	if v, err := s.EnsureSecret(ctx, "refresh-mac", []byte("new")); err != nil || string(v) != "new" {
		t.Fatalf("EnsureSecret after DeleteSecret = %q, %v; want the new value", v, err)
	}
}
