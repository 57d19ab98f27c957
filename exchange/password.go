package exchange

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
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

// PasswordConfig enables password accounts.
type PasswordConfig struct {
	Argon2      Argon2Params
	MinLength   int
	AllowSignup bool
	// Failed logins allowed at once per account (email) from one network
	// (a /24 or an IPv6 /48), and per client IP; each budget refills in
	// full over Window.
	AccountBurst int
	IPBurst      int
	// AccountTotalBurst: failed logins allowed at once per account from
	// all networks together (0: 10 x AccountBurst), refilled over Window.
	AccountTotalBurst int
	// Registrations allowed at once per client IP (every attempt counts),
	// refilled over Window.
	RegisterBurst int
	Window        time.Duration
	// ThrottleKeys: how many partly spent buckets each in-memory budget
	// remembers; past that, attempts on new keys are refused until one
	// refills (0: 100000). Budgets kept in the store have no such cap.
	ThrottleKeys int
	// ReauthWindow: setting a first password needs a session created this
	// recently (0: DefaultReauthWindow).
	ReauthWindow time.Duration
	// HashConcurrency bounds the argon2id hashes in flight (0: twice
	// GOMAXPROCS); a request waits at most HashWait for a slot (0:
	// DefaultHashWait), then is refused with KindBusy.
	HashConcurrency int
	HashWait        time.Duration
}

// DefaultReauthWindow is how recent a sign-in must be to set a first password.
const DefaultReauthWindow = 5 * time.Minute

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
	dummy string
	// Budgets (throttle.go), taken in this order: ip, then accountNet (the
	// account from the client's network), then account (from everywhere).
	ip         limiter
	accountNet limiter
	account    limiter
	register   limiter
	gate       *hashGate
}

func newPasswords(cfg PasswordConfig, store storage.Store, log *slog.Logger) (*passwords, error) {
	if cfg.MinLength <= 0 {
		cfg.MinLength = DefaultMinPasswordLength
	}
	if cfg.Argon2 == (Argon2Params{}) {
		cfg.Argon2 = DefaultArgon2
	}
	if cfg.AccountBurst <= 0 || cfg.IPBurst <= 0 || cfg.Window <= 0 {
		return nil, errors.New("password throttle: bursts and window must be positive")
	}
	if cfg.RegisterBurst <= 0 {
		cfg.RegisterBurst = 10
	}
	if cfg.AccountTotalBurst <= 0 {
		cfg.AccountTotalBurst = 10 * cfg.AccountBurst
	}
	if cfg.ReauthWindow <= 0 {
		cfg.ReauthWindow = DefaultReauthWindow
	}
	dummy, err := hashPassword(newID(), cfg.Argon2)
	if err != nil {
		return nil, err
	}
	budget := func(name string, burst int) limiter {
		return newLimiter(store, name, burst, cfg.Window, cfg.ThrottleKeys, log)
	}
	return &passwords{cfg: cfg, dummy: dummy,
		ip: budget("login-ip", cfg.IPBurst), accountNet: budget("login-account-net", cfg.AccountBurst),
		account: budget("login-account", cfg.AccountTotalBurst), register: budget("register-ip", cfg.RegisterBurst),
		gate: newHashGate(cfg.HashConcurrency, cfg.HashWait)}, nil
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
	// Username is optional (CheckUsername's rules); GivenName and
	// FamilyName are the name in two parts, when the form asks for them.
	Username   string
	GivenName  string
	FamilyName string
	Client     Client
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
	username := strings.TrimSpace(req.Username)
	if username != "" {
		if err := CheckUsername(username); err != nil {
			return nil, err
		}
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
	// Every registration that gets this far costs its IP a token, taken
	// before the hashing: a sign-up flood is a hashing (and account) flood.
	if wait, err := s.pw.register.take(ctx, clientKey(req.Client.IP), s.now()); err != nil || wait > 0 {
		if err != nil {
			return nil, err
		}
		return nil, rateLimited(wait, "too many registrations from this address; try again later")
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
	if username != "" {
		if _, err := s.store.GetUserByUsername(ctx, username); err == nil {
			return nil, usernameTaken()
		} else if !errors.Is(err, storage.ErrNotFound) {
			return nil, storeError(err)
		}
	}
	hash, err := s.pw.hash(ctx, req.Password)
	if err != nil {
		// Busy or cancelled: no hashing happened, so it costs no token.
		s.pw.register.refund(ctx, clientKey(req.Client.IP), s.now())
		return nil, err
	}
	now := s.now().UTC()
	user := storage.User{ID: newID(), Email: email, Name: strings.TrimSpace(req.Name), Roles: []string{},
		PasswordHash: hash, CreatedAt: now, UpdatedAt: now, Username: username,
		GivenName: strings.TrimSpace(req.GivenName), FamilyName: strings.TrimSpace(req.FamilyName)}
	err = s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
		first := s.passwordIdentity(user, now)
		if err := tx.CreateUser(ctx, user, first); err != nil {
			return err
		}
		ei := eventIdentity(first)
		return emit(WebhookUserCreated, user.ID, UserData{User: eventUser(user), Identity: &ei})
	})
	if err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, registrationConflict(err) // a concurrent registration won
		}
		return nil, storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: EventUserCreated, UserID: user.ID, Provider: PasswordProvider})
	s.sendVerificationAfterRegister(ctx, user)
	if req.NoSession {
		return &Result{User: user, Created: true}, nil
	}
	res, err = s.startSession(ctx, user, true, PasswordProvider, req.Client)
	if err != nil {
		return nil, err
	}
	// A verified identity may take the new account over before its
	// session is written, as during a login; the address then has an
	// account that is not the caller's.
	return s.keepPasswordSession(ctx, res, hash, "", emailTaken())
}

