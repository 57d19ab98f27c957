package exchange

import (
	"context"
	"errors"
	"strings"

	"github.com/authex/authex/providers"
	"github.com/authex/authex/storage"
)

// RFC 8693 token type identifiers.
const (
	TokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// TokenExchangeRequest is an RFC 8693 token exchange: a provider's token
// (the subject token) traded for ours.
type TokenExchangeRequest struct {
	SubjectToken     string
	SubjectTokenType string
	// SubjectIssuer names the provider: its config name or its issuer URL.
	SubjectIssuer string
	Nonce         string
	Client        Client
}

// TokenExchange runs an RFC 8693 exchange through the same checks as
// Exchange.
func (s *Service) TokenExchange(ctx context.Context, req TokenExchangeRequest) (*Result, error) {
	if req.SubjectToken == "" {
		return nil, newError(KindInvalidRequest, ReasonMissingSubjectToken, "subject_token is required", nil)
	}
	var c providers.Credential
	switch req.SubjectTokenType {
	case "":
		return nil, newError(KindInvalidRequest, ReasonMissingSubjectTokenType, "subject_token_type is required", nil)
	case TokenTypeIDToken:
		c.IDToken = req.SubjectToken
	case TokenTypeAccessToken:
		c.AccessToken = req.SubjectToken
	default:
		return nil, newError(KindInvalidRequest, ReasonUnsupportedTokenType,
			"subject_token_type must be "+TokenTypeIDToken+" or "+TokenTypeAccessToken, nil)
	}
	if req.SubjectIssuer == "" {
		return nil, newError(KindInvalidRequest, ReasonMissingSubjectIssuer,
			"subject_issuer is required: a provider's name or its issuer URL", nil)
	}
	name, ok := s.providerFor(req.SubjectIssuer)
	if !ok {
		return nil, newError(KindUnsupportedProvider, ReasonProviderMissing, "no provider of that name or issuer is configured", nil)
	}
	c.Nonce = req.Nonce
	return s.Exchange(ctx, ExchangeRequest{Provider: name, Credential: c, Client: req.Client})
}

// providerFor resolves a subject_issuer: a provider's name first, then an
// issuer URL (trailing slash ignored). Two providers sharing one issuer
// (two client setups of one IdP) make the URL ambiguous: it then matches
// none, and the client must use the name.
func (s *Service) providerFor(subjectIssuer string) (string, bool) {
	if _, ok := s.providers[subjectIssuer]; ok {
		return subjectIssuer, true
	}
	want := strings.TrimSuffix(subjectIssuer, "/")
	found := ""
	for name, p := range s.providers {
		if iss := p.issuer(); iss != "" && strings.TrimSuffix(iss, "/") == want {
			if found != "" {
				return "", false
			}
			found = name
		}
	}
	return found, found != ""
}

func (p Provider) issuer() string {
	if p.Issuer != "" {
		return p.Issuer
	}
	if v, ok := p.Verifier.(interface{ Issuer() string }); ok {
		return v.Issuer()
	}
	return ""
}

// RefreshForClient is Refresh at the OAuth token endpoint: when the session
// was issued to a client, only that client may refresh it (RFC 6749 §6).
// client is nil when no clients are configured.
func (s *Service) RefreshForClient(ctx context.Context, token string, client *AuthenticatedClient) (*Result, error) {
	return s.refresh(ctx, token, client)
}

// Revoke is RFC 7009: a refresh token or an access token revokes its
// session. Unknown, malformed or expired tokens, and tokens issued to
// another client, are not errors (the answer must not help probe tokens);
// they revoke nothing.
func (s *Service) Revoke(ctx context.Context, token string, client *AuthenticatedClient) error {
	var sid string
	if id, _, err := s.parseRefreshToken(token); err == nil {
		sid = id
	} else if claims, err := s.verifyAccess(token); err == nil {
		sid = claims.SessionID
	} else {
		return nil
	}
	sess, err := s.store.GetSession(ctx, sid)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return storeError(err)
	}
	if sess.Revoked() || (client != nil && sess.ClientID != "" && sess.ClientID != client.ID) {
		return nil
	}
	if err := s.revokeSession(ctx, sid, s.now().UTC(), RevokeReasonOAuthRevoke); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: EventSessionRevoked, UserID: sess.UserID, SessionID: sid, Detail: "oauth revoke"})
	return nil
}

// Introspection is an RFC 7662 answer. Only Active is set for an inactive token.
type Introspection struct {
	Active    bool
	TokenType string // "Bearer" (access token) or "refresh_token"
	Subject   string
	ClientID  string
	Issuer    string
	Audience  []string
	ExpiresAt int64
	IssuedAt  int64
	SessionID string
	JTI       string
	// Username is the user's username, read from the live record (RFC
	// 7662's "username"); "" for an account without one.
	Username string
}

// Introspect reports whether one of our tokens is active now: signed here,
// not expired, its session live and its user present and enabled.
func (s *Service) Introspect(ctx context.Context, token string) (*Introspection, error) {
	inactive := &Introspection{}
	if sid, gen, err := s.parseRefreshToken(token); err == nil {
		sess, user, ok, err := s.liveSession(ctx, sid)
		if err != nil || !ok {
			return inactive, err
		}
		if gen != sess.Generation && !s.inGrace(sess, gen, s.now()) {
			return inactive, nil
		}
		return &Introspection{
			Active: true, TokenType: "refresh_token", Subject: user.ID, ClientID: sess.ClientID,
			Issuer: s.cfg.Issuer, ExpiresAt: sess.IdleExpiresAt.Unix(), IssuedAt: sess.RotatedAt.Unix(), SessionID: sess.ID,
			Username: user.Username,
		}, nil
	}
	claims, err := s.verifyAccess(token)
	if err != nil {
		return inactive, nil
	}
	_, user, ok, err := s.liveSession(ctx, claims.SessionID)
	if err != nil || !ok {
		return inactive, err
	}
	out := &Introspection{
		Active: true, TokenType: "Bearer", Subject: claims.Subject, ClientID: claims.ClientID,
		Issuer: claims.Issuer, Audience: claims.Audience, SessionID: claims.SessionID, JTI: claims.ID,
		Username: user.Username,
	}
	if claims.ExpiresAt != nil {
		out.ExpiresAt = claims.ExpiresAt.Unix()
	}
	if claims.IssuedAt != nil {
		out.IssuedAt = claims.IssuedAt.Unix()
	}
	return out, nil
}

// liveSession returns the session and its user when both are still good.
func (s *Service) liveSession(ctx context.Context, sid string) (storage.Session, storage.User, bool, error) {
	sess, user, err := s.sessionUser(ctx, sid)
	if errors.Is(err, storage.ErrNotFound) {
		return sess, user, false, nil
	}
	if err != nil {
		return sess, user, false, storeError(err)
	}
	if sess.Revoked() || sess.Expired(s.now()) {
		return sess, user, false, nil
	}
	return sess, user, !user.Disabled, nil
}
