// Package exchange is authex's domain: it verifies a provider credential,
// finds, creates or links the local user, and mints, rotates and revokes our
// own tokens. It knows nothing of HTTP; web turns its *Error kinds into
// statuses.
package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/authex/authex/envelope"
	"github.com/authex/authex/providers"
	"github.com/authex/authex/storage"
)

// Link policies: what a first sign-in does when a user already owns the
// identity's verified email.
const (
	LinkAuto    = "auto"    // link to that user (only for a verified email)
	LinkConfirm = "confirm" // answer account_exists with a link_token
	LinkNever   = "never"   // create a separate user
)

// Provider is one configured provider: its verifier and its user policy.
type Provider struct {
	Verifier    providers.Verifier
	LinkByEmail string
	AllowSignup bool
	// Issuer is the provider's issuer URL, so that an RFC 8693
	// subject_issuer can name the provider by it (optional).
	Issuer string
	// TrustEmail: the provider's verified email is proof that its user
	// owns the address, so a user whose email it verified may be joined
	// automatically by another provider's identity with that address. An
	// auto provider is always trusted (trustsEmail); the operator may
	// trust a confirm or never one too (trust_email: true).
	TrustEmail bool
}

// trustsEmail reports whether p vouches for the emails it verifies.
func (p Provider) trustsEmail() bool { return p.LinkByEmail == LinkAuto || p.TrustEmail }

// trustedForEmail reports whether the provider named name, as configured
// now, vouches for emails: "" (unknown) and a provider no longer
// configured never do.
func (s *Service) trustedForEmail(name string) bool {
	p, ok := s.providers[name]
	return ok && name != "" && p.trustsEmail()
}

// autoLinks reports whether p may join an identity with this verified
// email to another account, or take an unverified password account over,
// without asking: p links automatically (and so vouches for its emails),
// and the address is canonical (storage.EmailKey), so its key cannot stand
// for a different address.
func (p Provider) autoLinks(email string) bool {
	_, canonical := storage.EmailKey(email)
	return p.LinkByEmail == LinkAuto && canonical
}

// Config holds the token and session settings.
type Config struct {
	Issuer     string // our public URL: the `iss` of our tokens
	Audience   []string
	Algorithm  string
	AccessTTL  time.Duration
	RefreshTTL time.Duration // idle limit, sliding
	SessionMax time.Duration // absolute limit
	ReuseGrace time.Duration
	// KeyPublishDelay: a rotated-in key is in the JWKS this long before it
	// signs, so API caches have fetched it.
	KeyPublishDelay time.Duration
	// KeyRotation: when positive, MaintainKeys rotates a key this old.
	KeyRotation time.Duration
	// Clients, when not empty, turns client authentication on (see clients.go).
	Clients []ClientConfig
	// MaxSessionsPerUser caps a user's live sessions: a sign-in past it
	// revokes the oldest (reason session_limit). 0: no cap.
	MaxSessionsPerUser int
	// SigningKeys, when not empty, are the keys read from PEM files
	// (ParsePEMKey): the first signs, all are published, none is stored,
	// and rotation and revocation through authex are refused.
	SigningKeys []PEMKey
}

// Service is the exchange domain service.
type Service struct {
	cfg       Config
	store     storage.Store
	providers map[string]Provider
	keys      *Keyring
	pw        *passwords // nil unless the password provider is configured
	log       *slog.Logger
	now       func() time.Time
	observe   Observer
	clients   map[string]registeredClient
	// linkMu serialises link and unlink on this instance, so two unlinks
	// cannot both see "one more method left" (unlink also re-checks after
	// deleting, for other instances).
	linkMu sync.Mutex
	// verified caches access tokens already verified here (verified.go).
	verified verifiedCache
}

