package exchange

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/authex/authex/exchange/keyring"
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
// The secrets themselves, how the store holds them and their reload are
// the keyring's (keyring/macs.go).

const (
	// MACActivationDelay is how long a rotated-in MAC secret is known
	// before it signs, so that every instance (polling the keys every
	// KeyPollInterval) holds it first: the reuse grace answers concurrent
	// refreshes on two instances byte for byte only when both pick the
	// same secret for a session.
	MACActivationDelay = 3 * time.Second
	// maxRefreshTokenLen bounds what parseRefreshToken looks at.
	maxRefreshTokenLen = 256
)

// macSecretFor is the secret of a session's current tokens.
func (s *Service) macSecretFor(sess storage.Session) *keyring.MACSecret {
	return s.keys.MACs().At(sess.RotatedAt)
}

// macWith is the MAC of purpose, id and generation under sec, each part
// ended by a zero byte but the last.
func macWith(sec *keyring.MACSecret, purpose, id string, generation uint64) string {
	var buf [128]byte // the message of every token we make fits
	msg := append(buf[:0], purpose...)
	msg = append(msg, 0)
	msg = append(msg, id...)
	msg = append(msg, 0)
	msg = strconv.AppendUint(msg, generation, 10)
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(sec.Sum(sum[:0], msg))
}

// refreshToken derives the refresh token of a session at its current
// generation. The store keeps only the generation, so a stolen database
// yields no usable token; the secret follows from the session record, so
// the same record always gives the same token (the reuse grace relies on it).
func (s *Service) refreshToken(sess storage.Session) string {
	sec := s.macSecretFor(sess)
	return sess.ID + "." + strconv.FormatUint(sess.Generation, 10) + "." + sec.ID + "." +
		macWith(sec, "refresh", sess.ID, sess.Generation)
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
	sec, ok := s.keys.MACs().ByID[secretID]
	if !ok && s.keys.ReloadForUnknownSecret(secretID) {
		sec, ok = s.keys.MACs().ByID[secretID]
	}
	if !ok {
		return "", 0, errBadRefreshToken
	}
	if !hmac.Equal([]byte(macWith(sec, "refresh", sessionID, generation)), []byte(mac)) {
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
		sessionID, generation, secretID, mac = parts[0], parts[1], keyring.LegacyMACID, parts[2]
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
	return a.s.refreshSecretInfos(a.s.keys.MACs()), nil
}

func (s *Service) refreshSecretInfos(r *keyring.MACRing) []RefreshSecretInfo {
	now := s.now()
	signing := r.At(now)
	out := make([]RefreshSecretInfo, 0, len(r.List))
	for i, m := range r.List {
		info := RefreshSecretInfo{ID: m.ID, ActiveFrom: m.ActiveFrom, State: "verifying"}
		switch {
		case m.ActiveFrom.After(now):
			info.State = "pending"
		case m == signing:
			info.State = "signing"
		}
		if info.State == "verifying" && i+1 < len(r.List) && s.cfg.SessionMax > 0 {
			info.RetiresAt = r.List[i+1].ActiveFrom.Add(s.cfg.SessionMax)
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
	activeFrom := s.now().Add(MACActivationDelay).UTC()
	id, name, sealed, err := s.keys.NewMACSecret(activeFrom)
	if err != nil {
		return RefreshSecretInfo{}, err
	}
	if _, err := s.store.EnsureSecret(ctx, name, sealed); err != nil {
		return RefreshSecretInfo{}, storeError(err)
	}
	if err := s.keys.Reload(ctx); err != nil {
		return RefreshSecretInfo{}, storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: EventRefreshSecretRotated, Detail: "secret " + id + " by " + actor})
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
	r := s.keys.MACs()
	m, ok := r.ByID[id]
	if !ok {
		return newError(KindNotFound, ReasonNotFound, "no such refresh secret", nil)
	}
	if m == r.At(s.now()) {
		return newError(KindConflict, ReasonSecretInUse,
			"this refresh secret signs the current tokens; rotate the refresh secret first", nil)
	}
	km := s.store
	if err := km.DeleteSecret(ctx, m.Name); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storeError(err)
	}
	if err := s.keys.Reload(ctx); err != nil {
		return storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: EventRefreshSecretRetired, Detail: "secret " + id + " by " + actor})
	s.log.WarnContext(ctx, "refresh MAC secret retired: sessions holding its tokens must sign in again", "secret_id", id, "by", actor)
	return nil
}

// pruneMACSecrets deletes each secret whose successor has been active for
// longer than SessionMax: no live session can still hold a token it made.
func (s *Service) pruneMACSecrets(ctx context.Context) error {
	if s.cfg.SessionMax <= 0 {
		return nil
	}
	r := s.keys.MACs()
	if r == nil {
		return nil
	}
	now := s.now()
	km := s.store
	pruned := false
	for i, m := range r.List[:max(len(r.List)-1, 0)] {
		if now.Before(r.List[i+1].ActiveFrom.Add(s.cfg.SessionMax)) {
			continue
		}
		if err := km.DeleteSecret(ctx, m.Name); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		pruned = true
	}
	if pruned {
		return s.keys.Reload(ctx)
	}
	return nil
}
