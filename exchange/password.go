package exchange

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/authex/authex/providers"
	"github.com/authex/authex/storage"
)

// PasswordProvider is the provider name of password accounts: the `idp` and
// `amr` of their sessions and the Provider of their identity.
const PasswordProvider = "password"

// PasswordIssuerSuffix makes the issuer of password identities: our public
// URL + "#password". The subject is the user id.
const PasswordIssuerSuffix = "#password"

// Password policy limits.
const (
	DefaultMinPasswordLength = 8
	MaxPasswordLength        = 1024 // runes; bounds the hashing work one request can ask for
)

// Reasons of the password provider.
const (
	ReasonInvalidCredentials   = "invalid_credentials"
	ReasonRateLimited          = "rate_limited"
	ReasonMissingEmail         = "missing_email"
	ReasonMissingPassword      = "missing_password"
	ReasonInvalidEmail         = "invalid_email"
	ReasonEmailTaken           = "email_taken"
	ReasonNoEmail              = "no_email"
	ReasonPasswordTooShort     = "password_too_short"
	ReasonPasswordTooLong      = "password_too_long"
	ReasonPasswordTooCommon    = "password_too_common"
	ReasonPasswordMatchesEmail = "password_matches_email"
	ReasonPasswordsOff         = "passwords_disabled"
)

// PasswordConfig enables password accounts.
type PasswordConfig struct {
	Argon2      Argon2Params
	MinLength   int
	AllowSignup bool
	// Failed logins allowed at once per account (email) and per client IP;
	// each budget refills in full over Window.
	AccountBurst int
	IPBurst      int
	Window       time.Duration
}

//go:embed common_passwords.txt
var commonPasswordsText string

// commonPasswords is the refusal list, lower-cased.
var commonPasswords = func() map[string]bool {
	m := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(commonPasswordsText))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			m[strings.ToLower(line)] = true
		}
	}
	return m
}()

type passwords struct {
	cfg PasswordConfig
	// dummy is the hash of a random password under the current parameters:
	// a login for an unknown email checks against it, so it costs what a
	// wrong password costs and the answer time tells nothing.
	dummy   string
	account *throttle
	ip      *throttle
}

func newPasswords(cfg PasswordConfig) (*passwords, error) {
	if cfg.MinLength <= 0 {
		cfg.MinLength = DefaultMinPasswordLength
	}
	if cfg.Argon2 == (Argon2Params{}) {
		cfg.Argon2 = DefaultArgon2
	}
	if cfg.AccountBurst <= 0 || cfg.IPBurst <= 0 || cfg.Window <= 0 {
		return nil, errors.New("password throttle: bursts and window must be positive")
	}
	dummy, err := hashPassword(newID(), cfg.Argon2)
	if err != nil {
		return nil, err
	}
	return &passwords{cfg: cfg, dummy: dummy,
		account: newThrottle(cfg.AccountBurst, cfg.Window), ip: newThrottle(cfg.IPBurst, cfg.Window)}, nil
}

// PasswordsEnabled reports whether the password provider is configured.
func (s *Service) PasswordsEnabled() bool { return s.pw != nil }

func (s *Service) passwordIssuer() string { return s.cfg.Issuer + PasswordIssuerSuffix }

func passwordsOff() error {
	return newError(KindUnsupportedProvider, ReasonPasswordsOff, "password accounts are not enabled on this server", nil)
}

func invalidCredentials() error {
	return newError(KindInvalidCredentials, ReasonInvalidCredentials, "email or password is wrong", nil)
}

// CheckPassword applies the password policy: length, the list of common
// passwords, and not the account's own email. It answers an *Error with
// KindInvalidRequest and one of the password_* reasons.
func (s *Service) CheckPassword(password, email string) error {
	if s.pw == nil {
		return passwordsOff()
	}
	n := utf8.RuneCountInString(password)
	switch {
	case n < s.pw.cfg.MinLength:
		return newError(KindInvalidRequest, ReasonPasswordTooShort,
			fmt.Sprintf("password must be at least %d characters long", s.pw.cfg.MinLength), nil)
	case n > MaxPasswordLength:
		return newError(KindInvalidRequest, ReasonPasswordTooLong,
			fmt.Sprintf("password must be at most %d characters long", MaxPasswordLength), nil)
	case commonPasswords[strings.ToLower(password)]:
		return newError(KindInvalidRequest, ReasonPasswordTooCommon, "password is too common; choose another", nil)
	}
	if email != "" {
		local, _, _ := strings.Cut(email, "@")
		if strings.EqualFold(password, email) || strings.EqualFold(password, local) {
			return newError(KindInvalidRequest, ReasonPasswordMatchesEmail, "password must not be the email address", nil)
		}
	}
	return nil
}