// Options are the optional dependencies of New.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time // tests move the clock
	// Password enables password accounts (the `password` provider).
	Password *PasswordConfig
	// Observer receives exchange and refresh outcomes (metrics); nil: none.
	Observer Observer
	// Sealer seals the key material in the store with the key-encryption
	// key. nil keeps it in clear: tests only (cmd/authex always sets one).
	Sealer *envelope.Sealer
}

// New loads (or at first start creates) the signing key and the refresh
// token secret from the store.
func New(ctx context.Context, cfg Config, store storage.Store, provs map[string]Provider, opts Options) (*Service, error) {
	if !ValidAlgorithm(cfg.Algorithm) {
		return nil, fmt.Errorf("unsupported signing algorithm %q", cfg.Algorithm)
	}
	s := &Service{cfg: cfg, store: store, providers: provs, log: opts.Logger, now: opts.Now, observe: opts.Observer}
	if s.observe == nil {
		s.observe = nopObserver{}
	}
	clients, err := newClientRegistry(cfg.Clients)
	if err != nil {
		return nil, err
	}
	s.clients = clients
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.Password != nil {
		if s.pw, err = newPasswords(*opts.Password, store, s.log); err != nil {
			return nil, err
		}
	}
	if opts.Sealer != nil {
		n, err := SealKeyMaterial(ctx, store, opts.Sealer)
		if err != nil {
			return nil, fmt.Errorf("seal key material: %w", err)
		}
		if n > 0 {
			s.log.Info("key material sealed with the key-encryption key", "records", n, "kek_id", opts.Sealer.KEKID())
		}
	}
	files := make([]*signingKey, 0, len(cfg.SigningKeys))
	for _, pk := range cfg.SigningKeys {
		files = append(files, pk.signingKey())
	}
	s.keys = newKeyring(store, cfg.Algorithm, s.now, opts.Sealer, files)
	if err := s.keys.ensureFirstMACSecret(ctx); err != nil {
		return nil, fmt.Errorf("load refresh secret: %w", err)
	}
	if err := s.keys.ensure(ctx); err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	return s, nil
}

// Keys returns the signing keyring (JWKS, rotation).
func (s *Service) Keys() *Keyring { return s.keys }

// Provider returns a configured provider by name.
func (s *Service) Provider(name string) (Provider, bool) {
	p, ok := s.providers[name]
	return p, ok
}

// ProviderNames lists the configured providers.
func (s *Service) ProviderNames() []string {
	names := make([]string, 0, len(s.providers))
	for n := range s.providers {
		names = append(names, n)
	}
	return names
}

// Client describes the caller of a request, for the session record.
type Client struct {
	ID        string
	UserAgent string
	IP        string
}

// ExchangeRequest is a provider credential to trade for our tokens.
type ExchangeRequest struct {
	Provider   string
	Credential providers.Credential
	// ProfileName is used only when the user is created (Apple sends the
	// name once, outside the id_token).
	ProfileName string
	Client      Client
}

// Result is what an exchange or a refresh answers.
type Result struct {
	AccessToken      string
	ExpiresAt        time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
	SessionID        string
	Created          bool
	User             storage.User
	Identities       []storage.Identity // nil on refresh
}

