package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/authex/authex/storage"
)

// Refresh rotates a refresh token. The previous generation presented within
// the reuse grace gets the current pair back (concurrent refreshes from one
// browser all succeed alike); any older generation, or the previous one
// after the grace, is reuse and revokes the whole session.
func (s *Service) Refresh(ctx context.Context, token string) (*Result, error) {
	return s.refresh(ctx, token, nil)
}

// refresh is Refresh; with client (the client that authenticated), a
// session issued to another client is refused before anything else, reuse
// detection included: a stolen token presented by another client changes
// nothing.
func (s *Service) refresh(ctx context.Context, token string, client *AuthenticatedClient) (res *Result, err error) {
	outcome := OutcomeRotated
	defer func() {
		if err != nil {
			outcome = errorOutcome(err)
		}
		s.observe.Refreshed(outcome)
	}()
	sid, gen, err := s.parseRefreshToken(token)
	if err != nil {
		return nil, newError(KindInvalidGrant, ReasonMalformed, "refresh token is malformed or not issued here", nil)
	}
	if s.hook == nil {
		if res, ok, err := s.rotateAtOnce(ctx, sid, gen, client); ok || err != nil {
			return res, err
		}
	}
	sess, user, err := s.sessionUser(ctx, sid)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, newError(KindInvalidGrant, ReasonRevoked, "refresh token's session no longer exists", nil)
	}
	if err != nil {
		return nil, storeError(err)
	}
	if client != nil && sess.ClientID != "" && sess.ClientID != client.ID {
		return nil, newError(KindInvalidGrant, ReasonClientMismatch, "the refresh token was issued to another client", nil)
	}
	for attempt := 0; ; attempt++ {
		now := s.now()
		if err := checkSession(sess, now); err != nil {
			return nil, err
		}
		if user.Disabled {
			return nil, disabledError()
		}
		var extra map[string]json.RawMessage
		if gen == sess.Generation || s.inGrace(sess, gen, now) {
			// Before the rotation: a refused hook answer must not leave the
			// client with a spent refresh token.
			if extra, err = s.extraClaims(ctx, user, sess.ClientID); err != nil {
				return nil, err
			}
		}
		switch {
		case gen == sess.Generation:
			idle := minTime(now.Add(s.cfg.RefreshTTL), sess.ExpiresAt)
			rotated, err := s.store.RotateSession(ctx, sid, gen, now.UTC(), idle)
			if errors.Is(err, storage.ErrStale) && attempt == 0 {
				sess = rotated // a concurrent refresh won; answer as the grace does
				continue
			}
			if err != nil {
				return nil, storeError(err)
			}
			return s.result(rotated, user, extra)
		case s.inGrace(sess, gen, now):
			outcome = OutcomeGrace
			return s.result(sess, user, extra)
		default:
			if err := s.revokeSession(ctx, sid, now.UTC(), ReasonReused); err != nil {
				return nil, storeError(err)
			}
			s.audit(ctx, storage.AuditEvent{Type: EventSessionReused, UserID: sess.UserID, SessionID: sid,
				Detail: fmt.Sprintf("generation %d presented, current %d", gen, sess.Generation)})
			s.log.WarnContext(ctx, "refresh token reuse: session revoked", "session_id", sid, "user_id", sess.UserID)
			return nil, newError(KindInvalidGrant, ReasonReused, "refresh token was already used; the session is revoked", nil)
		}
	}
}

// rotateAtOnce is the common refresh in one write, on a store that can
// (storage.EnabledUserRotator): the current generation of a live session
// of an enabled user, issued to client (if any) or to none, rotates, and
// the write returns the user too. It is only for refreshes that need
// nothing between reading and rotating (no claims hook). ok is false when
// the write did not rotate: the caller reads the session and answers as
// for any other (client mismatch, grace, reuse, revoked, expired,
// disabled).
func (s *Service) rotateAtOnce(ctx context.Context, sid string, gen uint64, client *AuthenticatedClient) (res *Result, ok bool, err error) {
	rot, can := storage.As[storage.EnabledUserRotator](s.store)
	if !can {
		return nil, false, nil
	}
	now := s.now()
	clientID := ""
	if client != nil {
		clientID = client.ID
	}
	rotated, user, err := rot.RotateSessionOfEnabledUser(ctx, sid, clientID, gen, now.UTC(), now.Add(s.cfg.RefreshTTL).UTC())
	switch {
	case errors.Is(err, storage.ErrStale):
		return nil, false, nil
	case err != nil:
		return nil, true, storeError(err)
	}
	res, err = s.result(rotated, user, nil)
	return res, true, err
}

// sessionUser reads a session and its user: ErrNotFound when the session
// is absent, or its user (a session never outlives its user).
func (s *Service) sessionUser(ctx context.Context, sid string) (storage.Session, storage.User, error) {
	if r, ok := storage.As[storage.HotReader](s.store); ok {
		return r.GetSessionUser(ctx, sid)
	}
	sess, err := s.store.GetSession(ctx, sid)
	if err != nil {
		return sess, storage.User{}, err
	}
	user, err := s.store.GetUser(ctx, sess.UserID)
	return sess, user, err
}

// inGrace reports whether gen is the session's previous generation,
// presented within the reuse grace of its rotation: not yet reuse.
func (s *Service) inGrace(sess storage.Session, gen uint64, now time.Time) bool {
	return gen+1 == sess.Generation && now.Sub(sess.RotatedAt) <= s.cfg.ReuseGrace
}

func checkSession(sess storage.Session, now time.Time) error {
	if sess.Revoked() {
		return newError(KindInvalidGrant, ReasonRevoked, "the session is revoked", nil)
	}
	if sess.Expired(now) {
		return newError(KindInvalidGrant, ReasonExpired, "the session has expired; sign in again", nil)
	}
	return nil
}
