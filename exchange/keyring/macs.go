package keyring

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"sync"
	"time"
)

// Refresh MAC secrets (the token format and its use are exchange's
// macsecrets.go). The store holds each secret sealed under the name
// refresh-mac (the first one, id "0", 32 bytes) or refresh-mac/ID (8 bytes
// of activation time, Unix nanoseconds big-endian, then 32 bytes of key).
// The ring reads them at every Reload, with the signing keys.

const (
	macSecretName   = "refresh-mac"
	macSecretPrefix = macSecretName + "/"
	// LegacyMACID is the id of the first secret, which made the refresh
	// tokens of the former form session_id.generation.MAC.
	LegacyMACID = "0"
	macKeySize  = 32
)

// IsMACSecretName reports whether a stored secret is a refresh MAC secret.
func IsMACSecretName(name string) bool {
	return name == macSecretName || strings.HasPrefix(name, macSecretPrefix)
}

// MACSecret is one refresh MAC secret as read at a reload.
type MACSecret struct {
	ID         string
	Name       string    // its name in the store
	ActiveFrom time.Time // zero for the first secret
	Key        []byte

	// keyed holds HMAC-SHA256 states keyed with Key, reset between uses:
	// keying one costs more (and allocates more) than the MAC of a
	// refresh token, and every exchange and refresh makes one or two.
	keyed sync.Pool
}

// Sum is HMAC-SHA256 of msg under Key, appended to dst.
func (m *MACSecret) Sum(dst, msg []byte) []byte {
	h, _ := m.keyed.Get().(hash.Hash)
	if h == nil {
		h = hmac.New(sha256.New, m.Key)
	}
	h.Write(msg)
	dst = h.Sum(dst)
	h.Reset()
	m.keyed.Put(h)
	return dst
}

// MACRing is the MAC secrets as read at one reload; never modified after
// (callers must not change it either).
type MACRing struct {
	List []*MACSecret // by ActiveFrom, then ID
	ByID map[string]*MACSecret
}

// At is the secret that signs a session's token rotated at t: the newest
// active at t (the oldest when none is yet, which cannot happen for a
// session rotated after the first secret existed).
func (r *MACRing) At(t time.Time) *MACSecret {
	if r == nil || len(r.List) == 0 {
		return nil
	}
	cur := r.List[0]
	for _, s := range r.List[1:] {
		if s.ActiveFrom.After(t) {
			break
		}
		cur = s
	}
	return cur
}

// loadMACs reads and opens the MAC secrets.
func (k *Ring) loadMACs(ctx context.Context) (*MACRing, error) {
	km := k.store
	secrets, err := km.ListSecrets(ctx)
	if err != nil {
		return nil, err
	}
	r := &MACRing{ByID: map[string]*MACSecret{}}
	for _, sec := range secrets {
		if !IsMACSecretName(sec.Name) {
			continue
		}
		plain, err := k.open(secretAAD(sec.Name), sec.Value)
		if err != nil {
			return nil, fmt.Errorf("refresh MAC secrets: %w", err)
		}
		m := &MACSecret{Name: sec.Name, ID: LegacyMACID, Key: plain}
		if sec.Name != macSecretName {
			if len(plain) != 8+macKeySize {
				return nil, errors.New("refresh MAC secrets: a stored secret has the wrong size")
			}
			m.ID = strings.TrimPrefix(sec.Name, macSecretPrefix)
			m.ActiveFrom = time.Unix(0, int64(binary.BigEndian.Uint64(plain))).UTC()
			m.Key = plain[8:]
		}
		r.List = append(r.List, m)
		r.ByID[m.ID] = m
	}
	slices.SortFunc(r.List, func(a, b *MACSecret) int {
		if c := a.ActiveFrom.Compare(b.ActiveFrom); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return r, nil
}

// MACs is the MAC secrets as of the last reload.
func (k *Ring) MACs() *MACRing {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.macs
}

// newMACSecretID is 8 base64url characters: never "0", never a dot.
func newMACSecretID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// EnsureFirstMACSecret creates secret "0" when the store has none: the
// first writer wins across instances.
func (k *Ring) EnsureFirstMACSecret(ctx context.Context) error {
	fresh := make([]byte, macKeySize)
	if _, err := rand.Read(fresh); err != nil {
		return err
	}
	sealed, err := k.seal(secretAAD(macSecretName), fresh)
	if err != nil {
		return err
	}
	_, err = k.store.EnsureSecret(ctx, macSecretName, sealed)
	return err
}

// NewMACSecret makes a MAC secret that signs from activeFrom, sealed for
// the store under name; the caller stores it (EnsureSecret) and reloads.
func (k *Ring) NewMACSecret(activeFrom time.Time) (id, name string, sealed []byte, err error) {
	id, err = newMACSecretID()
	if err != nil {
		return "", "", nil, err
	}
	plain := make([]byte, 8+macKeySize)
	binary.BigEndian.PutUint64(plain, uint64(activeFrom.UnixNano()))
	if _, err := rand.Read(plain[8:]); err != nil {
		return "", "", nil, err
	}
	name = macSecretPrefix + id
	sealed, err = k.seal(secretAAD(name), plain)
	if err != nil {
		return "", "", nil, err
	}
	return id, name, sealed, nil
}