// normalizeEmail checks that email is one bare address and returns it
// trimmed (its case is kept; indexes compare case-insensitively).
func normalizeEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return "", newError(KindInvalidRequest, ReasonMissingEmail, "email is required", nil)
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" || len(email) > 254 {
		return "", newError(KindInvalidRequest, ReasonInvalidEmail, "email is not a valid address", nil)
	}
	return email, nil
}

// RegisterRequest creates a password account.
type RegisterRequest struct {
	Email    string
	Password string
	Name     string
	Client   Client
	// NoSession creates the account without signing in (the Result then
	// holds only User and Created).
	NoSession bool
}

// Register creates a password account. Its email is unverified: it is not
// in the verified-email index and never captures a provider identity.
func (s *Service) Register(ctx context.Context, req RegisterRequest) (res *Result, err error) {
	defer func() { s.observeSignIn(PasswordProvider, res, err) }()
	if s.pw == nil {
		return nil, passwordsOff()
	}
	if err := s.clientAllows(req.Client.ID, PasswordProvider); err != nil {
		return nil, err
	}
	email, err := normalizeEmail(req.Email)
	if err != nil {
		return nil, err
	}
	if req.Password == "" {
		return nil, newError(KindInvalidRequest, ReasonMissingPassword, "password is required", nil)
	}
	if err := s.CheckPassword(req.Password, email); err != nil {
		return nil, err
	}
	if !s.pw.cfg.AllowSignup {
		return nil, newError(KindAccessDenied, ReasonSignupDisabled, "this server does not allow new password accounts", nil)
	}
	// An address a verified identity owns, or another password account
	// holds, is taken. (This tells a caller that the address has an
	// account, as every sign-up form does; login never does.)
	for _, lookup := range []func(context.Context, string) (storage.User, error){
		s.store.GetUserByVerifiedEmail, s.store.GetUserByPasswordEmail,
	} {
		_, err := lookup(ctx, email)
		if err == nil {
			return nil, emailTaken()
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, storeError(err)
		}
	}
	hash, err := hashPassword(req.Password, s.pw.cfg.Argon2)
	if err != nil {
		return nil, newError(KindServer, "", "internal error", err)
	}
	now := s.now().UTC()
	user := storage.User{ID: newID(), Email: email, Name: strings.TrimSpace(req.Name), Roles: []string{},
		PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateUser(ctx, user, s.passwordIdentity(user, now)); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, emailTaken() // a concurrent registration won
		}
		return nil, storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: "user.created", UserID: user.ID, Provider: PasswordProvider})
	if req.NoSession {
		return &Result{User: user, Created: true}, nil
	}
	return s.startSession(ctx, user, true, PasswordProvider, req.Client)
}

func emailTaken() error {
	return newError(KindAccountExists, ReasonEmailTaken, "an account with this email already exists", nil)
}

func (s *Service) passwordIdentity(u storage.User, now time.Time) storage.Identity {
	return storage.Identity{ID: newID(), UserID: u.ID, Provider: PasswordProvider, Issuer: s.passwordIssuer(),
		Subject: u.ID, Email: u.Email, CreatedAt: now, LastLoginAt: now}
}

// LoginRequest signs a password account in.
type LoginRequest struct {
	Email    string
	Password string
	Client   Client
}

// Login checks an email and password. Every failure is the one
// invalid_credentials, and an unknown email costs the same hashing as a
// wrong password. Failures are throttled per account and per client IP.
func (s *Service) Login(ctx context.Context, req LoginRequest) (res *Result, err error) {
	defer func() { s.observeSignIn(PasswordProvider, res, err) }()
	if s.pw == nil {
		return nil, passwordsOff()
	}
	if err := s.clientAllows(req.Client.ID, PasswordProvider); err != nil {
		return nil, err
	}
	email := strings.TrimSpace(req.Email)
	if email == "" {
		return nil, newError(KindInvalidRequest, ReasonMissingEmail, "email is required", nil)
	}
	if req.Password == "" {
		return nil, newError(KindInvalidRequest, ReasonMissingPassword, "password is required", nil)
	}
	user, err := s.checkCredentials(ctx, email, req.Password, req.Client.IP)
	if err != nil {
		return nil, err
	}
	if user.Disabled {
		return nil, disabledError()
	}
	s.rehashIfStale(ctx, user, req.Password)
	now := s.now()
	if ident, err := s.store.GetIdentity(ctx, s.passwordIssuer(), user.ID); err == nil && now.Sub(ident.LastLoginAt) > time.Hour {
		if err := s.store.TouchIdentity(ctx, ident.ID, now); err != nil {
			s.log.WarnContext(ctx, "touch identity", "err", err)
		}
	}
	return s.startSession(ctx, user, false, PasswordProvider, req.Client)
}