// Exchange verifies a provider credential and signs the user in.
func (s *Service) Exchange(ctx context.Context, req ExchangeRequest) (res *Result, err error) {
	p, ok := s.providers[req.Provider]
	defer func() {
		provider, outcome := req.Provider, OutcomeOK
		if !ok {
			provider = "unknown"
		}
		switch {
		case err != nil:
			outcome = errorOutcome(err)
		case res.Created:
			outcome = OutcomeCreated
		}
		s.observe.Exchanged(provider, outcome)
	}()
	if !ok {
		if req.Provider == "" {
			return nil, newError(KindInvalidRequest, "missing_provider", "provider is required", nil)
		}
		return nil, newError(KindUnsupportedProvider, ReasonProviderMissing, "no provider of that name is configured", nil)
	}
	if err := s.clientAllows(req.Client.ID, req.Provider); err != nil {
		return nil, err
	}
	c := req.Credential
	if c.IDToken == "" && c.AccessToken == "" && c.Code == "" {
		return nil, newError(KindInvalidRequest, "missing_credential", "one of id_token, access_token or code is required", nil)
	}
	id, err := s.verify(ctx, p, req.Provider, c)
	if err != nil {
		return nil, err
	}
	if err := s.spendCredential(ctx, id); err != nil {
		return nil, err
	}
	user, created, err := s.findOrCreateUser(ctx, p, id, req.ProfileName)
	if err != nil {
		return nil, err
	}
	var events []storage.AuditEvent
	if created {
		events = append(events, storage.AuditEvent{Type: "user.created", UserID: user.ID, Provider: req.Provider})
	}
	res, err = s.startSession(ctx, user, created, req.Provider, req.Client, events...)
	if err != nil {
		return nil, err
	}
	// Check after write: the identity was looked up before the session
	// was written, and may have been unlinked meanwhile (a takeover by a
	// verified identity unlinks, then revokes every session: see
	// claimPasswordAccount). Read after our write, an identity still ours
	// means any later revocation reaches this session too. If it is gone
	// or now someone else's, the session is given up and the caller is
	// told so (401 revoked); a retry signs in afresh and resolves the
	// identity as it now stands. A retry here would do the same, but
	// would hide a takeover from the client that raced it.
	ident, err := s.store.GetIdentity(ctx, id.Issuer, id.Subject)
	switch {
	case err == nil && ident.UserID == user.ID:
		return res, nil
	case err == nil || errors.Is(err, storage.ErrNotFound):
		err = newError(KindInvalidToken, ReasonRevoked, "the identity was unlinked while signing in; sign in again", nil)
	default:
		err = storeError(err)
	}
	if rerr := s.abandonSession(ctx, res.SessionID, user.ID); rerr != nil {
		return nil, rerr
	}
	return nil, err
}

// capSessions revokes the user's oldest live sessions beyond the cap, never
// the one just made (keep). It runs after the new session is written, so
// concurrent sign-ins each see the others' sessions; a failure is logged,
// not answered: the sign-in itself succeeded.
func (s *Service) capSessions(ctx context.Context, userID, keep string) {
	limit := s.cfg.MaxSessionsPerUser
	if limit <= 0 {
		return
	}
	sessions, err := s.store.ListSessions(ctx, userID) // newest first
	if err != nil {
		s.log.WarnContext(ctx, "session cap: list sessions", "user_id", userID, "err", err)
		return
	}
	now := s.now()
	live := 0
	for _, sess := range sessions {
		if sess.Revoked() || sess.Expired(now) {
			continue
		}
		live++
		if live <= limit || sess.ID == keep {
			continue
		}
		if err := s.store.RevokeSession(ctx, sess.ID, now.UTC(), RevokeReasonSessionLimit); err != nil {
			if !errors.Is(err, storage.ErrNotFound) {
				s.log.WarnContext(ctx, "session cap: revoke", "session_id", sess.ID, "err", err)
			}
			continue
		}
		s.audit(ctx, storage.AuditEvent{Type: "session.revoked", UserID: userID, SessionID: sess.ID,
			Detail: fmt.Sprintf("%s: more than %d live sessions", RevokeReasonSessionLimit, limit)})
	}
}

// abandonSession revokes a session just written by a sign-in that found,
// checking after the write, that what it signed in with changed meanwhile.
func (s *Service) abandonSession(ctx context.Context, sessionID, userID string) error {
	// ErrNotFound: the user was deleted meanwhile, and the session with it.
	if err := s.store.RevokeSession(ctx, sessionID, s.now().UTC(), ReasonRacedCredentialChange); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: "session.abandoned", UserID: userID, SessionID: sessionID,
		Detail: "credential changed while signing in"})
	s.log.WarnContext(ctx, "sign-in raced a credential change: its session is revoked", "session_id", sessionID, "user_id", userID)
	return nil
}

