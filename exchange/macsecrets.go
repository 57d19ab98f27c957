package exchange

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authex/authex/storage"
)

// Refresh MAC secrets. A refresh token is
//
//	session_id . generation . secret_id . MAC(secret, session_id, generation)
//
// so the MAC secret can be rotated without signing anyone out: the secret
// that signs a session's token is the newest one active at the session's
// RotatedAt, every secret still held verifies the tokens it made, and the
// next refresh of each session gets a token of the newest secret. Tokens
// made before secret ids existed (session_id.generation.MAC) were made
// with the first secret, id "0", and keep refreshing.
//
// The store holds each secret sealed under the name refresh-mac (the first
// one, id "0", 32 bytes) or refresh-mac/ID (8 bytes of activation time,
// Unix nanoseconds big-endian, then 32 bytes of key).

const (
	macSecretName   = "refresh-mac"
	macSecretPrefix = macSecretName + "/"
	legacyMACID     = "0"
	macKeySize      = 32
	// MACActivationDelay is how long a rotated-in MAC secret is known
	// before it signs, so that every instance (polling the keys every
	// KeyPollInterval) holds it first: the reuse grace answers concurrent
	// refreshes on two instances byte for byte only when both pick the
	// same secret for a session.
	MACActivationDelay = 3 * time.Second
	// maxRefreshTokenLen bounds what parseRefreshToken looks at.
	maxRefreshTokenLen = 256
)

func isMACSecretName(name string) bool {
	return name == macSecretName || strings.HasPrefix(name, macSecretPrefix)
}

type macSecret struct {
	id         string
	name       string
	activeFrom time.Time // zero for the first secret
	key        []byte
}

// macRing is the MAC secrets as read at one reload; never modified after.
type macRing struct {
	list []*macSecret // by activeFrom, then id
	byID map[string]*macSecret
}

// at is the secret that signs a session's token rotated at t: the newest
// active at t (the oldest when none is yet, which cannot happen for a
// session rotated after the first secret existed).
func (r *macRing) at(t time.Time) *macSecret {
	if r == nil || len(r.list) == 0 {
		return nil
	}
	cur := r.list[0]
	for _, s := range r.list[1:] {
		if s.activeFrom.After(t) {
			break
		}
		cur = s
	}
	return cur
}