func rateLimited(wait time.Duration, description string) error {
	e := newError(KindRateLimited, ReasonRateLimited, description, nil)
	e.RetryAfter = wait
	return e
}

func emailTaken() error {
	return newError(KindAccountExists, ReasonEmailTaken, "an account with this email already exists", nil)
}

func (s *Service) passwordIdentity(u storage.User, now time.Time) storage.Identity {
	return storage.Identity{ID: newID(), UserID: u.ID, Provider: PasswordProvider, Issuer: s.passwordIssuer(),
		Subject: u.ID, Email: u.Email, CreatedAt: now, LastLoginAt: now}
}

// LoginRequest signs a password account in. It names the account by
// exactly one of Email, Username, or Identifier (an email when it
// contains '@', a username otherwise).
type LoginRequest struct {
	Email      string
	Username   string
	Identifier string
	Password   string
	Client     Client
}

// Login checks an email or username and a password. Every failure is the
// one invalid_credentials, and an unknown name costs the same hashing as
// a wrong password. Failures are throttled per account and per client IP.
func (s *Service) Login(ctx context.Context, req LoginRequest) (res *Result, err error) {
	defer func() { s.observeSignIn(PasswordProvider, res, err) }()
	if s.pw == nil {
		return nil, passwordsOff()
	}
	if err := s.clientAllows(req.Client.ID, PasswordProvider); err != nil {
		return nil, err
	}
	name, err := loginName(req.Email, req.Username, req.Identifier)
	if err != nil {
		return nil, err
	}
	if req.Password == "" {
		return nil, newError(KindInvalidRequest, ReasonMissingPassword, "password is required", nil)
	}
	user, err := s.checkLogin(ctx, name, req.Password, req.Client.IP)
	if err != nil {
		return nil, err
	}
	if user.Disabled {
		return nil, disabledError()
	}
	verified := s.rehashIfStale(ctx, user, req.Password)
	if ident, err := s.store.GetIdentity(ctx, s.passwordIssuer(), user.ID); err == nil {
		s.touchIdentity(ctx, ident)
	}
	res, err = s.startSession(ctx, user, false, PasswordProvider, req.Client)
	if err != nil {
		return nil, err
	}
	return s.keepPasswordSession(ctx, res, verified, req.Password, invalidCredentials())
}

