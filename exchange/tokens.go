package exchange

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authex/authex/exchange/keyring"
	"github.com/authex/authex/providers"
	"github.com/authex/authex/storage"
)

// AccessClaims are the claims of our access token (RFC 9068).
type AccessClaims struct {
	jwt.RegisteredClaims
	ClientID      string `json:"client_id,omitempty"`
	SessionID     string `json:"sid"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name,omitempty"`
	// PreferredUsername is the user's username (OIDC's claim name), when
	// the account has one.
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Roles             []string `json:"roles"`
	AMR               []string `json:"amr,omitempty"`
	IDP               string   `json:"idp,omitempty"`
}

const typAccess = "at+jwt"

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
		ClientID:          sess.ClientID,
		SessionID:         sess.ID,
		Email:             u.Email,
		EmailVerified:     u.EmailVerified,
		Name:              u.Name,
		PreferredUsername: u.Username,
		Roles:             roles,
		AMR:               amr,
		IDP:               sess.Provider,
	}
}

func (s *Service) mac(purpose string, sess storage.Session) string {
	return macWith(s.macSecretFor(sess), purpose, sess.ID, sess.Generation)
}

// A link_token (409 account_exists) carries a verified identity that is
// waiting to be linked to an existing account. It is sealed, not signed:
// AES-256-GCM under linkKey, a key derived from the refresh-token MAC
// secret that is never published, so
//   - nobody can read it: the identity's email and subject stay private,
//     and a log or a browser that sees the token learns nothing;
//   - nothing verifies it but authex: it is not a JWT, and no API that
//     checks our access tokens against the JWKS can be fooled into taking
//     it for one.
//
// Its form is "lt1." + base64url(nonce || ciphertext); the AAD names the
// issuer, so a token of another deployment never opens here. It carries
// only what redemption writes (the identity record) and Owner, a MAC of
// the existing account's user id that binds the token to that account.
// Tokens of the former JWT form are refused (malformed); they lived ten
// minutes.
type linkClaims struct {
	Owner         string `json:"owner"`
	Provider      string `json:"provider"`
	IDPIssuer     string `json:"idp_iss"`
	IDPSubject    string `json:"idp_sub"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified,omitempty"`
	ExpiresAt     int64  `json:"exp"`
}

// LinkTokenTTL is how long a link_token stays valid.
const LinkTokenTTL = 10 * time.Minute

const (
	linkPrefix = "lt1."
	// maxLinkToken bounds what the parser decodes: a sealed token is a
	// few hundred bytes (subjects and emails are bounded upstream).
	maxLinkToken = 4096
)

var (
	errLinkMalformed = errors.New("link token: malformed")
	errLinkForged    = errors.New("link token: does not open under our key")
	errLinkExpired   = errors.New("link token: expired")
)

// linkOwner is the Owner claim of a link_token meant for userID, made
// with the MAC secret that signs now.
func (s *Service) linkOwner(userID string) string {
	return macWith(s.keys.MACs().At(s.now()), "link-owner", userID, 0)
}

// isLinkOwner checks an Owner claim against every MAC secret held, in
// constant time each, so a rotation does not void a pending link_token.
func (s *Service) isLinkOwner(owner, userID string) bool {
	ok := false
	for _, m := range s.keys.MACs().List {
		if hmac.Equal([]byte(owner), []byte(macWith(m, "link-owner", userID, 0))) {
			ok = true
		}
	}
	return ok
}

// linkKey is the link_token sealing key: derived from a refresh MAC
// secret under its own label, so it is never stored or published itself
// and is as well kept as that secret. Tokens are sealed under the key of
// the secret that signs now and opened under any secret still held, so a
// MAC-secret rotation does not void a pending link_token.
func linkKey(m *keyring.MACSecret) []byte {
	return m.Sum(nil, []byte("authex link_token AES-256-GCM key v1"))
}

// openLinkTokenAnyKey opens raw under the link key of each MAC secret held.
func (s *Service) openLinkTokenAnyKey(raw string) (*linkClaims, error) {
	err := errLinkForged
	for _, m := range s.keys.MACs().List {
		claims, oerr := openLinkToken(linkKey(m), s.cfg.Issuer, raw, s.now())
		if oerr == nil {
			return claims, nil
		}
		if !errors.Is(oerr, errLinkForged) {
			return nil, oerr // malformed or expired: no other key changes that
		}
	}
	return nil, err
}

func (s *Service) linkToken(id providers.Identity, ownerID string) (string, error) {
	claims := linkClaims{
		Owner:         s.linkOwner(ownerID),
		Provider:      id.Provider,
		IDPIssuer:     id.Issuer,
		IDPSubject:    id.Subject,
		Email:         id.Email,
		EmailVerified: id.EmailVerified,
		ExpiresAt:     s.now().Add(LinkTokenTTL).Unix(),
	}
	return sealLinkToken(linkKey(s.keys.MACs().At(s.now())), s.cfg.Issuer, claims)
}

func linkAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func sealLinkToken(key []byte, issuer string, claims linkClaims) (string, error) {
	aead, err := linkAEAD(key)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := aead.Seal(nonce, nonce, plain, []byte(linkPrefix+issuer))
	return linkPrefix + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// openLinkToken is the link_token parser: bounded, strict, and it reads
// nothing before the AEAD has authenticated it.
func openLinkToken(key []byte, issuer, raw string, now time.Time) (*linkClaims, error) {
	body, ok := strings.CutPrefix(raw, linkPrefix)
	if !ok || len(raw) > maxLinkToken {
		return nil, errLinkMalformed
	}
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil {
		return nil, errLinkMalformed
	}
	aead, err := linkAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, errLinkMalformed
	}
	nonce, ct := sealed[:aead.NonceSize()], sealed[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, ct, []byte(linkPrefix+issuer))
	if err != nil {
		return nil, errLinkForged
	}
	var claims linkClaims
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&claims); err != nil || dec.More() {
		return nil, errLinkMalformed
	}
	if claims.Owner == "" || claims.Provider == "" || claims.IDPIssuer == "" || claims.IDPSubject == "" {
		return nil, errLinkMalformed
	}
	if !now.Before(time.Unix(claims.ExpiresAt, 0)) {
		return nil, errLinkExpired
	}
	return &claims, nil
}

func (s *Service) parseJWT(raw, typ string, claims jwt.Claims, opts ...jwt.ParserOption) error {
	opts = append(opts,
		jwt.WithValidMethods([]string{AlgES256, AlgEdDSA, AlgRS256}),
		jwt.WithIssuer(s.cfg.Issuer),
		jwt.WithLeeway(accessLeeway),
		jwt.WithTimeFunc(s.now),
		jwt.WithExpirationRequired(),
	)
	t, err := jwt.ParseWithClaims(raw, claims, s.keys.Keyfunc, opts...)
	if err != nil {
		return err
	}
	if got, _ := t.Header["typ"].(string); !strings.EqualFold(got, typ) {
		return errors.New("wrong token type")
	}
	return nil
}