func (s *Service) verify(ctx context.Context, p Provider, name string, c providers.Credential) (providers.Identity, error) {
	id, err := p.Verifier.Verify(ctx, c)
	if err == nil {
		id.Provider = name
		return id, nil
	}
	var perr *providers.Error
	switch {
	case errors.As(err, &perr):
		kind := KindInvalidToken
		if providers.IsRequestReason(perr.Reason) {
			kind = KindInvalidRequest // a parameter missing or not allowed, not a bad token
		}
		return id, newError(kind, perr.Reason, perr.Error(), err)
	case errors.Is(err, providers.ErrUnavailable):
		return id, newError(KindProviderUnavailable, "provider_unavailable", "the provider cannot be reached right now; try again shortly", err)
	case ctx.Err() != nil:
		return id, newError(KindProviderUnavailable, "provider_unavailable", "the provider did not answer in time", err)
	default:
		return id, newError(KindProviderUnavailable, "provider_unavailable", "the provider cannot be reached right now; try again shortly", err)
	}
}

// maxCredentialRecord bounds how long a credential without an expiry is
// remembered (providers require exp; this is a guard, not a policy).
const maxCredentialRecord = 24 * time.Hour

// spendCredential refuses a second use of one provider credential: a
// verified id_token is recorded (by its TokenKey: issuer and jti, or a
// hash) until it stops verifying, and a second presentation, here or on
// another instance of the same store, is refused with replayed, writing
// nothing. It runs after verification and before any user or session
// write, so a credential is spent once verified, whatever the sign-in
// then answers (account_exists, signup_disabled, ...): the client signs in
// with the provider again. Credentials that cannot be presented twice (a
// code the provider redeems once) have no TokenKey.
func (s *Service) spendCredential(ctx context.Context, id providers.Identity) error {
	if id.TokenKey == "" {
		return nil
	}
	now := s.now()
	exp := id.TokenExpiresAt
	if exp.IsZero() {
		exp = now.Add(maxCredentialRecord)
	}
	err := s.store.RecordCredential(ctx, id.TokenKey, exp, now)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrConflict):
		s.log.WarnContext(ctx, "provider token replayed: refused", "provider", id.Provider, "issuer", id.Issuer)
		return newError(KindInvalidToken, ReasonReplayed,
			"this provider token was already used; sign in with the provider again for a new one", nil)
	default:
		return storeError(err)
	}
}

// findOrCreateUser resolves the identity to a user. A conflict with a
// concurrent sign-in (the same identity, or the same verified email, created
// between our read and our write) is settled by reading again, so
// concurrent first sign-ins create exactly one user.
func (s *Service) findOrCreateUser(ctx context.Context, p Provider, id providers.Identity, profileName string) (storage.User, bool, error) {
	for attempt := 0; attempt < 3; attempt++ {
		user, found, err := s.userForIdentity(ctx, id)
		if err != nil || found {
			return user, false, err
		}
		user, created, err := s.newIdentity(ctx, p, id, profileName)
		if errors.Is(err, storage.ErrConflict) {
			continue // someone else won the race; their record decides
		}
		return user, created, err
	}
	return storage.User{}, false, newError(KindServer, "", "internal error", errors.New("identity conflict did not settle"))
}

func (s *Service) userForIdentity(ctx context.Context, id providers.Identity) (storage.User, bool, error) {
	ident, err := s.store.GetIdentity(ctx, id.Issuer, id.Subject)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, false, nil
	}
	if err != nil {
		return storage.User{}, false, storeError(err)
	}
	user, err := s.store.GetUser(ctx, ident.UserID)
	if err != nil {
		return storage.User{}, false, storeError(err)
	}
	if user.Disabled {
		return storage.User{}, false, disabledError()
	}
	s.touchIdentity(ctx, ident)
	return user, true, nil
}

