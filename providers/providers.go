// Package providers turns a credential from a sign-in provider (an OpenID
// Connect id_token, an authorization code, or an access token where the
// provider lets us bind it to our client) into a verified Identity.
//
// It knows go-oidc, go-jose and OAuth 2. It must never know about users,
// storage or authex's own tokens, and it never serves HTTP: callers map a
// refused credential (*Error, with its machine-readable Reason) and
// ErrUnavailable to their own answers.
//
// Every provider type is one entry in the types map, keyed by Config.Type,
// the way dex keys its connectors: the constructor of its verifier and of
// its configuration struct (TypeConfig), which owns the type's keys, their
// defaults and their validation.
package providers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Credential is what a client forwards from its provider. Which fields a
// provider accepts depends on its type. IDToken wins when present; else Code
// is exchanged (when a client secret is configured); else AccessToken alone
// is accepted only by types that can bind it to one of our client ids.
type Credential struct {
	IDToken      string
	AccessToken  string // with IDToken: checked against at_hash; alone: see above
	Code         string // authorization code, for a server-side exchange
	CodeVerifier string // PKCE verifier that goes with Code
	RedirectURI  string // redirect_uri that goes with Code
	Nonce        string // the raw nonce the client sent to the provider
	// NonceCheckedByClient lets an id_token carry a nonce that the request
	// does not repeat: the caller (package exchange, never a request
	// field) sets it only for an authenticated client registered as
	// checking the nonce of its own flows. A Nonce that is sent is still
	// compared, and RequireNonce still needs the token to carry one.
	NonceCheckedByClient bool
}

// Identity is a verified statement by a provider about one account.
// (Issuer, Subject) identifies the account; Issuer is the configured,
// canonical issuer even when the token used another accepted spelling, so
// the pair is stable.
type Identity struct {
	Provider      string // Config.Name
	Issuer        string
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Picture       string
	HostedDomain  string // Google Workspace domain (hd), if any
	PrivateEmail  bool   // Apple: Email is a private relay address
	TenantID      string // Microsoft: the token's tid

	// IssuedAt is the credential's iat (zero when it has none).
	IssuedAt time.Time
	// TokenKey names this one credential at its issuer, for refusing a
	// second use of it: the issuer and the token's jti, or the issuer and
	// a SHA-256 of the whole token when it has no jti. Empty for a
	// credential that cannot be presented twice (an authorization code,
	// which the provider redeems once).
	TokenKey string
	// TokenExpiresAt is when the credential stops verifying (exp plus the
	// leeway): a recorded TokenKey can be forgotten after it.
	TokenExpiresAt time.Time
	// NonceAttested: the id_token carried a nonce that was not compared,
	// because the request sent none and Credential.NonceCheckedByClient
	// was set. The caller records who attested it.
	NonceAttested bool
}

