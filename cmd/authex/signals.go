package main

import (
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/providers"
)

// SignalConfig is one entry of `signals`: an upstream transmitter of
// security events (docs/events.md, "Security signals in").
type SignalConfig struct {
	// Provider names the provider (in `providers`) whose identities the
	// events name.
	Provider string `yaml:"provider"`
	// Preset "google" fills issuer and jwks_uri with Google's Cross-
	// Account Protection values.
	Preset  string `yaml:"preset"`
	Issuer  string `yaml:"issuer"`
	JWKSURI string `yaml:"jwks_uri"`
	// Audiences are the `aud` values accepted; default the provider's
	// client_ids (Google addresses a SET to the OAuth client ids).
	Audiences []string `yaml:"audiences"`
	// MaxAge: SETs issued longer ago are refused; default 168h.
	MaxAge time.Duration `yaml:"max_age"`
}

// resolved fills the preset and the default audiences.
func (sc SignalConfig) resolved(provs map[string]ProviderConfig) SignalConfig {
	if sc.Preset == "google" {
		if sc.Issuer == "" {
			sc.Issuer = providers.GoogleRISCIssuer
		}
		if sc.JWKSURI == "" {
			sc.JWKSURI = providers.GoogleRISCJWKSURI
		}
	}
	if len(sc.Audiences) == 0 {
		if pc, ok := provs[sc.Provider]; ok && pc.Spec != nil {
			sc.Audiences = pc.Spec.Shared().ClientIDs
		}
	}
	if sc.MaxAge == 0 {
		sc.MaxAge = providers.DefaultSETMaxAge
	}
	return sc
}

func (c *Config) validateSignals(p *Problems) {
	seen := map[string]bool{}
	for i, raw := range c.Signals {
		path := fmt.Sprintf("signals[%d]", i)
		pc, ok := c.Providers[raw.Provider]
		switch {
		case raw.Provider == "":
			p.add(path+".provider", "must name a provider")
		case !ok || pc.Spec == nil:
			p.add(path+".provider", "names no configured id_token provider: %q", raw.Provider)
		}
		switch raw.Preset {
		case "", "google":
		default:
			p.add(path+".preset", "must be google or empty, got %q", raw.Preset)
		}
		sc := raw.resolved(c.Providers)
		if u, err := url.Parse(sc.Issuer); sc.Issuer == "" || err != nil || u.Scheme == "" || u.Host == "" {
			p.add(path+".issuer", "must be the transmitter's issuer URL (or set preset)")
		} else if seen[sc.Issuer] {
			p.add(path+".issuer", "two transmitters with issuer %q", sc.Issuer)
		}
		seen[sc.Issuer] = true
		if u, err := url.Parse(sc.JWKSURI); sc.JWKSURI == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p.add(path+".jwks_uri", "must be the transmitter's JWKS URL (or set preset)")
		}
		if len(sc.Audiences) == 0 {
			p.add(path+".audiences", "must name at least one audience (or the provider must have client_ids)")
		}
		for j, a := range sc.Audiences {
			if a == "" {
				p.add(fmt.Sprintf("%s.audiences[%d]", path, j), "must not be empty")
			}
		}
		if sc.MaxAge < 0 {
			p.add(path+".max_age", "must be positive, got %s", sc.MaxAge)
		}
	}
}

// buildSignals makes the transmitters' verifiers (after Validate).
func buildSignals(cfg Config, log *slog.Logger) ([]exchange.SignalReceiver, error) {
	var out []exchange.SignalReceiver
	for i, raw := range cfg.Signals {
		sc := raw.resolved(cfg.Providers)
		v, err := providers.NewSETVerifier(providers.SETConfig{Issuer: sc.Issuer, JWKSURI: sc.JWKSURI,
			Audiences: sc.Audiences, MaxAge: sc.MaxAge, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("signals[%d]: %w", i, err)
		}
		out = append(out, exchange.SignalReceiver{Provider: sc.Provider,
			IdentityIssuer: cfg.Providers[sc.Provider].Spec.IdentityIssuer(), Verifier: v})
	}
	return out, nil
}
