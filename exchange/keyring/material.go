package keyring

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/authex/authex/envelope"
	"github.com/authex/authex/storage"
)

// Key material at rest. Every signing key and refresh MAC secret the store
// holds is sealed (envelope) with the key-encryption key, which never
// enters the store, so a backup, an export or a stolen database yields no
// key. Each record's identity is its additional data: a sealed key moved
// under another kid, or a secret under another name, does not open.

// Errors Reload (and so exchange.New) returns when the stored key material
// cannot be opened. They name no key and no secret.
var (
	ErrWrongKEK = errors.New("the stored key material was sealed with another key-encryption key: " +
		"configure that key (secrets.kek or secrets.kek_file), or list it in secrets.previous_keks to reseal under the new one")
	ErrKeyMaterialAltered = errors.New("stored key material does not authenticate under the key-encryption key (altered, truncated or moved between records)")
	ErrNoKEK              = errors.New("the stored key material is sealed but no key-encryption key is configured (secrets.kek or secrets.kek_file)")
)

func signingKeyAAD(kid string) string { return "signing-key:" + kid }
func secretAAD(name string) string    { return "secret:" + name }

// seal seals plain for the record aad names; without a sealer (tests) the
// record stays plaintext.
func (k *Ring) seal(aad string, plain []byte) ([]byte, error) {
	if k.sealer == nil {
		return plain, nil
	}
	return k.sealer.Seal(aad, plain)
}

// open returns the plaintext of a stored record: a sealed one opened, a
// legacy plaintext one as it is (SealKeyMaterial seals it at start).
func (k *Ring) open(aad string, rec []byte) ([]byte, error) {
	return openRecord(k.sealer, aad, rec)
}

func openRecord(s *envelope.Sealer, aad string, rec []byte) ([]byte, error) {
	if !envelope.IsSealed(rec) {
		return rec, nil
	}
	if s == nil {
		return nil, ErrNoKEK
	}
	plain, err := s.Open(aad, rec)
	switch {
	case errors.Is(err, envelope.ErrUnknownKEK):
		return nil, ErrWrongKEK
	case err != nil:
		return nil, ErrKeyMaterialAltered
	}
	return plain, nil
}

// openKey opens and parses a stored signing key.
func (k *Ring) openKey(rec storage.SigningKey) (*signingKey, error) {
	der, err := k.open(signingKeyAAD(rec.ID), rec.PrivateKey)
	if err != nil {
		return nil, err
	}
	rec.PrivateKey = der
	sk, err := parseSigningKey(rec)
	if err != nil {
		return nil, err
	}
	sk.record.PrivateKey = nil
	return sk, nil
}

// SealKeyMaterial seals, in place, every signing key and refresh MAC
// secret that is plaintext (written before a KEK was configured) or sealed
// with a previous KEK, and returns how many it rewrote. Each rewrite is a
// compare-and-swap, so instances starting together on one store (or a
// restart half way) do no harm: a record another instance sealed first is
// left as it is. It fails, writing nothing more, on a record no configured
// KEK opens.
func SealKeyMaterial(ctx context.Context, store storage.Store, s *envelope.Sealer) (int, error) {
	km := store
	reseal := func(aad string, rec []byte) ([]byte, bool, error) {
		if s.Current(rec) {
			return nil, false, nil
		}
		plain, err := openRecord(s, aad, rec)
		if err != nil {
			return nil, false, err
		}
		sealed, err := s.Seal(aad, plain)
		return sealed, err == nil, err
	}
	n := 0
	keys, err := store.ListSigningKeys(ctx)
	if err != nil {
		return n, err
	}
	for _, rec := range keys {
		sealed, ok, err := reseal(signingKeyAAD(rec.ID), rec.PrivateKey)
		if err != nil {
			return n, err
		}
		if !ok {
			continue
		}
		switch err := km.SwapSigningKeyMaterial(ctx, rec.ID, rec.PrivateKey, sealed); {
		case err == nil:
			n++
		case !errors.Is(err, storage.ErrStale) && !errors.Is(err, storage.ErrNotFound):
			return n, err
		}
	}
	secrets, err := km.ListSecrets(ctx)
	if err != nil {
		return n, err
	}
	for _, sec := range secrets {
		if !IsMACSecretName(sec.Name) {
			continue
		}
		sealed, ok, err := reseal(secretAAD(sec.Name), sec.Value)
		if err != nil {
			return n, err
		}
		if !ok {
			continue
		}
		switch err := km.SwapSecret(ctx, sec.Name, sec.Value, sealed); {
		case err == nil:
			n++
		case !errors.Is(err, storage.ErrStale) && !errors.Is(err, storage.ErrNotFound):
			return n, err
		}
	}
	return n, nil
}

// thumbprint is the RFC 7638 JWK thumbprint of a public key (SHA-256,
// base64url): the kid of every key made since, so the same public key
// always has the same kid, derived from nothing secret.
func thumbprint(pub crypto.PublicKey) (string, error) {
	if err := supportedPublicKey(pub); err != nil {
		return "", err
	}
	sum, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// PEMKey is a signing key read from a PEM file (tokens.signing_key_files).
type PEMKey struct {
	Kid       string // RFC 7638 thumbprint of the public key
	Algorithm string // ES256 (P-256), EdDSA (Ed25519) or RS256 (RSA, 2048 bits or more)
	signer    crypto.Signer
}

// ParsePEMKey reads one private key from PEM: PKCS#8 ("PRIVATE KEY"), SEC
// 1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY"). Errors never quote
// the key.
func ParsePEMKey(data []byte) (PEMKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return PEMKey{}, errors.New("no PEM block found")
	}
	if strings.TrimSpace(string(rest)) != "" {
		if next, _ := pem.Decode(rest); next != nil {
			return PEMKey{}, errors.New("more than one PEM block: put one key in each file")
		}
	}
	var priv any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		priv, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		priv, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return PEMKey{}, fmt.Errorf("PEM block %q is not a private key (want PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)", block.Type)
	}
	if err != nil {
		return PEMKey{}, errors.New("the PEM block does not hold a valid private key")
	}
	k := PEMKey{}
	switch p := priv.(type) {
	case *ecdsa.PrivateKey:
		if p.Curve != elliptic.P256() {
			return PEMKey{}, errors.New("only P-256 EC keys are supported (ES256)")
		}
		k.Algorithm, k.signer = AlgES256, p
	case ed25519.PrivateKey:
		k.Algorithm, k.signer = AlgEdDSA, p
	case *rsa.PrivateKey:
		if p.N.BitLen() < 2048 {
			return PEMKey{}, fmt.Errorf("RSA key of %d bits: at least 2048 are needed", p.N.BitLen())
		}
		k.Algorithm, k.signer = AlgRS256, p
	default:
		return PEMKey{}, fmt.Errorf("unsupported key type %T", priv)
	}
	if k.Kid, err = thumbprint(k.signer.Public()); err != nil {
		return PEMKey{}, err
	}
	return k, nil
}

func (p PEMKey) signingKey() *signingKey {
	sk := &signingKey{record: storage.SigningKey{ID: p.Kid, Algorithm: p.Algorithm}, signer: p.signer}
	switch p.Algorithm {
	case AlgES256:
		sk.method = deterministicES256{}
	case AlgEdDSA:
		sk.method = jwt.SigningMethodEdDSA
	default:
		sk.method = jwt.SigningMethodRS256
	}
	return sk
}
