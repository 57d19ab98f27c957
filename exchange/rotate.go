package exchange

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/authex/authex/exchange/keyring"
	"github.com/authex/authex/storage"
)

// expiredKeyKeep is how long an expired key stays in the store (out of the
// JWKS) before maintenance deletes it, so `authex keys list` shows a
// rotation's whole history for a day.
const expiredKeyKeep = 24 * time.Hour

// keyRetention is how long a retired key stays published: the longest an
// access token it signed can live, plus the leeway parseJWT allows, so the
// last token a key signed verifies until it expires.
func (s *Service) keyRetention() time.Duration { return s.cfg.AccessTTL + accessLeeway }

// RotateKeys rotates the signing key with the configured publish delay and
// records who asked in the audit log.
func (s *Service) RotateKeys(ctx context.Context, actor string) (storage.SigningKey, error) {
	if s.keys.FromFiles() {
		return storage.SigningKey{}, errKeysFromFiles()
	}
	rec, err := s.keys.Rotate(ctx, s.cfg.KeyPublishDelay, s.keyRetention())
	if err != nil {
		return rec, storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: EventKeyRotated, Detail: "kid " + rec.ID + " by " + actor})
	s.log.InfoContext(ctx, "signing key rotated", "kid", rec.ID, "signs_from", rec.NotBefore, "by", actor)
	return rec, nil
}

// MaintainKeys runs until ctx ends. Every interval it rotates when the
// newest key is older than Config.KeyRotation (when set), finishes a
// rotation that a crash interrupted, and deletes keys that left the JWKS
// more than a day ago. (keyring.Ring.Watch reloads keys other instances wrote.)
func (s *Service) MaintainKeys(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.maintainKeys(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "signing key maintenance failed", "err", err)
		}
	}
}