// touchIdentity records a sign-in's time on its identity. A login time per
// sign-in would double the writes of the hot path; an hourly resolution is
// what an operator needs.
func (s *Service) touchIdentity(ctx context.Context, ident storage.Identity) {
	if now := s.now(); now.Sub(ident.LastLoginAt) > time.Hour {
		if err := s.store.TouchIdentity(ctx, ident.ID, now); err != nil {
			s.log.WarnContext(ctx, "touch identity", "err", err)
		}
	}
}

// newIdentity handles the first sign-in of an identity: link it by verified
// email, ask for confirmation, or create a user.
func (s *Service) newIdentity(ctx context.Context, p Provider, id providers.Identity, profileName string) (storage.User, bool, error) {
	now := s.now().UTC()
	ident := identityRecord(id, "", now) // its user is settled below
	if id.EmailVerified && id.Email != "" && p.LinkByEmail != LinkNever {
		owner, err := s.store.GetUserByVerifiedEmail(ctx, id.Email)
		switch {
		case err == nil:
			// A concurrent first sign-in of this same identity may have
			// created the owner between our identity lookup and this one;
			// that is not someone else's account.
			if _, err := s.store.GetIdentity(ctx, id.Issuer, id.Subject); err == nil {
				return storage.User{}, false, storage.ErrConflict
			}
			return s.linkByEmail(ctx, p, id, ident, owner)
		case !errors.Is(err, storage.ErrNotFound):
			return storage.User{}, false, storeError(err)
		}
		// An unverified password account holding the address does not own
		// it: the verified identity takes it over (password.go), when its
		// provider may link without asking.
		if p.autoLinks(id.Email) {
			if user, ok, err := s.claimPasswordAccount(ctx, id, ident); ok || err != nil {
				return user, false, err
			}
		}
	}
	if !p.AllowSignup {
		return storage.User{}, false, newError(KindAccessDenied, ReasonSignupDisabled, "this provider does not allow new accounts", nil)
	}
	name := id.Name
	if name == "" {
		name = profileName
	}
	user := storage.User{
		ID: newID(), Email: id.Email, EmailVerified: id.EmailVerified,
		Name: name, Picture: id.Picture, Roles: []string{}, CreatedAt: now, UpdatedAt: now,
	}
	if user.EmailVerified && user.Email != "" {
		user.EmailVerifiedBy = id.Provider // who vouched, for later links by email
	}
	if p.LinkByEmail == LinkNever && id.EmailVerified && id.Email != "" {
		// A separate user must not take the verified-email index from the
		// user who already owns that address; it keeps the address
		// unindexed (the identity still records that it was verified).
		if _, err := s.store.GetUserByVerifiedEmail(ctx, id.Email); err == nil {
			user.EmailVerified, user.EmailVerifiedBy = false, ""
		}
	}
	ident.UserID = user.ID
	if err := s.store.CreateUser(ctx, user, ident); err != nil {
		return storage.User{}, false, conflictOrStoreError(err)
	}
	// Exchange has startSession write the user.created audit record, in
	// the same group commit as the session.
	return user, true, nil
}

// identityRecord is the stored record of a verified identity, new at now.
func identityRecord(id providers.Identity, userID string, now time.Time) storage.Identity {
	return storage.Identity{
		ID: newID(), UserID: userID, Provider: id.Provider, Issuer: id.Issuer, Subject: id.Subject,
		Email: id.Email, EmailVerified: id.EmailVerified, CreatedAt: now, LastLoginAt: now,
	}
}

