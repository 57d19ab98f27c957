// Package envelope seals key material at rest: each record is encrypted
// with its own random data key under AES-256-GCM, and the data key is
// wrapped by the key-encryption key (KEK), which never enters the store.
// The record's identity (a kid, a secret's name) is bound in as additional
// data, so a sealed record moved under another identity does not open.
//
// A sealed record is
//
//	"axs1" | kek id (8) | wrap nonce (12) | wrapped data key (32+16) | nonce (12) | ciphertext+tag
//
// The "axs1" prefix tells it from a legacy plaintext record (PKCS#8 DER
// starts with 0x30, a legacy MAC secret is 32 bytes, shorter than any
// sealed record). The kek id is an HMAC of the KEK, so a record names the
// KEK that opens it without revealing anything about it.
//
// This package must never log or return key material in an error.
package envelope

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Magic starts every sealed record: the format and its version.
const Magic = "axs1"

// KEKSize is the size of a key-encryption key in bytes.
const KEKSize = 32

const (
	idSize      = 8
	nonceSize   = 12
	tagSize     = 16
	dekSize     = 32
	wrappedSize = dekSize + tagSize
	// Overhead is how many bytes sealing adds to a plaintext.
	Overhead = len(Magic) + idSize + nonceSize + wrappedSize + nonceSize + tagSize
)

var (
	// ErrNotSealed: the record is legacy plaintext, not a sealed record.
	ErrNotSealed = errors.New("envelope: record is not sealed")
	// ErrUnknownKEK: the record was sealed with a KEK this sealer does not hold.
	ErrUnknownKEK = errors.New("envelope: record was sealed with a different key-encryption key")
	// ErrAuth: the record does not open (altered, truncated, or moved to
	// another identity).
	ErrAuth = errors.New("envelope: record does not authenticate")
)

// ParseKEK decodes a KEK written as base64 (standard or URL alphabet,
// padded or not) and checks that it is KEKSize bytes.
func ParseKEK(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KEKSize {
				return nil, fmt.Errorf("a key-encryption key is %d bytes, base64-encoded; this one decodes to %d bytes", KEKSize, len(b))
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("a key-encryption key is %d random bytes in base64 (e.g. `openssl rand -base64 32`); this one is not base64", KEKSize)
}

// NewKEK returns a fresh random KEK, base64-encoded.
func NewKEK() (string, error) {
	b := make([]byte, KEKSize)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

type kek struct {
	id   [idSize]byte
	aead cipher.AEAD
}

func newKEK(raw []byte) (kek, error) {
	if len(raw) != KEKSize {
		return kek{}, fmt.Errorf("envelope: a key-encryption key must be %d bytes, not %d", KEKSize, len(raw))
	}
	aead, err := newAEAD(raw)
	if err != nil {
		return kek{}, err
	}
	var k kek
	m := hmac.New(sha256.New, raw)
	m.Write([]byte("authex envelope kek id"))
	copy(k.id[:], m.Sum(nil))
	k.aead = aead
	return k, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Sealer seals with the current KEK and opens records sealed with it or
// with any previous one (KEK rotation: open with the old, seal with the new).
type Sealer struct {
	current  kek
	previous []kek
}

// New returns a Sealer for the current KEK and any previous ones (raw
// bytes, KEKSize each).
func New(current []byte, previous ...[]byte) (*Sealer, error) {
	cur, err := newKEK(current)
	if err != nil {
		return nil, err
	}
	s := &Sealer{current: cur}
	for _, p := range previous {
		k, err := newKEK(p)
		if err != nil {
			return nil, err
		}
		if k.id != cur.id {
			s.previous = append(s.previous, k)
		}
	}
	return s, nil
}

// KEKID names the current KEK (hex of its id), for logs: it reveals nothing
// of the key.
func (s *Sealer) KEKID() string { return hex.EncodeToString(s.current.id[:]) }

// IsSealed reports whether rec has the form of a sealed record (it may
// still fail to open).
func IsSealed(rec []byte) bool {
	return len(rec) >= Overhead && bytes.HasPrefix(rec, []byte(Magic))
}

// Seal encrypts plaintext for the record named aad.
func (s *Sealer) Seal(aad string, plaintext []byte) ([]byte, error) {
	dek := make([]byte, dekSize)
	nonces := make([]byte, 2*nonceSize)
	if _, err := rand.Read(dek); err != nil {
		return nil, err
	}
	if _, err := rand.Read(nonces); err != nil {
		return nil, err
	}
	k := s.current
	out := make([]byte, 0, Overhead+len(plaintext))
	out = append(out, Magic...)
	out = append(out, k.id[:]...)
	out = append(out, nonces[:nonceSize]...)
	out = k.aead.Seal(out, nonces[:nonceSize], dek, additional(k.id, "dek", aad))
	out = append(out, nonces[nonceSize:]...)
	data, err := newAEAD(dek)
	if err != nil {
		return nil, err
	}
	return data.Seal(out, nonces[nonceSize:], plaintext, additional(k.id, "data", aad)), nil
}

// parsed is a sealed record split into its parts.
type parsed struct {
	id         [idSize]byte
	wrapNonce  []byte
	wrapped    []byte
	nonce      []byte
	ciphertext []byte
}

// parse splits rec; ErrNotSealed when it lacks the prefix or is too short.
func parse(rec []byte) (parsed, error) {
	var p parsed
	if !IsSealed(rec) {
		return p, ErrNotSealed
	}
	b := rec[len(Magic):]
	copy(p.id[:], b[:idSize])
	b = b[idSize:]
	p.wrapNonce, b = b[:nonceSize], b[nonceSize:]
	p.wrapped, b = b[:wrappedSize], b[wrappedSize:]
	p.nonce, p.ciphertext = b[:nonceSize], b[nonceSize:]
	return p, nil
}

// Open decrypts a record sealed for aad. ErrNotSealed for a legacy
// plaintext record, ErrUnknownKEK when no KEK held here sealed it, ErrAuth
// when it does not authenticate.
func (s *Sealer) Open(aad string, rec []byte) ([]byte, error) {
	p, err := parse(rec)
	if err != nil {
		return nil, err
	}
	k, ok := s.kek(p.id)
	if !ok {
		return nil, ErrUnknownKEK
	}
	dek, err := k.aead.Open(nil, p.wrapNonce, p.wrapped, additional(k.id, "dek", aad))
	if err != nil {
		return nil, ErrAuth
	}
	data, err := newAEAD(dek)
	if err != nil {
		return nil, ErrAuth
	}
	out, err := data.Open(nil, p.nonce, p.ciphertext, additional(k.id, "data", aad))
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

// Current reports whether rec is sealed with the current KEK (a record
// sealed with a previous one, or a legacy plaintext one, should be
// sealed again).
func (s *Sealer) Current(rec []byte) bool {
	p, err := parse(rec)
	return err == nil && p.id == s.current.id
}

func (s *Sealer) kek(id [idSize]byte) (kek, bool) {
	if id == s.current.id {
		return s.current, true
	}
	for _, k := range s.previous {
		if k.id == id {
			return k, true
		}
	}
	return kek{}, false
}

func additional(id [idSize]byte, part, aad string) []byte {
	b := make([]byte, 0, len(Magic)+idSize+len(part)+1+len(aad))
	b = append(b, Magic...)
	b = append(b, id[:]...)
	b = append(b, part...)
	b = append(b, 0)
	return append(b, aad...)
}
