package providers

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// oidcVerifier verifies id_tokens from one OpenID Connect issuer. The
// google type is this verifier with a preset (see google.go).
type oidcVerifier struct {
	name         string
	issuer       string   // canonical: discovery must name it, Identity.Issuer is it
	issuers      []string // spellings accepted in iss (issuer first)
	wellKnown    string   // the discovery document's URL
	clientIDs    []string
	secret       string   // ClientSecret of clientIDs[0]; "" disables code exchange
	redirectURIs []string // Config.RedirectURIs
	maxAge       time.Duration
	needNonce    bool
	jwksMax      time.Duration // Config.JWKSRefreshMax
	jwksMin      time.Duration
	domains      []string // allowed hd values, lower case; empty: hd unchecked
	needDomain   bool     // domains is set (google only)
	needVerEm    bool     // Config.RequireVerifiedEmail
	leeway       time.Duration
	now          func() time.Time
	client       *http.Client
	log          *slog.Logger
	keyCooldown  time.Duration
	keyFetched   func(error)
	backoffMin   time.Duration
	backoffMax   time.Duration

	// Type hooks; nil means the plain OIDC behaviour.
	//
	// docIssuerOK accepts the issuer a discovery document names (default:
	// it equals issuer). issuerOf checks a verified token's iss (and what
	// goes with it) and returns the canonical issuer of the Identity
	// (default: iss is one of issuers, the identity gets issuer). finish
	// fills type-specific parts of the Identity. accessToken verifies an
	// access token sent alone; nil refuses it.
	docIssuerOK func(string) bool
	issuerOf    func(d *discovered, cl *claims) (string, error)
	finish      func(cl *claims, id *Identity)
	accessToken func(ctx context.Context, token string) (Identity, error)

	disc  atomic.Pointer[discovered] // nil until discovery succeeds
	ready chan struct{}              // closed when disc is set

	mu      sync.Mutex
	lastErr error // last discovery failure, for Ready
	tries   int
}

// discovered is what discovery yields; immutable once published.
type discovered struct {
	issuer   string   // as the document names it (microsoft: a template)
	algs     []string // id_token algs we accept: advertised ∩ asymmetric
	keys     *keySet
	verifier *oidc.IDTokenVerifier
	tokenURL string // token_endpoint, for code exchange; may be empty
}

var _ Verifier = (*oidcVerifier)(nil)

// OIDCConfig is type oidc: any OpenID Connect provider, by its issuer.
type OIDCConfig struct {
	Common        `yaml:",inline"`
	IDTokenPolicy `yaml:",inline"`
	Issuer        string `yaml:"issuer"` // required
}

func (c *OIDCConfig) Validate() []Problem {
	var ps problems
	validateIssuerURL(&ps, c.Issuer)
	validateURLs(&ps, c.URLs())
	c.Common.validate(&ps, c.hasSecret(), false)
	c.IDTokenPolicy.validate(&ps)
	return ps
}

func (c *OIDCConfig) URLs() map[string]string { return map[string]string{"issuer": c.Issuer} }

func (c *OIDCConfig) Config(name string) Config {
	cfg := c.config(name)
	cfg.Issuer = c.Issuer
	c.apply(&cfg)
	return cfg
}

// EmailProvesOwnership: an arbitrary issuer may assert any email verified.
func (c *OIDCConfig) EmailProvesOwnership() bool { return false }
func (c *OIDCConfig) IdentityIssuer() string     { return c.Issuer }

func newOIDC(ctx context.Context, cfg Config) (Verifier, error) {
	if err := checkIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	v := newOIDCVerifier(cfg, []string{cfg.Issuer})
	v.start(ctx)
	return v, nil
}

func checkIssuer(issuer string) error {
	if issuer == "" {
		return errors.New("issuer is required")
	}
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("issuer %q is not an http(s) URL", issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("issuer %q must not have a query or fragment", issuer)
	}
	return nil
}

func newOIDCVerifier(cfg Config, issuers []string) *oidcVerifier {
	return &oidcVerifier{
		name:         cfg.Name,
		issuer:       cfg.Issuer,
		issuers:      issuers,
		wellKnown:    strings.TrimSuffix(cfg.Issuer, "/") + "/.well-known/openid-configuration",
		clientIDs:    slices.Clone(cfg.ClientIDs),
		secret:       cfg.ClientSecret,
		redirectURIs: slices.Clone(cfg.RedirectURIs),
		maxAge:       cfg.MaxAge,
		needNonce:    cfg.RequireNonce,
		jwksMax:      cfg.JWKSRefreshMax,
		jwksMin:      cfg.jwksRefreshMin,
		needVerEm:    cfg.RequireVerifiedEmail,
		leeway:       cfg.Leeway,
		now:          cfg.Now,
		client:       cfg.HTTPClient,
		log:          cfg.Logger,
		keyCooldown:  cfg.keyCooldown,
		keyFetched:   cfg.KeyFetched,
		backoffMin:   cfg.backoffMin,
		backoffMax:   cfg.backoffMax,
		ready:        make(chan struct{}),
	}
}