// linkByEmail settles a first sign-in whose verified email a user already
// owns. It links automatically only when the incoming provider may
// (autoLinks) and the owner's email was verified by a provider trusted for
// email now: otherwise whoever controlled a weaker identity with that
// address (a confirm provider's, or one that no longer vouches) would own
// the account the stronger one signs in to. Anything else answers
// account_exists with a link_token: the client signs in to the account and
// links the identity itself.
func (s *Service) linkByEmail(ctx context.Context, p Provider, id providers.Identity, ident storage.Identity, owner storage.User) (storage.User, bool, error) {
	if !p.autoLinks(id.Email) || !s.trustedForEmail(owner.EmailVerifiedBy) || !storage.SameEmail(owner.Email, id.Email) {
		token, err := s.linkToken(id, owner.ID)
		if err != nil {
			return storage.User{}, false, newError(KindServer, "", "internal error", err)
		}
		e := newError(KindAccountExists, "account_exists",
			"an account with this email already exists: sign in to it and link this identity with the link_token", nil)
		e.LinkToken = token
		return storage.User{}, false, e
	}
	if owner.Disabled {
		return storage.User{}, false, disabledError()
	}
	ident.UserID = owner.ID
	if err := s.store.AddIdentity(ctx, ident); err != nil {
		return storage.User{}, false, conflictOrStoreError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: "identity.linked", UserID: owner.ID, Provider: id.Provider, Detail: "by verified email"})
	return owner, false, nil
}

// startSession creates a session and answers with its tokens. The audit
// events, if any, are appended in the same group commit as the session.
func (s *Service) startSession(ctx context.Context, user storage.User, created bool, provider string, c Client, events ...storage.AuditEvent) (*Result, error) {
	now := s.now().UTC()
	sess := storage.Session{
		ID: newID(), UserID: user.ID, Provider: provider, ClientID: c.ID, Generation: 1,
		RotatedAt: now, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionMax),
		UserAgent: truncate(c.UserAgent, 256), IP: c.IP,
	}
	sess.IdleExpiresAt = minTime(now.Add(s.cfg.RefreshTTL), sess.ExpiresAt)
	// Every write goes through DB.Batch: started together, the session and
	// the audit records share one group commit instead of waiting for
	// each in turn. The access token depends only on the records, not on
	// the write, so it is signed while the commit waits (and never inside
	// a transaction).
	var wg sync.WaitGroup
	var sessErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		sessErr = s.store.CreateSession(ctx, sess)
	}()
	for _, e := range events {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.audit(ctx, e)
		}()
	}
	res, signErr := s.result(sess, user)
	wg.Wait()
	if sessErr != nil {
		return nil, storeError(sessErr)
	}
	if signErr != nil {
		return nil, signErr
	}
	s.capSessions(ctx, user.ID, sess.ID)
	idents, err := s.store.ListIdentities(ctx, user.ID)
	if err != nil {
		return nil, storeError(err)
	}
	res.Created, res.Identities = created, idents
	return res, nil
}

func (s *Service) result(sess storage.Session, user storage.User) (*Result, error) {
	claims := s.accessClaims(sess, user)
	at, err := s.keys.sign(typAccess, claims)
	if err != nil {
		return nil, newError(KindServer, "", "internal error", err)
	}
	return &Result{
		AccessToken:      at,
		ExpiresAt:        claims.ExpiresAt.Time,
		RefreshToken:     s.refreshToken(sess),
		RefreshExpiresAt: sess.IdleExpiresAt,
		SessionID:        sess.ID,
		User:             user,
	}, nil
}