// checkCredentials is the throttled password check of Login and of a
// password change.
func (s *Service) checkCredentials(ctx context.Context, email, password, ip string) (storage.User, error) {
	now := s.now()
	accountKey := strings.ToLower(email)
	if wait := max(s.pw.account.wait(accountKey, now), s.pw.ip.wait(ip, now)); wait > 0 {
		e := newError(KindRateLimited, ReasonRateLimited, "too many failed sign-ins; try again later", nil)
		e.RetryAfter = wait
		return storage.User{}, e
	}
	user, err := s.store.GetUserByPasswordEmail(ctx, email)
	hash := user.PasswordHash
	switch {
	case errors.Is(err, storage.ErrNotFound):
		hash = s.pw.dummy
	case err != nil:
		return storage.User{}, storeError(err)
	}
	ok, _, err := checkPassword(password, hash)
	if err != nil {
		s.log.ErrorContext(ctx, "stored password hash is unreadable", "user_id", user.ID, "err", err)
		ok = false
	}
	if !ok || user.ID == "" {
		s.pw.account.fail(accountKey, now)
		s.pw.ip.fail(ip, now)
		return storage.User{}, invalidCredentials()
	}
	return user, nil
}

// rehashIfStale rehashes a password whose hash was made under other
// parameters than the configured ones. It re-reads the user first and
// writes only when the hash is still the one checked, so it does not undo
// a password change made meanwhile (a narrow window remains: the store
// has no compare-and-swap for users).
func (s *Service) rehashIfStale(ctx context.Context, user storage.User, password string) {
	h, err := parsePHC(user.PasswordHash)
	if err != nil || h.params == s.pw.cfg.Argon2 {
		return
	}
	hash, err := hashPassword(password, s.pw.cfg.Argon2)
	if err != nil {
		return
	}
	fresh, err := s.store.GetUser(ctx, user.ID)
	if err != nil || fresh.PasswordHash != user.PasswordHash {
		return
	}
	fresh.PasswordHash, fresh.UpdatedAt = hash, s.now().UTC()
	if err := s.store.UpdateUser(ctx, fresh); err != nil {
		s.log.WarnContext(ctx, "rehash password", "user_id", user.ID, "err", err)
	}
}

// SetPasswordRequest changes (or, for a user without one, sets) the
// password of the caller.
type SetPasswordRequest struct {
	Current string // required when the user has a password
	New     string
	IP      string
}

// SetPassword changes the caller's password and revokes every other
// session of the user; it returns how many it revoked. A user without a
// password (signed up with a provider) gets one, and with it a password
// identity; its email must then not be another password account's.
func (s *Service) SetPassword(ctx context.Context, p *Principal, req SetPasswordRequest) (int, error) {
	if s.pw == nil {
		return 0, passwordsOff()
	}
	user, err := s.store.GetUser(ctx, p.User.ID)
	if err != nil {
		return 0, storeError(err)
	}
	if user.Email == "" {
		return 0, newError(KindInvalidRequest, ReasonNoEmail, "the account has no email to sign in with", nil)
	}
	if req.New == "" {
		return 0, newError(KindInvalidRequest, ReasonMissingPassword, "new_password is required", nil)
	}
	if user.PasswordHash != "" {
		if req.Current == "" {
			return 0, newError(KindInvalidRequest, "missing_current_password", "current_password is required", nil)
		}
		owner, err := s.checkCredentials(ctx, user.Email, req.Current, req.IP)
		if err != nil {
			return 0, err
		}
		if owner.ID != user.ID {
			return 0, invalidCredentials() // the index names someone else: never accept their password
		}
	}
	if err := s.CheckPassword(req.New, user.Email); err != nil {
		return 0, err
	}
	hash, err := hashPassword(req.New, s.pw.cfg.Argon2)
	if err != nil {
		return 0, newError(KindServer, "", "internal error", err)
	}
	now := s.now().UTC()
	hadPassword := user.PasswordHash != ""
	user.PasswordHash, user.UpdatedAt = hash, now
	if err := s.store.UpdateUser(ctx, user); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return 0, emailTaken()
		}
		return 0, storeError(err)
	}
	if !hadPassword {
		if _, err := s.store.GetIdentity(ctx, s.passwordIssuer(), user.ID); errors.Is(err, storage.ErrNotFound) {
			if err := s.store.AddIdentity(ctx, s.passwordIdentity(user, now)); err != nil && !errors.Is(err, storage.ErrConflict) {
				return 0, storeError(err)
			}
		}
	}
	n, err := s.store.RevokeUserSessions(ctx, user.ID, p.Claims.SessionID, now, "password_changed")
	if err != nil {
		return 0, storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: "user.password_changed", UserID: user.ID, SessionID: p.Claims.SessionID,
		Provider: PasswordProvider, Detail: fmt.Sprintf("%d other sessions revoked", n)})
	return n, nil
}