// loadMACs reads and opens the MAC secrets.
func (k *Keyring) loadMACs(ctx context.Context) (*macRing, error) {
	km := k.store
	secrets, err := km.ListSecrets(ctx)
	if err != nil {
		return nil, err
	}
	r := &macRing{byID: map[string]*macSecret{}}
	for _, sec := range secrets {
		if !isMACSecretName(sec.Name) {
			continue
		}
		plain, err := k.open(secretAAD(sec.Name), sec.Value)
		if err != nil {
			return nil, fmt.Errorf("refresh MAC secrets: %w", err)
		}
		m := &macSecret{name: sec.Name, id: legacyMACID, key: plain}
		if sec.Name != macSecretName {
			if len(plain) != 8+macKeySize {
				return nil, errors.New("refresh MAC secrets: a stored secret has the wrong size")
			}
			m.id = strings.TrimPrefix(sec.Name, macSecretPrefix)
			m.activeFrom = time.Unix(0, int64(binary.BigEndian.Uint64(plain))).UTC()
			m.key = plain[8:]
		}
		r.list = append(r.list, m)
		r.byID[m.id] = m
	}
	slices.SortFunc(r.list, func(a, b *macSecret) int {
		if c := a.activeFrom.Compare(b.activeFrom); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	return r, nil
}

func (k *Keyring) macRing() *macRing {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.macs
}

// macSecretFor is the secret of a session's current tokens.
func (s *Service) macSecretFor(sess storage.Session) *macSecret {
	return s.keys.macRing().at(sess.RotatedAt)
}

func macWith(key []byte, purpose, sessionID string, generation uint64) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(sessionID))
	m.Write([]byte{0})
	m.Write(strconv.AppendUint(nil, generation, 10))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// refreshToken derives the refresh token of a session at its current
// generation. The store keeps only the generation, so a stolen database
// yields no usable token; the secret follows from the session record, so
// the same record always gives the same token (the reuse grace relies on it).
func (s *Service) refreshToken(sess storage.Session) string {
	sec := s.macSecretFor(sess)
	return sess.ID + "." + strconv.FormatUint(sess.Generation, 10) + "." + sec.id + "." +
		macWith(sec.key, "refresh", sess.ID, sess.Generation)
}

var errBadRefreshToken = errors.New("refresh token is not one of ours")

// parseRefreshToken checks the MAC in constant time and returns the parts.
// The generation has one spelling only: decimal, no sign, no leading zero.
func (s *Service) parseRefreshToken(token string) (sessionID string, generation uint64, err error) {
	sessionID, genText, secretID, mac, ok := splitRefreshToken(token)
	if !ok {
		return "", 0, errBadRefreshToken
	}
	generation, ok = parseGeneration(genText)
	if !ok {
		return "", 0, errBadRefreshToken
	}
	sec, ok := s.keys.macRing().byID[secretID]
	if !ok && s.keys.reloadForUnknownSecret(secretID) {
		sec, ok = s.keys.macRing().byID[secretID]
	}
	if !ok {
		return "", 0, errBadRefreshToken
	}
	if !hmac.Equal([]byte(macWith(sec.key, "refresh", sessionID, generation)), []byte(mac)) {
		return "", 0, errBadRefreshToken
	}
	return sessionID, generation, nil
}

// splitRefreshToken splits sid.gen.secret.mac, or the legacy sid.gen.mac
// (secret "0"), without judging the parts beyond emptiness.
func splitRefreshToken(token string) (sessionID, generation, secretID, mac string, ok bool) {
	if len(token) > maxRefreshTokenLen {
		return "", "", "", "", false
	}
	parts := strings.Split(token, ".")
	switch len(parts) {
	case 3:
		sessionID, generation, secretID, mac = parts[0], parts[1], legacyMACID, parts[2]
	case 4:
		sessionID, generation, secretID, mac = parts[0], parts[1], parts[2], parts[3]
	default:
		return "", "", "", "", false
	}
	if sessionID == "" || secretID == "" || mac == "" {
		return "", "", "", "", false
	}
	return sessionID, generation, secretID, mac, true
}

// parseGeneration accepts only the canonical decimal form.
func parseGeneration(v string) (uint64, bool) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != v {
		return 0, false
	}
	return n, true
}