func (s *Service) maintainKeys(ctx context.Context) error {
	if err := s.pruneMACSecrets(ctx); err != nil {
		return err
	}
	if s.keys.FromFiles() {
		return nil // keys from PEM files: the operator rotates them
	}
	recs, err := s.store.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	var newest storage.SigningKey
	for _, rec := range recs {
		if rec.CreatedAt.After(newest.CreatedAt) && !keyring.Revoked(rec) {
			newest = rec
		}
		if !rec.ExpiresAt.IsZero() && now.Sub(rec.ExpiresAt) > expiredKeyKeep {
			if err := s.store.DeleteSigningKey(ctx, rec.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
		}
	}
	// Finish a rotation that stopped between creating the new key and
	// retiring the old ones (a crash): every key but the newest retires.
	changed := false
	for _, rec := range recs {
		if rec.ID != newest.ID && rec.RetiredAt.IsZero() && !keyring.Revoked(rec) && now.Sub(newest.CreatedAt) > time.Minute {
			if err := s.keys.Retire(ctx, rec, newest.NotBefore, s.keyRetention()); err != nil {
				return err
			}
			changed = true
		}
	}
	if s.cfg.KeyRotation > 0 && newest.ID != "" && now.Sub(newest.CreatedAt) >= s.cfg.KeyRotation {
		_, err := s.RotateKeys(ctx, "automatic rotation")
		return err
	}
	if changed {
		return s.keys.Reload(ctx)
	}
	return nil
}

func errKeysFromFiles() error {
	return newError(KindConflict, ReasonKeysFromFiles,
		"the signing keys come from PEM files (tokens.signing_key_files): change the files and restart to rotate or revoke", nil)
}

// RevokeKey revokes a signing key in an emergency (it leaked): from now it
// is out of the JWKS and verifies nothing, so every token it signed stops
// working here at once and on the other instances within KeyPollInterval.
// When it was the key that signs, a fresh key replaces it and signs at
// once, with no publish delay: waiting would leave nothing to sign with,
// and an API that meets the new kid before its JWKS cache has it refetches
// the JWKS (unknown kid), a shorter outage than signing with a leaked key.
// It returns the revoked key and the replacement, if one was made.
// Revoking a revoked key is a no-op.
func (a *Admin) RevokeKey(ctx context.Context, kid, actor string) (KeyInfo, *KeyInfo, error) {
	s := a.s
	if s.keys.FromFiles() {
		return KeyInfo{}, nil, errKeysFromFiles()
	}
	recs, err := s.store.ListSigningKeys(ctx)
	if err != nil {
		return KeyInfo{}, nil, storeError(err)
	}
	i := slices.IndexFunc(recs, func(r storage.SigningKey) bool { return r.ID == kid })
	if i < 0 {
		return KeyInfo{}, nil, newError(KindNotFound, ReasonNotFound, "no such signing key", nil)
	}
	rec := recs[i]
	now := s.now().UTC()
	if keyring.Revoked(rec) {
		return keyInfo(rec, now, ""), nil, nil
	}
	wasSigning := s.keys.SigningKID() == kid
	// Does any other key sign now? If not, one is made below.
	others := otherKeySigns(recs, kid, now)
	if rec, err = s.storeRevocation(ctx, rec, now); err != nil {
		return KeyInfo{}, nil, err
	}
	var fresh storage.SigningKey
	replace := wasSigning || !others
	if replace {
		if fresh, err = s.replaceRevokedKey(ctx, recs, kid, now); err != nil {
			return KeyInfo{}, nil, err
		}
	}
	if err := s.keys.Reload(ctx); err != nil {
		return KeyInfo{}, nil, storeError(err)
	}
	var repl *KeyInfo
	if replace {
		info := keyInfo(fresh, s.now(), s.keys.SigningKID())
		repl = &info
	}
	detail := "kid " + kid + " by " + actor
	if repl != nil {
		detail += "; replaced by " + repl.ID
	}
	s.audit(ctx, storage.AuditEvent{Type: EventKeyRevoked, Detail: detail})
	s.log.WarnContext(ctx, "signing key revoked", "kid", kid, "by", actor)
	return keyInfo(rec, now, ""), repl, nil
}

// otherKeySigns reports whether a key other than kid signs at now.
func otherKeySigns(recs []storage.SigningKey, kid string, now time.Time) bool {
	others := false
	for _, r := range recs {
		if r.ID != kid && !keyring.Revoked(r) && !now.Before(r.NotBefore) && (r.RetiredAt.IsZero() || now.Before(r.RetiredAt)) &&
			(r.ExpiresAt.IsZero() || now.Before(r.ExpiresAt)) {
			others = true
		}
	}
	return others
}

// storeRevocation stores rec as revoked, retired and expired at now.
func (s *Service) storeRevocation(ctx context.Context, rec storage.SigningKey, now time.Time) (storage.SigningKey, error) {
	rec.RevokedAt = now
	if rec.RetiredAt.IsZero() || rec.RetiredAt.After(now) {
		rec.RetiredAt = now
	}
	rec.ExpiresAt = now // maintenance deletes it a day later
	if err := s.store.UpdateSigningKey(ctx, rec); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return rec, newError(KindNotFound, ReasonNotFound, "no such signing key", nil)
		}
		return rec, storeError(err)
	}
	return rec, nil
}

// replaceRevokedKey makes a key that signs at once in place of the
// revoked kid.
func (s *Service) replaceRevokedKey(ctx context.Context, recs []storage.SigningKey, kid string, now time.Time) (storage.SigningKey, error) {
	fresh, err := s.keys.Create(ctx, 0)
	if err != nil {
		return fresh, storeError(err)
	}
	// Keys already waiting to sign would take over from the fresh one
	// only to be retired by maintenance; retire them now instead.
	for _, r := range recs {
		if r.ID != kid && !keyring.Revoked(r) && r.RetiredAt.IsZero() {
			if err := s.keys.Retire(ctx, r, now, s.keyRetention()); err != nil {
				return fresh, storeError(err)
			}
		}
	}
	return fresh, nil
}
