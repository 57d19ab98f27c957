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

	"github.com/google/uuid"

	"github.com/authex/authex/envelope"
	"github.com/authex/authex/exchange/keyring"
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
	email     *emailer   // nil unless the email section is configured
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
	// webhooks are the endpoints events are written for (events.go);
	// webhookNotify wakes the delivery worker after a commit.
	webhooks      []WebhookTarget
	webhookNotify func()
	// signals are the upstream transmitters by issuer (signals.go).
	signals map[string]SignalReceiver
	// hook is the claims hook, nil when none is configured (claimshook.go).
	hook *claimsHook
	// anon is set when anonymous users are on (anonymous.go).
	anon *anonymous
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
	// Webhooks: the endpoints events are written to the outbox for
	// (events.go); WebhookNotify, when set, is called after a commit that
	// wrote events (the delivery worker's wake-up).
	Webhooks      []WebhookTarget
	WebhookNotify func()
	// Email enables email verification and password reset; nil: the
	// features that need mail answer email_not_configured.
	Email *EmailConfig
	// Signals are the upstream security event transmitters (signals.go).
	Signals []SignalReceiver
	// ClaimsHook, when set, asks the app for extra access token claims.
	ClaimsHook *ClaimsHookConfig
	// Anonymous, when set, turns POST /v1/anonymous on (anonymous.go).
	Anonymous *AnonymousConfig
}

// New loads (or at first start creates) the signing key and the refresh
// token secret from the store.
func New(ctx context.Context, cfg Config, store storage.Store, provs map[string]Provider, opts Options) (*Service, error) {
	if !ValidAlgorithm(cfg.Algorithm) {
		return nil, fmt.Errorf("unsupported signing algorithm %q", cfg.Algorithm)
	}
	s := &Service{cfg: cfg, store: store, providers: provs, log: opts.Logger, now: opts.Now, observe: opts.Observer,
		webhooks: opts.Webhooks, webhookNotify: opts.WebhookNotify}
	if len(s.webhooks) > 0 {
		if _, ok := storage.As[storage.Outbox](store); !ok {
			return nil, fmt.Errorf("webhooks are configured but the store keeps no outbox")
		}
	}
	if s.observe == nil {
		s.observe = nopObserver{}
	}
	clients, err := newClientRegistry(cfg.Clients)
	if err != nil {
		return nil, err
	}
	s.clients = clients
	if opts.ClaimsHook != nil {
		s.hook = newClaimsHook(*opts.ClaimsHook)
	}
	s.signals = map[string]SignalReceiver{}
	for _, r := range opts.Signals {
		if _, dup := s.signals[r.Verifier.Issuer()]; dup {
			return nil, fmt.Errorf("two signal transmitters with issuer %q", r.Verifier.Issuer())
		}
		s.signals[r.Verifier.Issuer()] = r
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if a := opts.Anonymous; a != nil {
		s.anon = &anonymous{cfg: *a, limiter: newLimiter(store, "anonymous", max(a.PerIP, 1), cmpDuration(a.Window, time.Hour), throttleMaxKeys, s.log)}
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
	s.keys = keyring.New(keyring.Config{Store: store, Algorithm: cfg.Algorithm, Now: s.now, Sealer: opts.Sealer,
		Files: cfg.SigningKeys, LinkTokenTTL: LinkTokenTTL})
	if err := s.keys.EnsureFirstMACSecret(ctx); err != nil {
		return nil, fmt.Errorf("load refresh secret: %w", err)
	}
	if err := s.keys.Ensure(ctx); err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	// Last: the mail queue starts goroutines.
	if opts.Email != nil {
		if s.email, err = s.newEmailer(*opts.Email); err != nil {
			return nil, err
		}
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
		return newError(KindNotFound, ReasonNotFound, "not found", err)
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

// identityRacedError answers a sign-in whose identity was unlinked (or
// moved to another user) between its read and its session's write.
func identityRacedError() error {
	return newError(KindInvalidToken, ReasonRevoked, "the identity was unlinked while signing in; sign in again", nil)
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
