package providers

import (
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// TypeConfig is one provider type's configuration as an operator writes it:
// a struct per type (OIDCConfig, GoogleConfig, ...) holding exactly the
// keys that type takes, so a key of another type has no field to land in.
// The yaml tags are plain strings: this package decodes nothing itself.
// NewTypeConfig returns one with the type's defaults filled in.
type TypeConfig interface {
	// Shared is the keys every type takes (a pointer: the caller may read
	// client_secret_file into ClientSecret before Validate).
	Shared() *Common
	// Validate reports every problem, each with its key below the provider.
	Validate() []Problem
	// URLs is every URL-valued key the type takes, with its value
	// (defaults included; "" when unset).
	URLs() map[string]string
	// Config is the verifier configuration for New, for provider name.
	Config(name string) Config
	// EmailProvesOwnership: the type's verified email proves the user owns
	// the address (docs/providers.md), so accounts may link by it
	// automatically unless configured otherwise.
	EmailProvesOwnership() bool
	// IdentityIssuer names the identities for callers that look a provider
	// up by issuer; "" when only the verifier knows it (apple unless
	// configured, microsoft, github).
	IdentityIssuer() string
}

// Problem is one configuration problem: Key is the path below the
// provider ("client_ids[0]", "throttle.window"), Message what is wrong.
type Problem struct {
	Key     string
	Message string
}

func (p Problem) String() string { return p.Key + ": " + p.Message }

// problems collects Problems.
type problems []Problem

func (ps *problems) add(key, format string, args ...any) {
	*ps = append(*ps, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

// Secret is a string that never prints (a config dumped to a log or an
// error shows "[redacted]").
type Secret string

func (Secret) String() string   { return "[redacted]" }
func (Secret) GoString() string { return "[redacted]" }

// LogValue keeps the secret out of slog output.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Common is the keys every provider type takes. LinkByEmail, TrustEmail
// and AllowSignup are account policy: this package only carries them for
// the caller (the exchange), which checks and applies them.
type Common struct {
	Type      string   `yaml:"type"`
	ClientIDs []string `yaml:"client_ids"`
	// ClientSecret belongs to ClientIDs[0]: inline (use ${ENV}) or read
	// from ClientSecretFile by the caller.
	ClientSecret     Secret        `yaml:"client_secret"`
	ClientSecretFile string        `yaml:"client_secret_file"`
	RedirectURIs     []string      `yaml:"redirect_uris"`
	Leeway           time.Duration `yaml:"leeway"`

	LinkByEmail string `yaml:"link_by_email"`
	TrustEmail  *bool  `yaml:"trust_email"`
	AllowSignup *bool  `yaml:"allow_signup"`
}

// Shared returns c itself; the per-type structs embed Common and so
// implement TypeConfig's Shared.
func (c *Common) Shared() *Common { return c }

func (c *Common) hasSecret() bool { return c.ClientSecret != "" || c.ClientSecretFile != "" }

// config is the part of Config the common keys fill.
func (c *Common) config(name string) Config {
	return Config{Name: name, Type: c.Type, ClientIDs: c.ClientIDs, ClientSecret: string(c.ClientSecret),
		Leeway: c.Leeway, RedirectURIs: c.RedirectURIs}
}

// validate checks the common keys. acceptsCodes: the provider exchanges
// authorization codes, so it must list its redirect_uris unless
// codesOptional (github, whose client_secret is needed for its app check
// alone: no list, no codes).
func (c *Common) validate(ps *problems, acceptsCodes, codesOptional bool) {
	if len(c.ClientIDs) == 0 {
		ps.add("client_ids", "needs at least one client id")
	}
	for i, id := range c.ClientIDs {
		if id == "" {
			ps.add(fmt.Sprintf("client_ids[%d]", i), "must not be empty")
		}
	}
	if c.ClientSecret != "" && c.ClientSecretFile != "" {
		ps.add("client_secret_file", "set client_secret or client_secret_file, not both")
	}
	if c.Leeway < 0 || c.Leeway > 10*time.Minute {
		ps.add("leeway", "must be between 0 and 10m, got %s", c.Leeway)
	}
	if acceptsCodes && len(c.RedirectURIs) == 0 && !codesOptional {
		ps.add("redirect_uris", "is required with client_secret: the exact redirect_uris your app uses for the code flow (a code is accepted only with one of them and a PKCE code_verifier)")
	}
	if len(c.RedirectURIs) > 0 && !acceptsCodes {
		ps.add("redirect_uris", "applies to providers that exchange codes (client_secret; oauth2 also token_url)")
	}
	for i, raw := range c.RedirectURIs {
		u, err := url.Parse(raw)
		switch {
		case err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "" && u.Path == ""):
			ps.add(fmt.Sprintf("redirect_uris[%d]", i), "must be an absolute URL, got %q", raw)
		case strings.Contains(raw, "#"):
			ps.add(fmt.Sprintf("redirect_uris[%d]", i), "must not have a fragment, got %q", raw)
		}
	}
}

// IDTokenPolicy is the keys of the types that verify id_tokens.
type IDTokenPolicy struct {
	// MaxAge bounds now - iat (too_old); 0: no bound.
	MaxAge time.Duration `yaml:"max_age"`
	// RequireNonce refuses tokens and requests without nonce.
	RequireNonce bool `yaml:"require_nonce"`
	// JWKSRefreshMax caps how long a fetched key set is trusted (0: 1h).
	JWKSRefreshMax time.Duration `yaml:"jwks_refresh_max"`
}

func (p *IDTokenPolicy) validate(ps *problems) {
	if p.MaxAge < 0 {
		ps.add("max_age", "must not be negative, got %s", p.MaxAge)
	}
	if p.JWKSRefreshMax != 0 && (p.JWKSRefreshMax < 5*time.Minute || p.JWKSRefreshMax > 24*time.Hour) {
		ps.add("jwks_refresh_max", "must be between 5m and 24h, got %s", p.JWKSRefreshMax)
	}
}

func (p *IDTokenPolicy) apply(cfg *Config) {
	cfg.MaxAge, cfg.RequireNonce, cfg.JWKSRefreshMax = p.MaxAge, p.RequireNonce, p.JWKSRefreshMax
}

// validateURLs checks URL-valued keys: absolute http(s) URLs (the issuer
// is checked by its type), and https unless the host is loopback: keys and
// userinfo fetched over plain http can be swapped by anyone on the path,
// and every token would then verify.
func validateURLs(ps *problems, urls map[string]string) {
	for _, key := range slices.Sorted(maps.Keys(urls)) {
		v := urls[key]
		u, err := url.Parse(v)
		switch {
		case v == "":
		case key != "issuer" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == ""):
			ps.add(key, "must be an absolute http(s) URL, got %q", v)
		case err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()):
			ps.add(key, "must use https (plain http only for a loopback host), got %q", v)
		}
	}
}

// validateIssuerURL: the issuer oidc and oauth2 require.
func validateIssuerURL(ps *problems, issuer string) {
	if u, err := url.Parse(issuer); err != nil || u.Scheme == "" || u.Host == "" {
		ps.add("issuer", "must be the provider's issuer URL, got %q", issuer)
	}
}

// NewTypeConfig returns the configuration struct of provider type typ,
// with the type's defaults filled in, or false for an unknown type.
func NewTypeConfig(typ string) (TypeConfig, bool) {
	t, ok := types[typ]
	if !ok {
		return nil, false
	}
	c := t.config()
	c.Shared().Type = typ
	return c, true
}

// Types lists the provider types this build knows, sorted.
func Types() []string { return slices.Sorted(maps.Keys(types)) }