// Refresh rotates a refresh token. The previous generation presented within
// the reuse grace gets the current pair back (concurrent refreshes from one
// browser all succeed alike); any older generation, or the previous one
// after the grace, is reuse and revokes the whole session.
func (s *Service) Refresh(ctx context.Context, token string) (res *Result, err error) {
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
	sess, err := s.store.GetSession(ctx, sid)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, newError(KindInvalidGrant, ReasonRevoked, "refresh token's session no longer exists", nil)
	}
	if err != nil {
		return nil, storeError(err)
	}
	for attempt := 0; ; attempt++ {
		now := s.now()
		if err := checkSession(sess, now); err != nil {
			return nil, err
		}
		user, err := s.store.GetUser(ctx, sess.UserID)
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return nil, newError(KindInvalidGrant, ReasonRevoked, "the session's user no longer exists", nil)
			}
			return nil, storeError(err)
		}
		if user.Disabled {
			return nil, disabledError()
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
			return s.result(rotated, user)
		case s.inGrace(sess, gen, now):
			outcome = OutcomeGrace
			return s.result(sess, user)
		default:
			if err := s.store.RevokeSession(ctx, sid, now.UTC(), ReasonReused); err != nil {
				return nil, storeError(err)
			}
			s.audit(ctx, storage.AuditEvent{Type: "session.reused", UserID: sess.UserID, SessionID: sid,
				Detail: fmt.Sprintf("generation %d presented, current %d", gen, sess.Generation)})
			s.log.WarnContext(ctx, "refresh token reuse: session revoked", "session_id", sid, "user_id", sess.UserID)
			return nil, newError(KindInvalidGrant, ReasonReused, "refresh token was already used; the session is revoked", nil)
		}
	}
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
	scope := req.Scope
	if scope == "" {
		scope = ScopeLocal
	}
	if scope != ScopeLocal && scope != ScopeOthers && scope != ScopeGlobal {
		return 0, newError(KindInvalidRequest, "invalid_scope", "scope must be local, others or global", nil)
	}
	// A token that can no longer refresh may still end its own session
	// (local), but must not reach the user's other sessions: a thief with a
	// spent token would otherwise sign the user out everywhere.
	wide := scope != ScopeLocal
	var sid, userID string
	switch {
	case req.RefreshToken != "":
		id, gen, err := s.parseRefreshToken(req.RefreshToken)
		if err != nil {
			return 0, newError(KindInvalidGrant, ReasonMalformed, "refresh token is malformed or not issued here", nil)
		}
		if s.ClientsConfigured() && req.Client == nil {
			return 0, newError(KindInvalidClient, ReasonMissingClient,
				"client authentication is required with a refresh token: HTTP Basic, or client_id (and client_secret) in the body", nil)
		}
		sess, err := s.store.GetSession(ctx, id)
		if err == nil && req.Client != nil && sess.ClientID != "" && sess.ClientID != req.Client.ID {
			// Checked before reuse detection, as refresh does: a stolen
			// token presented by another client changes nothing.
			return 0, newError(KindInvalidGrant, ReasonClientMismatch, "the refresh token was issued to another client", nil)
		}
		if errors.Is(err, storage.ErrNotFound) {
			if wide {
				return 0, newError(KindInvalidGrant, ReasonRevoked, "the refresh token's session no longer exists", nil)
			}
			return 0, nil
		}
		if err != nil {
			return 0, storeError(err)
		}
		now := s.now()
		current := gen == sess.Generation || s.inGrace(sess, gen, now)
		if !current && !sess.Revoked() {
			// A spent token: the same reuse that refresh detects.
			if err := s.store.RevokeSession(ctx, id, now.UTC(), ReasonReused); err != nil {
				return 0, storeError(err)
			}
			s.audit(ctx, storage.AuditEvent{Type: "session.reused", UserID: sess.UserID, SessionID: id,
				Detail: fmt.Sprintf("logout with generation %d, current %d", gen, sess.Generation)})
			return 0, newError(KindInvalidGrant, ReasonReused, "refresh token was already used; the session is revoked", nil)
		}
		if wide {
			if err := checkSession(sess, now); err != nil {
				return 0, err
			}
		} else if sess.Revoked() {
			return 0, nil // already signed out
		}
		sid, userID = sess.ID, sess.UserID
	case req.AccessToken != "":
		if wide {
			p, err := s.Authenticate(ctx, req.AccessToken)
			if err != nil {
				return 0, err
			}
			sid, userID = p.Claims.SessionID, p.Claims.Subject
			break
		}
		claims, err := s.verifyAccess(req.AccessToken)
		if err != nil {
			return 0, err
		}
		sess, err := s.store.GetSession(ctx, claims.SessionID)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && sess.Revoked()) {
			return 0, nil // already signed out
		}
		if err != nil {
			return 0, storeError(err)
		}
		sid, userID = claims.SessionID, claims.Subject
	default:
		return 0, newError(KindInvalidRequest, "missing_credential", "refresh_token or a Bearer access token is required", nil)
	}
	now := s.now().UTC()
	n := 0
	if scope == ScopeLocal || scope == ScopeGlobal {
		err := s.store.RevokeSession(ctx, sid, now, "logout")
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return 0, storeError(err)
		}
		if err == nil {
			n++
		}
	}
	if scope == ScopeOthers || scope == ScopeGlobal {
		m, err := s.store.RevokeUserSessions(ctx, userID, sid, now, "logout_"+scope)
		if err != nil {
			return n, storeError(err)
		}
		n += m
	}
	return n, nil
}

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
	sess, err := s.store.GetSession(ctx, claims.SessionID)
	if errors.Is(err, storage.ErrNotFound) {
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
	user, err := s.store.GetUser(ctx, claims.Subject)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, newError(KindInvalidToken, ReasonRevoked, "the access token's user no longer exists", nil)
	}
	if err != nil {
		return nil, storeError(err)
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

// Identities returns a user's identities, for callers that already hold
// the user (an authenticated principal) and need not read it again.
func (s *Service) Identities(ctx context.Context, userID string) ([]storage.Identity, error) {
	idents, err := s.store.ListIdentities(ctx, userID)
	if err != nil {
		return nil, storeError(err)
	}
	if idents == nil {
		idents = []storage.Identity{}
	}
	return idents, nil
}

// UserWithIdentities returns a user and its identities (never nil).
func (s *Service) UserWithIdentities(ctx context.Context, userID string) (storage.User, []storage.Identity, error) {
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return u, nil, storeError(err)
	}
	idents, err := s.Identities(ctx, userID)
	return u, idents, err
}