// keepPasswordSession is the check after write of a password sign-in. The
// password was checked (or set) before the session was written; a
// password change or a takeover (claimPasswordAccount) may have changed
// the hash and revoked every session in between, and this session,
// written after that revocation, would outlive it. Both write the hash
// before they revoke, and the store is linearizable: a hash still the one
// checked, read after our session was written, means any later revocation
// reaches our session too. Otherwise the session is revoked and the
// sign-in answers refusal. A changed hash that the same password still
// opens (a concurrent login upgraded its parameters) is no change.
func (s *Service) keepPasswordSession(ctx context.Context, res *Result, verified, password string, refusal error) (*Result, error) {
	u, err := s.store.GetUser(ctx, res.User.ID)
	switch {
	case err == nil && u.Disabled:
		err = disabledError()
	case err == nil && u.PasswordHash == verified:
		return res, nil
	case err == nil && password != "" && u.PasswordHash != "" && s.stillOpens(ctx, password, u.PasswordHash):
		return res, nil
	case err == nil || errors.Is(err, storage.ErrNotFound):
		err = refusal
	default:
		err = storeError(err) // unknown: the session is revoked all the same
	}
	if rerr := s.abandonSession(ctx, res.SessionID, res.User.ID); rerr != nil {
		return nil, rerr
	}
	return nil, err
}

// stillOpens reports whether password opens encoded (a hash written by a
// concurrent parameter upgrade). Any failure to check counts as no.
func (s *Service) stillOpens(ctx context.Context, password, encoded string) bool {
	ok, _, err := s.pw.check(ctx, password, encoded)
	return err == nil && ok
}

// checkCredentials is the throttled password check of Login and of a
// password change. Each attempt takes a token from three budgets BEFORE it
// hashes, so concurrent guesses cannot all pass the check before any is
// counted: first the client IP's, so an address without budget touches no
// account's; then the account's from the client's network; then the
// account's from everywhere. A budget that refuses gives back the tokens
// taken before it; a success, or an attempt that did no check (the store
// or the hashing was unavailable), gives all of them back.
//
// Locking an account out is not free: the per-network budget stops one
// network's guesses at AccountBurst without touching anyone else's, and
// the account is refused everywhere only once AccountTotalBurst failures
// came from at least AccountTotalBurst/AccountBurst networks within a
// window (docs/api.md, "Throttling").
func (s *Service) checkCredentials(ctx context.Context, email, password, ip string) (storage.User, error) {
	return s.checkLogin(ctx, signInName{email: email}, password, ip)
}

// checkLogin is checkCredentials for an account named by email or by
// username. The account is looked up first (an index read, no hashing),
// so that its budgets are the same whichever name it is signed in with.
func (s *Service) checkLogin(ctx context.Context, name signInName, password, ip string) (storage.User, error) {
	user, err := name.lookup(ctx, s.store)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, storeError(err)
	}
	account := name.throttleKey(user, err)
	now := s.now()
	budgets := []struct {
		l   limiter
		key string
	}{
		{s.pw.ip, clientKey(ip)},
		{s.pw.accountNet, account + "\x00" + lockoutKey(ip)},
		{s.pw.account, account},
	}
	refund := func(n int) {
		now := s.now()
		for _, b := range budgets[:n] {
			b.l.refund(ctx, b.key, now)
		}
	}
	for i, b := range budgets {
		wait, err := b.l.take(ctx, b.key, now)
		if err != nil || wait > 0 {
			refund(i)
			if err != nil {
				return storage.User{}, err
			}
			return storage.User{}, rateLimited(wait, "too many failed sign-ins; try again later")
		}
	}
	refundAll := func() { refund(len(budgets)) }
	hash := user.PasswordHash
	if errors.Is(err, storage.ErrNotFound) {
		hash = s.pw.dummy
	}
	ok, _, err := s.pw.check(ctx, password, hash)
	var e *Error
	switch {
	case errors.As(err, &e):
		refundAll() // busy or cancelled: nothing was checked
		return storage.User{}, err
	case err != nil:
		s.log.ErrorContext(ctx, "stored password hash is unreadable", "user_id", user.ID, "err", err)
		ok = false
	}
	if !ok || user.ID == "" {
		return storage.User{}, invalidCredentials()
	}
	refundAll()
	return user, nil
}

// errSkip aborts a ModifyUser whose precondition no longer holds.
var errSkip = errors.New("skip")

