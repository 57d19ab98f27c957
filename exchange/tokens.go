package exchange

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
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
			ID:        s.mac("jti", sess.ID, sess.Generation)[:22],
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

// refreshToken derives the refresh token of a session generation:
// session_id.generation.MAC. The store keeps only the generation, so a
// stolen database yields no usable token.
func (s *Service) refreshToken(sessionID string, generation uint64) string {
	return sessionID + "." + strconv.FormatUint(generation, 10) + "." + s.mac("refresh", sessionID, generation)
}

var errBadRefreshToken = errors.New("refresh token is not one of ours")

// parseRefreshToken checks the MAC in constant time and returns the parts.
func (s *Service) parseRefreshToken(token string) (sessionID string, generation uint64, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" {
		return "", 0, errBadRefreshToken
	}
	generation, err = strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return "", 0, errBadRefreshToken
	}
	want := s.mac("refresh", parts[0], generation)
	if !hmac.Equal([]byte(want), []byte(parts[2])) {
		return "", 0, errBadRefreshToken
	}
	return parts[0], generation, nil
}

func (s *Service) mac(purpose, sessionID string, generation uint64) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(sessionID))
	m.Write([]byte{0})
	m.Write(strconv.AppendUint(nil, generation, 10))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
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

// linkOwner is the Owner claim of a link_token meant for userID.
func (s *Service) linkOwner(userID string) string {
	return s.mac("link-owner", userID, 0)
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