// Config configures one provider.
type Config struct {
	Name string // config key, e.g. "google"
	Type string // a key of the types map: "oidc", "google", "apple", "microsoft", "github", "oauth2"

	// Issuer: required for oidc and oauth2 (for oauth2 it only names the
	// identities); google defaults to https://accounts.google.com, apple to
	// https://appleid.apple.com. Not used by microsoft and github.
	Issuer string

	// ClientIDs: the token's aud must contain one of them; when the token has
	// several audiences, or an azp claim, azp must be one of them. github
	// takes exactly one (the OAuth app whose secret is ClientSecret).
	ClientIDs []string

	// ClientSecret belongs to ClientIDs[0]. It enables the server-side code
	// exchange (every type), and it is required by github (the app check)
	// and by oauth2 with IntrospectionURL (client authentication).
	ClientSecret string

	// Microsoft: Authority is the login host (default
	// https://login.microsoftonline.com); Tenant the endpoint (common,
	// organizations, consumers or a tenant id; default common); discovery
	// is at AUTHORITY/TENANT/v2.0/.well-known/openid-configuration.
	// AllowedTenants is required: the tids allowed to sign in, or "*".
	Authority      string
	Tenant         string
	AllowedTenants []string

	// APIURL (github): the REST API base; default https://api.github.com.
	APIURL string

	// TokenURL: the token endpoint for code exchange where there is no
	// discovery (github: default https://github.com/login/oauth/access_token;
	// oauth2). OIDC types take it from discovery.
	TokenURL string

	// TokenInfoURL binds an access token to our client ids: google
	// (default https://oauth2.googleapis.com/tokeninfo) and oauth2, whose
	// answer must name one of them in aud, azp, client_id or audience.
	// UserInfoURL then reads the account: google (default
	// https://openidconnect.googleapis.com/v1/userinfo) and oauth2.
	// IntrospectionURL (oauth2) is the RFC 7662 alternative to TokenInfoURL,
	// called with ClientIDs[0] and ClientSecret.
	TokenInfoURL     string
	UserInfoURL      string
	IntrospectionURL string

	// AllowedDomains (google only): when set, the token's hd must be one of
	// them.
	AllowedDomains []string

	// RequireVerifiedEmail refuses a token whose email_verified is not true
	// (reason email_not_verified). Off by default: most callers only need
	// EmailVerified to decide about linking.
	RequireVerifiedEmail bool

	// Leeway is the clock leeway for exp, nbf and iat; 0 means 60s.
	Leeway time.Duration

	// RedirectURIs are the redirect_uris a code may come with (exact
	// match). A code is accepted only with one of them and a PKCE
	// code_verifier (RFC 9700 §2.1.1): a leaked code alone redeems
	// nothing. Empty: codes are refused.
	RedirectURIs []string

	// MaxAge, when set, refuses an id_token without iat or issued longer
	// ago than MaxAge (plus Leeway): reason too_old.
	MaxAge time.Duration

	// RequireNonce refuses an id_token without nonce, and a request
	// without one (reason nonce_required).
	RequireNonce bool

	// JWKSRefreshMax caps how long a fetched key set is trusted before it
	// is fetched again, whatever its Cache-Control says; 0 means 1h. The
	// refresh interval is the answer's max-age (or Expires), clamped to
	// [5m, JWKSRefreshMax] (JWKSRefreshMax alone when the answer has
	// none), so a key the provider removes stops verifying within it.
	JWKSRefreshMax time.Duration

	HTTPClient *http.Client     // nil: a client with a 10s timeout
	Logger     *slog.Logger     // nil: slog.Default()
	Now        func() time.Time // nil: time.Now; for token times only

	// KeyFetched, when set, is called after every fetch of the provider's
	// key set with its error (nil on success), for metrics. It must not block.
	KeyFetched func(err error)

	// Test seams, set through export_test.go.
	backoffMin  time.Duration // first discovery retry delay; 0 means 1s
	backoffMax  time.Duration // discovery retry delay cap; 0 means 5m
	keyCooldown time.Duration // unknown-kid refetch cooldown; 0 means 30s
	// jwksRefreshMin is the shortest scheduled key refresh; 0 means 5m.
	jwksRefreshMin time.Duration
}

// Verifier verifies credentials for one configured provider.
type Verifier interface {
	// Name is the provider's config key.
	Name() string

	// Verify returns the identity the credential proves. A refused
	// credential is a *Error; until discovery has succeeded the error
	// satisfies errors.Is(err, ErrUnavailable). Other errors (a cancelled
	// ctx) are returned as they are.
	Verify(ctx context.Context, c Credential) (Identity, error)

	// Ready is nil once discovery succeeded; otherwise it says why not (for
	// /readyz). A non-nil error satisfies errors.Is(err, ErrUnavailable).
	Ready() error
}

// ErrUnavailable means the provider cannot verify anything right now: its
// discovery document or keys have not been loaded yet.
var ErrUnavailable = errors.New("provider unavailable")

// constructor builds a Verifier from a config whose common fields New has
// already checked and defaulted.
type constructor func(ctx context.Context, cfg Config) (Verifier, error)

// providerType is one provider type: the constructor of its verifier and
// the constructor of its configuration struct (defaults filled in).
type providerType struct {
	build  constructor
	config func() TypeConfig
}

// types maps Config.Type (the `type:` of a provider's configuration) to
// the type. Adding a provider type is one entry here, its config struct
// and its constructor.
var types = map[string]providerType{
	"oidc":      {newOIDC, func() TypeConfig { return &OIDCConfig{} }},
	"google":    {newGoogle, newGoogleConfig},
	"apple":     {newApple, func() TypeConfig { return &AppleConfig{} }},
	"microsoft": {newMicrosoft, newMicrosoftConfig},
	"github":    {newGitHub, newGitHubConfig},
	"oauth2":    {newOAuth2, func() TypeConfig { return &OAuth2Config{} }},
}

