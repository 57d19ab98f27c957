package exchange

import (
	"crypto/hmac"
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authex/authex/providers"
	"github.com/authex/authex/storage"
)

// AccessClaims are the claims of our access token (RFC 9068).
type AccessClaims struct {
	jwt.RegisteredClaims
	ClientID      string   `json:"client_id,omitempty"`
	SessionID     string   `json:"sid"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name,omitempty"`
	Roles         []string `json:"roles"`
	AMR           []string `json:"amr,omitempty"`
	IDP           string   `json:"idp,omitempty"`
}

const (
	typAccess = "at+jwt"
	typLink   = "link+jwt"
)

// accessClaims builds the claims for a session at its current generation.
// Every value comes from the session and user records, never from the clock,
// so the token for one (session, generation) is always the same: the reuse
// grace relies on it.
func (s *Service) accessClaims(sess storage.Session, u storage.User) AccessClaims {
	iat := sess.RotatedAt.Truncate(time.Second)
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	var amr []string
	if sess.Provider != "" {
		amr = []string{sess.Provider}
	}
	return AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:   s.cfg.Issuer,
			Subject:  u.ID,
			Audience: s.cfg.Audience,
			// Never past the session's absolute limit: an API verifying
			// offline cannot see the session.
			ExpiresAt: jwt.NewNumericDate(minTime(iat.Add(s.cfg.AccessTTL), sess.ExpiresAt.Truncate(time.Second))),
			IssuedAt:  jwt.NewNumericDate(iat),
			ID:        s.mac("jti", sess)[:22],
		},
		ClientID:      sess.ClientID,
		SessionID:     sess.ID,
		Email:         u.Email,
		EmailVerified: u.EmailVerified,
		Name:          u.Name,
		Roles:         roles,
		AMR:           amr,
		IDP:           sess.Provider,
	}
}

func (s *Service) mac(purpose string, sess storage.Session) string {
	return macWith(s.macSecretFor(sess).key, purpose, sess.ID, sess.Generation)
}

// LinkClaims carry a verified identity that is waiting to be linked to an
// existing account. They say nothing about that account: Owner is a MAC of
// its user id, which binds the token to that account (only someone signed
// in to it can redeem the token) without naming it.
type LinkClaims struct {
	jwt.RegisteredClaims
	Owner         string `json:"owner"`
	Provider      string `json:"provider"`
	IDPIssuer     string `json:"idp_iss"`
	IDPSubject    string `json:"idp_sub"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name,omitempty"`
	Picture       string `json:"picture,omitempty"`
}

const linkAudience = "authex:link"

// LinkTokenTTL is how long a link_token stays valid.
const LinkTokenTTL = 10 * time.Minute

// linkOwner is the Owner claim of a link_token meant for userID, made
// with the MAC secret that signs now.
func (s *Service) linkOwner(userID string) string {
	return macWith(s.keys.macRing().at(s.now()).key, "link-owner", userID, 0)
}

// isLinkOwner checks an Owner claim against every MAC secret held, in
// constant time each, so a rotation does not void a pending link_token.
func (s *Service) isLinkOwner(owner, userID string) bool {
	ok := false
	for _, m := range s.keys.macRing().list {
		if hmac.Equal([]byte(owner), []byte(macWith(m.key, "link-owner", userID, 0))) {
			ok = true
		}
	}
	return ok
}

func (s *Service) linkToken(id providers.Identity, ownerID string) (string, error) {
	now := s.now()
	claims := LinkClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Audience:  jwt.ClaimStrings{linkAudience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(LinkTokenTTL)),
		},
		Owner:         s.linkOwner(ownerID),
		Provider:      id.Provider,
		IDPIssuer:     id.Issuer,
		IDPSubject:    id.Subject,
		Email:         id.Email,
		EmailVerified: id.EmailVerified,
		Name:          id.Name,
		Picture:       id.Picture,
	}
	return s.keys.sign(typLink, claims)
}

func (s *Service) parseJWT(raw, typ string, claims jwt.Claims, opts ...jwt.ParserOption) error {
	opts = append(opts,
		jwt.WithValidMethods([]string{AlgES256, AlgEdDSA, AlgRS256}),
		jwt.WithIssuer(s.cfg.Issuer),
		jwt.WithLeeway(accessLeeway),
		jwt.WithTimeFunc(s.now),
		jwt.WithExpirationRequired(),
	)
	t, err := jwt.ParseWithClaims(raw, claims, s.keys.keyfunc, opts...)
	if err != nil {
		return err
	}
	if got, _ := t.Header["typ"].(string); !strings.EqualFold(got, typ) {
		return errors.New("wrong token type")
	}
	return nil
}