// rehashIfStale rehashes a password whose hash was made under other
// parameters than the configured ones. The hash is computed first; the
// write is a ModifyUser that replaces the hash only if it is still the one
// checked, so a password change made meanwhile is never undone. It returns
// the hash that stands for the checked password: the new one if it was
// written, else the one checked.
func (s *Service) rehashIfStale(ctx context.Context, user storage.User, password string) string {
	h, err := parsePHC(user.PasswordHash)
	if err != nil || h.params == s.pw.cfg.Argon2 {
		return user.PasswordHash
	}
	hash, err := s.pw.hash(ctx, password)
	if err != nil {
		return user.PasswordHash // busy: the next login rehashes
	}
	_, err = s.store.ModifyUser(ctx, user.ID, func(u *storage.User) error {
		if u.PasswordHash != user.PasswordHash {
			return errSkip
		}
		u.PasswordHash, u.UpdatedAt = hash, s.now().UTC()
		return nil
	})
	if err != nil {
		if !errors.Is(err, errSkip) {
			s.log.WarnContext(ctx, "rehash password", "user_id", user.ID, "err", err)
		}
		return user.PasswordHash
	}
	return hash
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
// identity; its email must then not be another password account's. A first
// password needs no current one, so it needs a fresh sign-in instead: the
// caller's session must have been created within the reauth window, or a
// stolen access token could turn itself into a permanent password.
func (s *Service) SetPassword(ctx context.Context, p *Principal, req SetPasswordRequest) (int, error) {
	if s.pw == nil {
		return 0, passwordsOff()
	}
	// Authenticate read the user on this request; the write below re-checks
	// the hash and the email on the record as it then is.
	user := p.User
	if user.Email == "" {
		return 0, newError(KindInvalidRequest, ReasonNoEmail, "the account has no email to sign in with", nil)
	}
	if req.New == "" {
		return 0, newError(KindInvalidRequest, ReasonMissingPassword, "new_password is required", nil)
	}
	if user.PasswordHash != "" {
		if req.Current == "" {
			return 0, newError(KindInvalidRequest, ReasonMissingCurrentPassword, "current_password is required", nil)
		}
		owner, err := s.checkCredentials(ctx, user.Email, req.Current, req.IP)
		if err != nil {
			return 0, err
		}
		if owner.ID != user.ID {
			return 0, invalidCredentials() // the index names someone else: never accept their password
		}
	} else if err := s.recentSignIn(p); err != nil {
		return 0, err
	}
	if err := s.CheckPassword(req.New, user.Email); err != nil {
		return 0, err
	}
	// The hash is made before the write, never inside it: ModifyUser holds
	// the user's lock while fn runs.
	hash, err := s.pw.hash(ctx, req.New)
	if err != nil {
		return 0, err
	}
	now := s.now().UTC()
	checked := user.PasswordHash
	user, err = s.store.ModifyUser(ctx, user.ID, func(u *storage.User) error {
		if u.PasswordHash != checked {
			return errPasswordChanged // what was verified above is no longer the password
		}
		if u.Email == "" {
			return errNoEmail
		}
		u.PasswordHash, u.UpdatedAt = hash, now
		return nil
	})
	switch {
	case errors.Is(err, errPasswordChanged):
		return 0, newError(KindConflict, ReasonPasswordChanged, "the password changed meanwhile; try again", nil)
	case errors.Is(err, errNoEmail):
		return 0, newError(KindInvalidRequest, ReasonNoEmail, "the account has no email to sign in with", nil)
	case errors.Is(err, storage.ErrConflict):
		return 0, emailTaken()
	case err != nil:
		return 0, storeError(err)
	}
	if checked == "" {
		if _, err := s.store.GetIdentity(ctx, s.passwordIssuer(), user.ID); errors.Is(err, storage.ErrNotFound) {
			if err := s.store.AddIdentity(ctx, s.passwordIdentity(user, now)); err != nil && !errors.Is(err, storage.ErrConflict) {
				return 0, storeError(err)
			}
		}
	}
	n, err := s.revokeUserSessions(ctx, user.ID, p.Claims.SessionID, now, RevokeReasonPasswordChanged)
	if err != nil {
		return 0, storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: EventUserPasswordChanged, UserID: user.ID, SessionID: p.Claims.SessionID,
		Provider: PasswordProvider, Detail: fmt.Sprintf("%d other sessions revoked", n)})
	return n, nil
}