const (
	defaultLeeway      = 60 * time.Second
	defaultHTTPTimeout = 10 * time.Second
	defaultBackoffMin  = time.Second
	defaultBackoffMax  = 5 * time.Minute
	defaultKeyCooldown = 30 * time.Second
	defaultJWKSRefresh = time.Hour
	minJWKSRefresh     = 5 * time.Minute
)

// New returns the Verifier for cfg. It fails only for a bad config (unknown
// type, no client ids, oidc without issuer, ...). It never waits for the
// network: discovery runs in the background, retrying with exponential
// backoff (1s doubling to 5m) until it succeeds or ctx is cancelled.
func New(ctx context.Context, cfg Config) (Verifier, error) {
	var problems []string
	if cfg.Name == "" {
		problems = append(problems, "name is empty")
	}
	t, ok := types[cfg.Type]
	if !ok {
		problems = append(problems, fmt.Sprintf("unknown type %q (known: %s)", cfg.Type, knownTypes()))
	}
	if len(cfg.ClientIDs) == 0 {
		problems = append(problems, "client_ids is empty")
	}
	for i, id := range cfg.ClientIDs {
		if strings.TrimSpace(id) == "" {
			problems = append(problems, fmt.Sprintf("client_ids[%d] is empty", i))
		}
	}
	if cfg.Leeway < 0 {
		problems = append(problems, "leeway is negative")
	}
	for i, u := range cfg.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			problems = append(problems, fmt.Sprintf("redirect_uris[%d]: %v", i, err))
		}
	}
	if (cfg.MaxAge != 0 || cfg.RequireNonce) && (cfg.Type == "github" || cfg.Type == "oauth2") {
		problems = append(problems, "max_age and require_nonce apply to id_tokens: not supported by type "+cfg.Type)
	}
	if cfg.MaxAge < 0 {
		problems = append(problems, "max_age is negative")
	}
	if floor := cmp.Or(cfg.jwksRefreshMin, minJWKSRefresh); cfg.JWKSRefreshMax < 0 || (cfg.JWKSRefreshMax > 0 && cfg.JWKSRefreshMax < floor) {
		problems = append(problems, fmt.Sprintf("jwks_refresh_max must be at least %s", floor))
	}
	if len(cfg.AllowedTenants) > 0 && cfg.Type != "microsoft" {
		problems = append(problems, "allowed_tenants is only supported by type microsoft")
	}
	if len(cfg.AllowedDomains) > 0 && cfg.Type != "google" {
		problems = append(problems, "allowed_domains is only supported by type google")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("providers: provider %q: %s", cfg.Name, strings.Join(problems, "; "))
	}

	if cfg.Leeway == 0 {
		cfg.Leeway = defaultLeeway
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = cfg.Logger.With("provider", cfg.Name)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.backoffMin <= 0 {
		cfg.backoffMin = defaultBackoffMin
	}
	if cfg.backoffMax <= 0 {
		cfg.backoffMax = defaultBackoffMax
	}
	if cfg.backoffMax < cfg.backoffMin {
		cfg.backoffMax = cfg.backoffMin
	}
	if cfg.keyCooldown <= 0 {
		cfg.keyCooldown = defaultKeyCooldown
	}
	if cfg.JWKSRefreshMax == 0 {
		cfg.JWKSRefreshMax = defaultJWKSRefresh
	}
	if cfg.jwksRefreshMin <= 0 {
		cfg.jwksRefreshMin = minJWKSRefresh
	}
	v, err := t.build(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("providers: provider %q: %w", cfg.Name, err)
	}
	return v, nil
}

func knownTypes() string { return strings.Join(Types(), ", ") }

// WaitReady blocks until v is ready or ctx is done, and then returns
// v.Ready() (joined with ctx's error when ctx ended first). For startup
// ("wait a little for providers before serving") and for tests.
func WaitReady(ctx context.Context, v Verifier) error {
	if r, ok := v.(interface{ readyChan() <-chan struct{} }); ok {
		select {
		case <-r.readyChan():
			return nil
		case <-ctx.Done():
			return errors.Join(v.Ready(), ctx.Err())
		}
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		err := v.Ready()
		if err == nil {
			return nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		}
	}
}
