package exchange

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authex/authex/storage"
)

// Logout scopes.
const (
	ScopeLocal  = "local"
	ScopeOthers = "others"
	ScopeGlobal = "global"
)

// LogoutRequest names the session by refresh token or by access token.
type LogoutRequest struct {
	RefreshToken string
	AccessToken  string
	Scope        string
	// Client is the client that authenticated with the request (nil when
	// no clients are configured). With clients configured a refresh token
	// logs out only with its own client, as it refreshes only with it.
	Client *AuthenticatedClient
}

// Logout revokes the caller's session (local), the user's other sessions
// (others) or all of them (global), and returns how many it revoked.
// Logging out of a session that is already gone is not an error.
func (s *Service) Logout(ctx context.Context, req LogoutRequest) (int, error) {
	scope, err := logoutScope(req.Scope)
	if err != nil {
		return 0, err
	}
	// A token that can no longer refresh may still end its own session
	// (local), but must not reach the user's other sessions: a thief with a
	// spent token would otherwise sign the user out everywhere.
	wide := scope != ScopeLocal
	var t *logoutTarget
	switch {
	case req.RefreshToken != "":
		t, err = s.logoutByRefreshToken(ctx, req, wide)
	case req.AccessToken != "":
		t, err = s.logoutByAccessToken(ctx, req.AccessToken, wide)
	default:
		return 0, newError(KindInvalidRequest, ReasonMissingCredential, "refresh_token or a Bearer access token is required", nil)
	}
	if err != nil || t == nil {
		return 0, err // t == nil: already signed out
	}
	return s.revokeForLogout(ctx, scope, *t)
}

// logoutScope is the request's scope, local when empty.
func logoutScope(scope string) (string, error) {
	if scope == "" {
		scope = ScopeLocal
	}
	if scope != ScopeLocal && scope != ScopeOthers && scope != ScopeGlobal {
		return "", newError(KindInvalidRequest, ReasonInvalidScope, "scope must be local, others or global", nil)
	}
	return scope, nil
}

// logoutTarget is the session a logout names, and its user.
type logoutTarget struct {
	sessionID, userID string
}

// logoutByRefreshToken resolves a logout by refresh token. It answers nil
// and no error when there is nothing left to sign out of (local scope).
func (s *Service) logoutByRefreshToken(ctx context.Context, req LogoutRequest, wide bool) (*logoutTarget, error) {
	id, gen, err := s.parseRefreshToken(req.RefreshToken)
	if err != nil {
		return nil, newError(KindInvalidGrant, ReasonMalformed, "refresh token is malformed or not issued here", nil)
	}
	if s.ClientsConfigured() && req.Client == nil {
		return nil, newError(KindInvalidClient, ReasonMissingClient,
			"client authentication is required with a refresh token: HTTP Basic, or client_id (and client_secret) in the body", nil)
	}
	sess, err := s.store.GetSession(ctx, id)
	if err == nil && req.Client != nil && sess.ClientID != "" && sess.ClientID != req.Client.ID {
		// Checked before reuse detection, as refresh does: a stolen
		// token presented by another client changes nothing.
		return nil, newError(KindInvalidGrant, ReasonClientMismatch, "the refresh token was issued to another client", nil)
	}
	if errors.Is(err, storage.ErrNotFound) {
		if wide {
			return nil, newError(KindInvalidGrant, ReasonRevoked, "the refresh token's session no longer exists", nil)
		}
		return nil, nil
	}
	if err != nil {
		return nil, storeError(err)
	}
	now := s.now()
	if err := s.refuseSpentLogout(ctx, sess, gen, now); err != nil {
		return nil, err
	}
	if wide {
		if err := checkSession(sess, now); err != nil {
			return nil, err
		}
	} else if sess.Revoked() {
		return nil, nil // already signed out
	}
	return &logoutTarget{sessionID: sess.ID, userID: sess.UserID}, nil
}

// refuseSpentLogout treats a logout with a spent refresh token (neither
// the current generation nor the previous one within the grace) as the
// same reuse that refresh detects: it revokes the session and refuses.
func (s *Service) refuseSpentLogout(ctx context.Context, sess storage.Session, gen uint64, now time.Time) error {
	current := gen == sess.Generation || s.inGrace(sess, gen, now)
	if current || sess.Revoked() {
		return nil
	}
	if err := s.revokeSession(ctx, sess.ID, now.UTC(), ReasonReused); err != nil {
		return storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: EventSessionReused, UserID: sess.UserID, SessionID: sess.ID,
		Detail: fmt.Sprintf("logout with generation %d, current %d", gen, sess.Generation)})
	return newError(KindInvalidGrant, ReasonReused, "refresh token was already used; the session is revoked", nil)
}

// logoutByAccessToken resolves a logout by access token: a wide logout
// needs a live session and user (Authenticate); a local one only a token
// that verifies, and answers nil when its session is already gone.
func (s *Service) logoutByAccessToken(ctx context.Context, token string, wide bool) (*logoutTarget, error) {
	if wide {
		p, err := s.Authenticate(ctx, token)
		if err != nil {
			return nil, err
		}
		return &logoutTarget{sessionID: p.Claims.SessionID, userID: p.Claims.Subject}, nil
	}
	claims, err := s.verifyAccess(token)
	if err != nil {
		return nil, err
	}
	sess, err := s.store.GetSession(ctx, claims.SessionID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && sess.Revoked()) {
		return nil, nil // already signed out
	}
	if err != nil {
		return nil, storeError(err)
	}
	return &logoutTarget{sessionID: claims.SessionID, userID: claims.Subject}, nil
}

// revokeForLogout revokes the target session (local, global) and the
// user's other sessions (others, global), and counts what it revoked.
func (s *Service) revokeForLogout(ctx context.Context, scope string, t logoutTarget) (int, error) {
	now := s.now().UTC()
	n := 0
	if scope == ScopeLocal || scope == ScopeGlobal {
		err := s.revokeSession(ctx, t.sessionID, now, RevokeReasonLogout)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return 0, storeError(err)
		}
		if err == nil {
			n++
		}
	}
	if scope == ScopeOthers || scope == ScopeGlobal {
		reason := RevokeReasonLogoutOthers
		if scope == ScopeGlobal {
			reason = RevokeReasonLogoutGlobal
		}
		m, err := s.revokeUserSessions(ctx, t.userID, t.sessionID, now, reason)
		if err != nil {
			return n, storeError(err)
		}
		n += m
	}
	return n, nil
}
