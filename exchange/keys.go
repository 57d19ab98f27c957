package exchange

import (
	"context"

	"github.com/authex/authex/envelope"
	"github.com/authex/authex/exchange/keyring"
	"github.com/authex/authex/storage"
)

// Our signing keys and refresh MAC secrets live in package keyring. These
// names keep exchange's API (used by web and cmd/authex) as it was.

// Supported algorithms for our own tokens.
const (
	AlgES256 = keyring.AlgES256
	AlgEdDSA = keyring.AlgEdDSA
	AlgRS256 = keyring.AlgRS256
)

// ValidAlgorithm reports whether alg can sign our tokens.
func ValidAlgorithm(alg string) bool { return keyring.ValidAlgorithm(alg) }

// Keyring holds our signing keys and refresh MAC secrets (keyring.Ring).
type Keyring = keyring.Ring

// KeyReloadInterval is how often key maintenance runs (serve.go).
const KeyReloadInterval = keyring.ReloadInterval

// KeyPollInterval is how often Keyring.Watch rereads the keys and MAC
// secrets by default.
const KeyPollInterval = keyring.PollInterval

// Errors New returns when the stored key material cannot be opened. They
// name no key and no secret.
var (
	ErrWrongKEK           = keyring.ErrWrongKEK
	ErrKeyMaterialAltered = keyring.ErrKeyMaterialAltered
	ErrNoKEK              = keyring.ErrNoKEK
)

// SealKeyMaterial seals every signing key and refresh MAC secret that is
// plaintext or sealed with a previous KEK (keyring.SealKeyMaterial).
func SealKeyMaterial(ctx context.Context, store storage.Store, s *envelope.Sealer) (int, error) {
	return keyring.SealKeyMaterial(ctx, store, s)
}

// PEMKey is a signing key read from a PEM file (tokens.signing_key_files).
type PEMKey = keyring.PEMKey

// ParsePEMKey reads one private key from PEM (keyring.ParsePEMKey).
func ParsePEMKey(data []byte) (PEMKey, error) { return keyring.ParsePEMKey(data) }