func (v *oidcVerifier) Name() string { return v.name }

func (v *oidcVerifier) readyChan() <-chan struct{} { return v.ready }

func (v *oidcVerifier) Ready() error {
	if v.disc.Load() != nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lastErr == nil {
		return fmt.Errorf("%w: provider %q: discovery of %s in progress", ErrUnavailable, v.name, v.issuer)
	}
	return fmt.Errorf("%w: provider %q: discovery of %s failed %d time(s), last: %v", ErrUnavailable, v.name, v.issuer, v.tries, v.lastErr)
}

// start runs discovery in the background: at once, then after backoffMin
// (1s), doubling up to backoffMax (5m), until it succeeds or ctx is
// cancelled.
func (v *oidcVerifier) start(ctx context.Context) {
	go func() {
		delay := v.backoffMin
		for {
			err := v.discover(ctx)
			if err == nil {
				return
			}
			v.mu.Lock()
			v.lastErr, v.tries = err, v.tries+1
			tries := v.tries
			v.mu.Unlock()
			if ctx.Err() != nil {
				v.log.Warn("provider discovery stopped", "issuer", v.issuer, "err", ctx.Err())
				return
			}
			v.log.Warn("provider discovery failed; retrying", "issuer", v.issuer, "attempt", tries, "retry_in", delay, "err", err)
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				v.log.Warn("provider discovery stopped", "issuer", v.issuer, "err", ctx.Err())
				return
			case <-t.C:
			}
			delay = min(delay*2, v.backoffMax)
		}
	}()
}

// discoveryDoc is the part of the discovery document we use.
type discoveryDoc struct {
	Issuer        string   `json:"issuer"`
	JWKSURI       string   `json:"jwks_uri"`
	Algs          []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpoint string   `json:"token_endpoint"`
}

// discover fetches the discovery document and the key set, and publishes
// them. We fetch the document ourselves rather than through
// oidc.NewProvider so that errors never carry the upstream body and we see
// the advertised algorithms before go-oidc filters them.
func (v *oidcVerifier) discover(ctx context.Context) error {
	wellKnown := v.wellKnown
	body, err := getJSON(ctx, v.client, wellKnown)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	var doc discoveryDoc
	if err := decodeStrict(body, maxDocumentSize, &doc); err != nil {
		return fmt.Errorf("discovery: GET %s: body is not a discovery document: %w", wellKnown, err)
	}
	if v.docIssuerOK != nil {
		if !v.docIssuerOK(doc.Issuer) {
			return fmt.Errorf("discovery: document names issuer %q, not one of this provider's", doc.Issuer)
		}
	} else if doc.Issuer != v.issuer {
		return fmt.Errorf("discovery: document names issuer %q, configured %q", doc.Issuer, v.issuer)
	}
	if doc.TokenEndpoint != "" {
		if err := checkEndpoint("token_endpoint", doc.TokenEndpoint); err != nil {
			return fmt.Errorf("discovery: %w", err)
		}
	}
	if err := checkEndpoint("jwks_uri", doc.JWKSURI); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}

	advertised := doc.Algs
	if len(advertised) == 0 {
		advertised = []string{"RS256"} // OIDC Discovery's default
	}
	var algs []string
	for _, a := range advertised {
		if asymmetricAlgs[a] && !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		v.log.Warn("provider advertises no asymmetric id_token algorithm; every token will be refused", "advertised", doc.Algs)
	}

	keys := newKeySet(doc.JWKSURI, v.client, v.keyCooldown, v.log)
	keys.fetched = v.keyFetched
	keys.now, keys.minTTL, keys.maxTTL = v.now, v.jwksMin, v.jwksMax
	if err := keys.load(ctx); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	d := &discovered{
		issuer:   doc.Issuer,
		tokenURL: doc.TokenEndpoint,
		algs:     algs,
		keys:     keys,
		// go-oidc checks the signature (through our keySet) and the alg;
		// we check everything else ourselves to give each failure its
		// reason and to honour our leeway, several client ids and
		// Google's second issuer spelling.
		verifier: oidc.NewVerifier(doc.Issuer, keys, &oidc.Config{
			SkipClientIDCheck:    true,
			SkipExpiryCheck:      true,
			SkipIssuerCheck:      true,
			SupportedSigningAlgs: algs,
		}),
	}
	v.disc.Store(d)
	close(v.ready)
	go keys.maintain(ctx)
	v.log.Info("provider discovered", "issuer", v.issuer, "jwks_uri", doc.JWKSURI, "algs", algs, "keys", len(keys.current().Keys))
	return nil
}

