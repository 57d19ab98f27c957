package exchange

import (
	"context"
	"errors"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authex/authex/storage"
)

// Principal is the caller proven by one of our access tokens, with a live
// session and an enabled user.
type Principal struct {
	Claims AccessClaims
	User   storage.User
	// Session is the token's session as Authenticate read it, so that the
	// rest of the request need not read it again.
	Session storage.Session
}

// Authenticate checks one of our access tokens and that its session and
// user are still good, which offline verification by an API cannot see.
func (s *Service) Authenticate(ctx context.Context, accessToken string) (*Principal, error) {
	claims, err := s.verifyAccess(accessToken)
	if err != nil {
		return nil, err
	}
	// One read of session and user (a session never outlives its user).
	sess, user, err := s.sessionUser(ctx, claims.SessionID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && user.ID != claims.Subject) {
		return nil, newError(KindInvalidToken, ReasonRevoked, "the access token's session is gone", nil)
	}
	if err != nil {
		return nil, storeError(err)
	}
	if sess.Revoked() {
		return nil, newError(KindInvalidToken, ReasonRevoked, "the access token's session is revoked", nil)
	}
	if sess.Expired(s.now()) {
		return nil, newError(KindInvalidToken, ReasonExpired, "the access token's session has expired; sign in again", nil)
	}
	if user.Disabled {
		return nil, disabledError()
	}
	return &Principal{Claims: *claims, User: user, Session: sess}, nil
}

func (s *Service) verifyAccess(raw string) (*AccessClaims, error) {
	if claims, ok := s.verified.get(raw, s.now(), s.keys); ok {
		return claims, nil
	}
	var claims AccessClaims
	err := s.parseJWT(raw, typAccess, &claims)
	switch {
	case err == nil:
		s.verified.put(raw, &claims)
		return &claims, nil
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, newError(KindInvalidToken, ReasonExpired, "access token has expired", err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, newError(KindInvalidToken, ReasonSignature, "access token signature is not valid", err)
	default:
		return nil, newError(KindInvalidToken, ReasonMalformed, "access token is not valid here", err)
	}
}
