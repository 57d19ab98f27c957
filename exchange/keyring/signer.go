package keyring

import (
	"context"
	"log/slog"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authex/authex/storage"
)

// Signer is what the exchange needs to mint and check its own tokens, as
// Dex's signer.Signer: sign, resolve the key that verifies a token, publish
// the keys, rotate, and stay in step with the store. Ring implements it;
// the refresh MAC secrets (MACs) and the administration of single keys
// (Create, Retire, Files) are the Ring's own.
type Signer interface {
	// Sign encodes claims as a JWT with the given typ header, signed by
	// the key that signs now; the same claims give the same token.
	Sign(typ string, claims jwt.Claims) (string, error)
	// Keyfunc resolves a token's kid for golang-jwt's parser.
	Keyfunc(t *jwt.Token) (any, error)
	// JWKS is the public key set document (application/jwk-set+json).
	JWKS() []byte
	// Rotate makes a new key that is published at once and signs from
	// now+publishDelay, retiring the others then, published retain longer.
	Rotate(ctx context.Context, publishDelay, retain time.Duration) (storage.SigningKey, error)
	// Reload rereads the keys from the store; Watch does so every interval.
	Reload(ctx context.Context) error
	Watch(ctx context.Context, interval time.Duration, log *slog.Logger)
}

var _ Signer = (*Ring)(nil)