func (v *oidcVerifier) Verify(ctx context.Context, c Credential) (Identity, error) {
	switch {
	case c.IDToken != "":
		d, err := v.discovered()
		if err != nil {
			return Identity{}, err
		}
		return v.verifyIDToken(ctx, d, c)
	case c.Code != "":
		if v.secret == "" {
			return Identity{}, refuse(ReasonMalformed, "this provider does not accept an authorization code (no client_secret is configured); send the id_token", nil)
		}
		d, err := v.discovered()
		if err != nil {
			return Identity{}, err
		}
		return v.exchangeCode(ctx, d, c)
	case c.AccessToken != "" && v.accessToken != nil:
		if v.needNonce {
			return Identity{}, refuse(ReasonNonceRequired, "this provider requires a nonce-bearing id_token; an access token alone is not accepted", nil)
		}
		id, err := v.accessToken(ctx, c.AccessToken)
		if err != nil {
			return Identity{}, err
		}
		id.Provider = v.name
		return id, nil
	default:
		// An access token alone proves nothing about whom it was issued
		// to unless the provider can tell us: refused.
		return Identity{}, refuse(ReasonMalformed, "this provider needs an id_token", nil)
	}
}

func (v *oidcVerifier) discovered() (*discovered, error) {
	d := v.disc.Load()
	if d == nil {
		return nil, fmt.Errorf("%w: provider %q has not completed discovery", ErrUnavailable, v.name)
	}
	return d, nil
}

func (v *oidcVerifier) verifyIDToken(ctx context.Context, d *discovered, c Credential) (Identity, error) {
	hdr, err := parseHeader(c.IDToken)
	if err != nil {
		return Identity{}, err
	}
	if !slices.Contains(d.algs, hdr.Alg) {
		// Covers none and HS*: they are never in d.algs.
		return Identity{}, refuse(ReasonAlgorithm, "", fmt.Errorf("alg %q, accepted %v", hdr.Alg, d.algs))
	}

	out := &sigOutcome{}
	tok, err := d.verifier.Verify(context.WithValue(ctx, sigOutcomeKey{}, out), c.IDToken)
	if err != nil {
		if out.err != nil {
			return Identity{}, out.err
		}
		// The signature verified (or was never reached because go-jose
		// refused to parse the token); go-oidc's own complaints are about
		// the token's shape: undecodable claims, bad distributed claims.
		return Identity{}, refuse(ReasonMalformed, "id_token claims are malformed", err)
	}

	var raw json.RawMessage
	if err := tok.Claims(&raw); err != nil {
		return Identity{}, refuse(ReasonMalformed, "id_token claims are not a JSON object", err)
	}
	cl, err := decodeClaims(raw)
	if err != nil {
		return Identity{}, err
	}
	issuer, err := v.checkClaims(d, &cl, c)
	if err != nil {
		return Identity{}, err
	}
	if c.AccessToken != "" && cl.AtHash != "" {
		if err := tok.VerifyAccessToken(c.AccessToken); err != nil {
			return Identity{}, refuse(ReasonAtHash, "", err)
		}
	}
	if v.needDomain && !slices.Contains(v.domains, strings.ToLower(cl.HostedDomain)) {
		return Identity{}, refuse(ReasonDomain, "", fmt.Errorf("hd %q, allowed %v", cl.HostedDomain, v.domains))
	}
	id := Identity{
		Provider:      v.name,
		Issuer:        issuer,
		Subject:       cl.Subject,
		Email:         cl.Email,
		EmailVerified: bool(cl.EmailVerified),
		Name:          cl.Name,
		Picture:       cl.Picture,
		HostedDomain:  cl.HostedDomain,
		TokenKey:      tokenKey(issuer, cl.TokenID, c.IDToken),
		NonceAttested: cl.Nonce != "" && c.Nonce == "" && c.NonceCheckedByClient,
	}
	if cl.IssuedAt != nil {
		id.IssuedAt = cl.IssuedAt.UTC()
	}
	if cl.Expiry != nil {
		id.TokenExpiresAt = cl.Expiry.Add(v.leeway).UTC()
	}
	if v.finish != nil {
		v.finish(&cl, &id)
	}
	if v.needVerEm && (id.Email == "" || !id.EmailVerified) {
		return Identity{}, refuse(ReasonEmailNotVerified, "", fmt.Errorf("email present %v, email_verified %v", id.Email != "", id.EmailVerified))
	}
	return id, nil
}

