package keyring

import (
	"context"
	"errors"
	"time"

	"github.com/authex/authex/storage"
)

// Rotate makes a new signing key that is published in the JWKS at once and
// signs from now+publishDelay. Every key that has not been retired yet is
// retired at that instant (it keeps signing until then, so signing never
// stops) and leaves the JWKS a duration retain after that, when every token it signed has
// expired. No session is touched: nobody is signed out.
func (k *Ring) Rotate(ctx context.Context, publishDelay, retain time.Duration) (storage.SigningKey, error) {
	prev, err := k.store.ListSigningKeys(ctx)
	if err != nil {
		return storage.SigningKey{}, err
	}
	rec, err := k.Create(ctx, publishDelay)
	if err != nil {
		return storage.SigningKey{}, err
	}
	for _, old := range prev {
		if !old.RetiredAt.IsZero() || Revoked(old) {
			continue
		}
		if err := k.Retire(ctx, old, rec.NotBefore, retain); err != nil {
			return rec, err
		}
	}
	return rec, k.Reload(ctx)
}

// Retire stores that rec stops signing at and leaves the JWKS retain
// later. A key deleted meanwhile needs no retiring.
func (k *Ring) Retire(ctx context.Context, rec storage.SigningKey, at time.Time, retain time.Duration) error {
	rec.RetiredAt = at
	rec.ExpiresAt = at.Add(retain)
	if err := k.store.UpdateSigningKey(ctx, rec); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return nil
}
