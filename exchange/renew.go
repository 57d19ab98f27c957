package exchange

import (
	"context"
	"errors"
	"time"

	"github.com/authex/authex/storage"
)

// RenewAccess gives the caller of a live access token a fresh one for the
// same session once less than within of its life is left (the FastAPI
// tutorial's /users/session/, which clients call on every page render and
// which never hands out refresh tokens). renewed is false, and res nil, while
// the token has more than within left. Renewing rotates the session like a
// refresh, so it slides the session's idle limit and stops at its absolute
// one. Concurrent renewals of one token share the first one's answer. p is
// what Authenticate answered on this request.
//
// client is the caller (nil when no clients are configured). Only a
// session of that very client renews here: renewing rotates the session,
// so renewing another client's session would move its refresh chain on
// and that client's next refresh would be taken for reuse. A session of
// any other client (or, with clients, one bound to none) is refused with
// invalid_token / client_mismatch, whatever its remaining life.
func (s *Service) RenewAccess(ctx context.Context, p *Principal, within time.Duration, client *AuthenticatedClient) (res *Result, renewed bool, err error) {
	want := ""
	if client != nil {
		want = client.ID
	}
	if p.Session.ClientID != want {
		return nil, false, newError(KindInvalidToken, ReasonClientMismatch,
			"the access token's session belongs to another client and is not renewed here", nil)
	}
	now := s.now()
	if p.Claims.ExpiresAt == nil || p.Claims.ExpiresAt.Sub(now) >= within {
		return nil, false, nil
	}
	sess := p.Session // read by Authenticate on this request
	if err := checkSession(sess, now); err != nil {
		e := AsError(err)
		return nil, false, newError(KindInvalidToken, e.Reason, e.Description, nil)
	}
	extra, err := s.extraClaims(ctx, p.User, sess.ClientID)
	if err != nil {
		return nil, false, err
	}
	if p.Claims.IssuedAt != nil && sess.RotatedAt.Truncate(time.Second).After(p.Claims.IssuedAt.Time) {
		// Already renewed (or refreshed) since this token was issued.
		res, err := s.result(sess, p.User, extra)
		return res, err == nil, err
	}
	idle := minTime(now.Add(s.cfg.RefreshTTL), sess.ExpiresAt)
	rotated, err := s.store.RotateSession(ctx, sess.ID, sess.Generation, now.UTC(), idle)
	if err != nil && !errors.Is(err, storage.ErrStale) {
		return nil, false, storeError(err)
	}
	// A lost race hands back the stored session, which may have been
	// revoked or may have expired meanwhile.
	if err := checkSession(rotated, now); err != nil {
		e := AsError(err)
		return nil, false, newError(KindInvalidToken, e.Reason, e.Description, nil)
	}
	res, err = s.result(rotated, p.User, extra)
	return res, err == nil, err
}