// checkClaims checks the claims of a token whose signature verified:
// issuer, audience, times, subject, nonce. It returns the canonical issuer.
func (v *oidcVerifier) checkClaims(d *discovered, cl *claims, c Credential) (string, error) {
	issuer := v.issuer
	if v.issuerOf != nil {
		var err error
		if issuer, err = v.issuerOf(d, cl); err != nil {
			return "", err
		}
	} else if !slices.Contains(v.issuers, cl.Issuer) {
		return "", refuse(ReasonIssuer, "", fmt.Errorf("iss %q, accepted %q", cl.Issuer, v.issuers))
	}
	if err := v.checkRest(cl, c); err != nil {
		return "", err
	}
	return issuer, nil
}

func (v *oidcVerifier) checkRest(cl *claims, c Credential) error {

	if !slices.ContainsFunc(cl.Audience, v.isClientID) {
		return refuse(ReasonAudience, "", fmt.Errorf("aud %q, client ids %q", []string(cl.Audience), v.clientIDs))
	}
	if (len(cl.Audience) > 1 || cl.AuthorizedParty != "") && !v.isClientID(cl.AuthorizedParty) {
		return refuse(ReasonAudience, "id_token authorized party (azp) is not one of this provider's client ids",
			fmt.Errorf("azp %q, aud %q, client ids %q", cl.AuthorizedParty, []string(cl.Audience), v.clientIDs))
	}

	now := v.now()
	if cl.Expiry == nil {
		return refuse(ReasonExpired, "id_token has no expiry (exp)", nil)
	}
	if cl.Expiry.Before(now.Add(-v.leeway)) {
		return refuse(ReasonExpired, "", fmt.Errorf("exp %s, now %s, leeway %s", cl.Expiry.UTC(), now.UTC(), v.leeway))
	}
	if cl.NotBefore != nil && cl.NotBefore.After(now.Add(v.leeway)) {
		return refuse(ReasonNotYetValid, "", fmt.Errorf("nbf %s, now %s, leeway %s", cl.NotBefore.UTC(), now.UTC(), v.leeway))
	}
	if cl.IssuedAt != nil && cl.IssuedAt.After(now.Add(v.leeway)) {
		return refuse(ReasonNotYetValid, "id_token is issued in the future (iat)", fmt.Errorf("iat %s, now %s, leeway %s", cl.IssuedAt.UTC(), now.UTC(), v.leeway))
	}
	if v.maxAge > 0 {
		if cl.IssuedAt == nil {
			return refuse(ReasonTooOld, "id_token has no issue time (iat) and this provider has a max_age", nil)
		}
		if now.Sub(cl.IssuedAt.Time) > v.maxAge+v.leeway {
			return refuse(ReasonTooOld, "", fmt.Errorf("iat %s, now %s, max_age %s, leeway %s", cl.IssuedAt.UTC(), now.UTC(), v.maxAge, v.leeway))
		}
	}

	if cl.Subject == "" {
		return refuse(ReasonMalformed, "id_token has no subject (sub)", nil)
	}

	if v.needNonce && (cl.Nonce == "" || (c.Nonce == "" && !c.NonceCheckedByClient)) {
		return refuse(ReasonNonceRequired, "", fmt.Errorf("request nonce present %v, id_token nonce present %v", c.Nonce != "", cl.Nonce != ""))
	}
	switch {
	case c.Nonce != "":
		sum := sha256.Sum256([]byte(c.Nonce))
		if !equal(cl.Nonce, c.Nonce) && !equal(cl.Nonce, hex.EncodeToString(sum[:])) {
			return refuse(ReasonNonce, "", nil)
		}
	case cl.Nonce != "" && !c.NonceCheckedByClient:
		// A token minted for a nonce-bearing flow, replayed without it.
		return refuse(ReasonNonce, "id_token carries a nonce but none was sent", nil)
	}
	return nil
}

// tokenKey names one id_token at its issuer: by its jti when it has one
// (the issuer promises it is unique), else by a hash of the whole token.
func tokenKey(issuer, jti, raw string) string {
	if jti != "" {
		return issuer + " jti " + jti
	}
	sum := sha256.Sum256([]byte(raw))
	return issuer + " sha256 " + hex.EncodeToString(sum[:])
}

func (v *oidcVerifier) isClientID(id string) bool { return slices.Contains(v.clientIDs, id) }

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