// Preconditions that ModifyUser's fn found no longer true.
var (
	errPasswordChanged = errors.New("password changed meanwhile")
	errNoEmail         = errors.New("user has no email")
	errDisabled        = errors.New("user disabled")
	errNotClaimable    = errors.New("no longer an unverified password account")
)

// recentSignIn refuses a caller whose session was not created within the
// reauth window. A refresh keeps a session alive but not fresh: only a new
// sign-in (a new session) is one.
func (s *Service) recentSignIn(p *Principal) error {
	sess := p.Session // read by Authenticate on this request
	if sess.UserID != p.User.ID || s.now().Sub(sess.CreatedAt) > s.pw.cfg.ReauthWindow {
		return newError(KindAccessDenied, ReasonReauthRequired,
			fmt.Sprintf("setting a first password needs a sign-in within the last %s; sign in again", s.pw.cfg.ReauthWindow), nil)
	}
	return nil
}

// claimPasswordAccount settles a verified identity whose email an
// unverified password account holds (the pre-registration attack: someone
// registers victim@gmail.com with a password before the victim ever signs
// in with Google). As allauth does, the verified identity wins and takes
// the account; everything the password holder could use is removed: the
// password is wiped, every session revoked, every other identity unlinked.
// Called only for providers that link automatically and vouch for their
// emails (Provider.autoLinks), and never for a non-canonical address.
// ok is false when no password account holds the email.
//
// The claim is one transaction (storage.Transactor, which both backends
// offer): a sign-in racing it sees the account wholly before or wholly
// after. A login that checked the password before the commit re-reads the
// hash after writing its session and gives the session up (Login); a
// sign-in through an unlinked identity checks its identity after writing
// (Exchange); on PostgreSQL a session insert for the user waits on the
// claim's row lock (its foreign key), so it lands after the commit and
// meets those checks, or before the revocation and is revoked.
func (s *Service) claimPasswordAccount(ctx context.Context, id providers.Identity, ident storage.Identity) (storage.User, bool, error) {
	if _, canonical := storage.EmailKey(id.Email); !canonical {
		return storage.User{}, false, nil // an exact-match key never captures an account
	}
	var c claim
	err := s.inTxWithEvents(ctx, func(tx storage.Store, emit Emit) error {
		var err error
		c, err = s.claimIn(ctx, tx, emit, id, ident)
		return err
	})
	if err != nil {
		return storage.User{}, false, conflictOrStoreError(err)
	}
	if !c.ok {
		return storage.User{}, false, nil
	}
	s.audit(ctx, storage.AuditEvent{Type: EventUserClaimed, UserID: c.user.ID, Provider: id.Provider,
		Detail: fmt.Sprintf("unverified password account taken by a verified identity: password wiped, %d sessions revoked, %d identities unlinked", c.revoked, c.removed)})
	s.log.WarnContext(ctx, "unverified password account claimed by a verified identity", "user_id", c.user.ID, "provider", id.Provider)
	return c.user, true, nil
}

// claim is what claimIn did, for the audit event.
type claim struct {
	ok               bool
	user             storage.User
	revoked, removed int
}

// inTx runs fn in one transaction of the store (storage.Transactor).
// Decorators that hide the capability (test stores that interleave
// requests) get fn run on the store itself, one committed step at a time:
// claimIn orders its steps so that this is safe too.
func (s *Service) inTx(ctx context.Context, fn func(tx storage.Store) error) error {
	if tr, ok := storage.As[storage.Transactor](s.store); ok {
		return tr.InTx(ctx, fn)
	}
	return fn(s.store)
}