// claimPasswordAccount settles a verified identity whose email an
// unverified password account holds (the pre-registration attack: someone
// registers victim@gmail.com with a password before the victim ever signs
// in with Google). As allauth does, the verified identity wins and takes
// the account; everything the password holder could use is removed: the
// password is wiped, every session revoked, every other identity unlinked.
// Called only for providers whose verified email links automatically.
// ok is false when no password account holds the email.
func (s *Service) claimPasswordAccount(ctx context.Context, id providers.Identity, ident storage.Identity) (storage.User, bool, error) {
	user, err := s.store.GetUserByPasswordEmail(ctx, id.Email)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, false, nil
	}
	if err != nil {
		return storage.User{}, false, storeError(err)
	}
	if user.EmailVerified {
		return storage.User{}, false, nil // a verified owner is in the verified index: not ours to settle
	}
	if user.Disabled {
		return storage.User{}, false, disabledError()
	}
	now := s.now().UTC()
	// The password goes first: from this write on, it opens nothing.
	user.PasswordHash, user.EmailVerified, user.Email, user.UpdatedAt = "", true, id.Email, now
	if id.Name != "" {
		user.Name = id.Name
	}
	if id.Picture != "" {
		user.Picture = id.Picture
	}
	if err := s.store.UpdateUser(ctx, user); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return storage.User{}, false, err // a concurrent sign-in took the address: read again
		}
		return storage.User{}, false, storeError(err)
	}
	revoked, err := s.store.RevokeUserSessions(ctx, user.ID, "", now, "claimed_by_verified_identity")
	if err != nil {
		return storage.User{}, false, storeError(err)
	}
	idents, err := s.store.ListIdentities(ctx, user.ID)
	if err != nil {
		return storage.User{}, false, storeError(err)
	}
	removed := 0
	for _, old := range idents {
		if old.Issuer == ident.Issuer && old.Subject == ident.Subject {
			continue // a concurrent sign-in of this same identity got here first
		}
		if err := s.store.DeleteIdentity(ctx, user.ID, old.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return storage.User{}, false, storeError(err)
		}
		removed++
	}
	ident.UserID = user.ID
	if err := s.store.AddIdentity(ctx, ident); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return storage.User{}, false, err
		}
		return storage.User{}, false, storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: "user.claimed", UserID: user.ID, Provider: id.Provider,
		Detail: fmt.Sprintf("unverified password account taken by a verified identity: password wiped, %d sessions revoked, %d identities unlinked", revoked, removed)})
	s.log.WarnContext(ctx, "unverified password account claimed by a verified identity", "user_id", user.ID, "provider", id.Provider)
	return user, true, nil
}

// removePassword is the unlinking of a password identity: the password goes
// with it (the hash is the sign-in method; the identity only names it).
// The caller holds linkMu and has checked that target belongs to user.
func (s *Service) removePassword(ctx context.Context, user storage.User, idents []storage.Identity, target storage.Identity) error {
	if len(idents) < 2 {
		return lastIdentityError()
	}
	user.PasswordHash, user.UpdatedAt = "", s.now().UTC()
	if err := s.store.UpdateUser(ctx, user); err != nil {
		return storeError(err)
	}
	if err := s.store.DeleteIdentity(ctx, user.ID, target.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: "identity.unlinked", UserID: user.ID, Provider: PasswordProvider,
		Detail: "password removed with identity " + target.ID})
	return nil
}