// Readiness is what /readyz reports: nil errors mean ready.
type Readiness struct {
	Store     error
	Providers map[string]error // only the providers that are not ready
}

// Ready reports the store's health and each provider's readiness.
func (s *Service) Ready(ctx context.Context) Readiness {
	r := Readiness{Store: s.store.Ping(ctx), Providers: map[string]error{}}
	for name, p := range s.providers {
		if err := p.Verifier.Ready(); err != nil {
			r.Providers[name] = err
		}
	}
	return r
}

func (s *Service) audit(ctx context.Context, e storage.AuditEvent) {
	e.ID = newID()
	e.Time = s.now().UTC()
	if err := s.store.AppendAudit(ctx, e); err != nil {
		s.log.ErrorContext(ctx, "audit append failed", "type", e.Type, "err", err)
	}
}

func storeError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, storage.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return newError(KindStoreUnavailable, ReasonStore, "the store is unavailable; try again shortly", err)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return newError(KindNotFound, "not_found", "not found", err)
	}
	return newError(KindServer, "", "internal error", err)
}

// conflictOrStoreError keeps storage.ErrConflict as it is, for
// findOrCreateUser to settle by reading again; anything else is storeError.
func conflictOrStoreError(err error) error {
	if errors.Is(err, storage.ErrConflict) {
		return err
	}
	return storeError(err)
}

func disabledError() error {
	return newError(KindAccessDenied, ReasonUserDisabled, "this account is disabled", nil)
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// Issuer is our public URL, the `iss` of our tokens.
func (s *Service) Issuer() string { return s.cfg.Issuer }

// Algorithm is the algorithm our access tokens are signed with.
func (s *Service) Algorithm() string { return s.cfg.Algorithm }
