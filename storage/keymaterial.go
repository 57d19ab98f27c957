package storage

import "context"

// KeyMaterial is the capability to rewrite key material in place: sealing
// legacy plaintext records with the key-encryption key, resealing them
// under a new one, and dropping retired refresh MAC secrets. Both bundled
// backends implement it; the exchange refuses a store without it.
type KeyMaterial interface {
	// ListSecrets returns every secret, by name.
	ListSecrets(ctx context.Context) ([]Secret, error)
	// SwapSigningKeyMaterial is a compare-and-swap of a key's PrivateKey:
	// when it is old, it becomes new (nothing else changes). ErrNotFound
	// when the key is absent; ErrStale, writing nothing, when its
	// PrivateKey is not old (another instance swapped it first).
	SwapSigningKeyMaterial(ctx context.Context, id string, old, new []byte) error
	// SwapSecret is the same compare-and-swap for a secret's value.
	// ErrNotFound when absent; ErrStale, writing nothing, when the value is
	// not old.
	SwapSecret(ctx context.Context, name string, old, new []byte) error
	// DeleteSecret removes a secret. ErrNotFound when absent.
	DeleteSecret(ctx context.Context, name string) error
}