// newMACSecretID is 8 base64url characters: never "0", never a dot.
func newMACSecretID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ensureFirstMACSecret creates secret "0" when the store has none: the
// first writer wins across instances.
func (k *Keyring) ensureFirstMACSecret(ctx context.Context) error {
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

// RefreshSecretInfo describes a refresh MAC secret, never its value.
type RefreshSecretInfo struct {
	ID         string
	ActiveFrom time.Time // zero: the first secret
	// State is "pending" (known, not signing yet), "signing" (signs the
	// next token of every session) or "verifying" (verifies the tokens it
	// made until RetiresAt).
	State string
	// RetiresAt: when maintenance deletes it (zero while it signs or waits).
	RetiresAt time.Time
}

// RefreshSecrets lists the refresh MAC secrets, oldest first.
func (a *Admin) RefreshSecrets(ctx context.Context) ([]RefreshSecretInfo, error) {
	if err := a.s.keys.Reload(ctx); err != nil {
		return nil, storeError(err)
	}
	return a.s.refreshSecretInfos(a.s.keys.macRing()), nil
}

func (s *Service) refreshSecretInfos(r *macRing) []RefreshSecretInfo {
	now := s.now()
	signing := r.at(now)
	out := make([]RefreshSecretInfo, 0, len(r.list))
	for i, m := range r.list {
		info := RefreshSecretInfo{ID: m.id, ActiveFrom: m.activeFrom, State: "verifying"}
		switch {
		case m.activeFrom.After(now):
			info.State = "pending"
		case m == signing:
			info.State = "signing"
		}
		if info.State == "verifying" && i+1 < len(r.list) && s.cfg.SessionMax > 0 {
			info.RetiresAt = r.list[i+1].activeFrom.Add(s.cfg.SessionMax)
		}
		out = append(out, info)
	}
	return out
}

// RotateRefreshSecret makes a new refresh MAC secret that every instance
// knows within a second and that signs from MACActivationDelay on. No
// session is touched: tokens of the older secrets keep refreshing, and
// each session's next token is made with the new one.
func (a *Admin) RotateRefreshSecret(ctx context.Context, actor string) (RefreshSecretInfo, error) {
	s := a.s
	id, err := newMACSecretID()
	if err != nil {
		return RefreshSecretInfo{}, err
	}
	activeFrom := s.now().Add(MACActivationDelay).UTC()
	plain := make([]byte, 8+macKeySize)
	binary.BigEndian.PutUint64(plain, uint64(activeFrom.UnixNano()))
	if _, err := rand.Read(plain[8:]); err != nil {
		return RefreshSecretInfo{}, err
	}
	name := macSecretPrefix + id
	sealed, err := s.keys.seal(secretAAD(name), plain)
	if err != nil {
		return RefreshSecretInfo{}, err
	}
	if _, err := s.store.EnsureSecret(ctx, name, sealed); err != nil {
		return RefreshSecretInfo{}, storeError(err)
	}
	if err := s.keys.Reload(ctx); err != nil {
		return RefreshSecretInfo{}, storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: "refresh_secret.rotated", Detail: "secret " + id + " by " + actor})
	s.log.InfoContext(ctx, "refresh MAC secret rotated", "secret_id", id, "signs_from", activeFrom, "by", actor)
	return RefreshSecretInfo{ID: id, ActiveFrom: activeFrom, State: "pending"}, nil
}

// RetireRefreshSecret deletes a refresh MAC secret before its time: the
// sessions whose current token it made can no longer refresh (invalid_grant
// malformed) and must sign in again. The secret that signs now cannot be
// retired (rotate first).
func (a *Admin) RetireRefreshSecret(ctx context.Context, id, actor string) error {
	s := a.s
	if err := s.keys.Reload(ctx); err != nil {
		return storeError(err)
	}
	r := s.keys.macRing()
	m, ok := r.byID[id]
	if !ok {
		return newError(KindNotFound, ReasonNotFound, "no such refresh secret", nil)
	}
	if m == r.at(s.now()) {
		return newError(KindConflict, ReasonSecretInUse,
			"this refresh secret signs the current tokens; rotate the refresh secret first", nil)
	}
	km := s.store
	if err := km.DeleteSecret(ctx, m.name); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storeError(err)
	}
	if err := s.keys.Reload(ctx); err != nil {
		return storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: "refresh_secret.retired", Detail: "secret " + id + " by " + actor})
	s.log.WarnContext(ctx, "refresh MAC secret retired: sessions holding its tokens must sign in again", "secret_id", id, "by", actor)
	return nil
}

// pruneMACSecrets deletes each secret whose successor has been active for
// longer than SessionMax: no live session can still hold a token it made.
func (s *Service) pruneMACSecrets(ctx context.Context) error {
	if s.cfg.SessionMax <= 0 {
		return nil
	}
	r := s.keys.macRing()
	if r == nil {
		return nil
	}
	now := s.now()
	km := s.store
	pruned := false
	for i, m := range r.list[:max(len(r.list)-1, 0)] {
		if now.Before(r.list[i+1].activeFrom.Add(s.cfg.SessionMax)) {
			continue
		}
		if err := km.DeleteSecret(ctx, m.name); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		pruned = true
	}
	if pruned {
		return s.keys.Reload(ctx)
	}
	return nil
}
