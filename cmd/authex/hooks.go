package main

import (
	"net/url"
	"time"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/providers/emulator"
)

// HooksConfig is `hooks`: calls authex makes to the app (docs/events.md).
type HooksConfig struct {
	Claims *ClaimsHookConfig `yaml:"claims"`
}

// ClaimsHookConfig is hooks.claims: the app's endpoint for extra access
// token claims.
type ClaimsHookConfig struct {
	URL string `yaml:"url"`
	// Secret signs each request (HMAC-SHA256); use "${ENV_VAR}".
	Secret    Secret        `yaml:"secret"`
	Timeout   time.Duration `yaml:"timeout"`
	CacheTTL  time.Duration `yaml:"cache_ttl"`
	OnFailure string        `yaml:"on_failure"`
}

// Claims hook defaults and bounds.
const (
	defaultHookTimeout  = 500 * time.Millisecond
	maxHookTimeout      = 5 * time.Second
	defaultHookCacheTTL = time.Minute
	minHookSecret       = 16
)

func (c *Config) validateHooks(p *Problems) {
	h := c.Hooks.Claims
	if h == nil {
		return
	}
	if h.Timeout == 0 {
		h.Timeout = defaultHookTimeout
	}
	if h.CacheTTL == 0 {
		h.CacheTTL = defaultHookCacheTTL
	}
	if h.OnFailure == "" {
		h.OnFailure = exchange.HookDeny
	}
	u, err := url.Parse(h.URL)
	switch {
	case h.URL == "" || err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		p.add("hooks.claims.url", "must be the hook's absolute http(s) URL")
	case u.Scheme == "http" && !emulator.IsLoopbackHost(u.Hostname()):
		p.add("hooks.claims.url", "must be https (plain http only on loopback): the request carries the user's email and roles")
	}
	if len(h.Secret) < minHookSecret {
		p.add("hooks.claims.secret", "must be at least %d characters (use \"${ENV_VAR}\")", minHookSecret)
	}
	if h.Timeout < 0 || h.Timeout > maxHookTimeout {
		p.add("hooks.claims.timeout", "must be between 0 (default %s) and %s, got %s", defaultHookTimeout, maxHookTimeout, h.Timeout)
	}
	if h.CacheTTL < 0 {
		p.add("hooks.claims.cache_ttl", "must be 0 (default %s) or positive, got %s", defaultHookCacheTTL, h.CacheTTL)
	}
	switch h.OnFailure {
	case exchange.HookDeny, exchange.HookOmit:
	default:
		p.add("hooks.claims.on_failure", "must be deny or omit, got %q", h.OnFailure)
	}
}

// claimsHook is the exchange's hook config (after Validate); nil: none.
func (c *Config) claimsHook() *exchange.ClaimsHookConfig {
	h := c.Hooks.Claims
	if h == nil {
		return nil
	}
	return &exchange.ClaimsHookConfig{URL: h.URL, Secret: []byte(h.Secret), Timeout: h.Timeout,
		CacheTTL: h.CacheTTL, OnFailure: h.OnFailure}
}