// claimIn is the claim's reads and writes on tx. Only store calls: on
// bbolt it holds the one writer lock. The steps keep the order that makes
// the claim safe even when they commit one by one (inTx): the password
// first (the write re-checks what the read found: an admin may have
// disabled the account meanwhile, or a concurrent claim taken it), then
// the other identities, and only then the sessions, so that a sign-in
// through one of those identities either wrote its session before the
// revocation or finds its identity gone when it checks after writing.
func (s *Service) claimIn(ctx context.Context, tx storage.Store, emit Emit, id providers.Identity, ident storage.Identity) (claim, error) {
	user, err := tx.GetUserByPasswordEmail(ctx, id.Email)
	if errors.Is(err, storage.ErrNotFound) {
		return claim{}, nil
	}
	if err != nil {
		return claim{}, storeError(err)
	}
	if user.EmailVerified {
		return claim{}, nil // a verified owner is in the verified index: not ours to settle
	}
	if user.Disabled {
		return claim{}, disabledError()
	}
	now := s.now().UTC()
	user, err = tx.ModifyUser(ctx, user.ID, func(u *storage.User) error {
		switch {
		case u.Disabled:
			return errDisabled
		case u.PasswordHash == "" || u.EmailVerified || !storage.SameEmail(u.Email, id.Email):
			return errNotClaimable
		}
		u.PasswordHash, u.EmailVerified, u.Email, u.UpdatedAt = "", true, id.Email, now
		u.EmailVerifiedBy = id.Provider
		// The username and name parts were the password holder's choice.
		u.Username, u.GivenName, u.FamilyName = "", "", ""
		if id.Name != "" {
			u.Name = id.Name
		}
		if id.Picture != "" {
			u.Picture = id.Picture
		}
		return nil
	})
	switch {
	case errors.Is(err, errDisabled):
		return claim{}, disabledError()
	case errors.Is(err, errNotClaimable):
		// Changed since the read (a concurrent claim, a new email):
		// find-or-create reads everything again.
		return claim{}, fmt.Errorf("%w: password account changed meanwhile", storage.ErrConflict)
	case errors.Is(err, storage.ErrConflict):
		return claim{}, err // a concurrent sign-in took the address: read again
	case err != nil:
		return claim{}, storeError(err)
	}
	idents, err := tx.ListIdentities(ctx, user.ID)
	if err != nil {
		return claim{}, storeError(err)
	}
	c := claim{ok: true, user: user}
	for _, old := range idents {
		if old.Issuer == ident.Issuer && old.Subject == ident.Subject {
			continue // a concurrent sign-in of this same identity got here first
		}
		if err := tx.DeleteIdentity(ctx, user.ID, old.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return claim{}, storeError(err)
		}
		if err := emit(WebhookIdentityUnlinked, user.ID, IdentityData{UserID: user.ID, Identity: eventIdentity(old)}); err != nil {
			return claim{}, err
		}
		c.removed++
	}
	if err := emit(WebhookUserUpdated, user.ID, UserData{User: eventUser(user)}); err != nil {
		return claim{}, err
	}
	c.revoked, err = revokeUserSessionsIn(ctx, tx, emit, user.ID, "", now, RevokeReasonClaimedByVerifiedIdentity)
	if err != nil {
		return claim{}, storeError(err)
	}
	ident.UserID = user.ID
	if err := tx.AddIdentity(ctx, ident); err != nil {
		return claim{}, conflictOrStoreError(err)
	}
	if err := emit(WebhookIdentityLinked, user.ID, IdentityData{UserID: user.ID, Identity: eventIdentity(ident)}); err != nil {
		return claim{}, err
	}
	return c, nil
}

// removePassword is the unlinking of a password identity: the password goes
// with it (the hash is the sign-in method; the identity only names it).
// The caller holds linkMu and has checked that target belongs to user.
func (s *Service) removePassword(ctx context.Context, user storage.User, idents []storage.Identity, target storage.Identity) error {
	if len(idents) < 2 {
		return lastIdentityError()
	}
	err := s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
		u, err := tx.ModifyUser(ctx, user.ID, func(u *storage.User) error {
			u.PasswordHash, u.UpdatedAt = "", s.now().UTC()
			return nil
		})
		if err != nil {
			return err
		}
		if err := tx.DeleteIdentity(ctx, user.ID, target.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if err := emit(WebhookIdentityUnlinked, user.ID, IdentityData{UserID: user.ID, Identity: eventIdentity(target)}); err != nil {
			return err
		}
		return emit(WebhookUserUpdated, user.ID, UserData{User: eventUser(u)})
	})
	if err != nil {
		return storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: EventIdentityUnlinked, UserID: user.ID, Provider: PasswordProvider,
		Detail: "password removed with identity " + target.ID})
	return nil
}
