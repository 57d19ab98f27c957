package main

import (
	"context"
	"time"

	"github.com/authex/authex/exchange"
)

// AnonymousConfig is `anonymous`: POST /v1/anonymous (docs/events.md,
// "Anonymous users").
type AnonymousConfig struct {
	Enabled bool `yaml:"enabled"`
	// PerIP anonymous users per client address per Window.
	PerIP  int           `yaml:"per_ip"`
	Window time.Duration `yaml:"window"`
	// SweepAfter: an anonymous user idle this long that never linked an
	// identity is deleted.
	SweepAfter time.Duration `yaml:"sweep_after"`
}

// Anonymous users' defaults.
const (
	defaultAnonPerIP      = 10
	defaultAnonWindow     = time.Hour
	defaultAnonSweepAfter = 30 * 24 * time.Hour
	anonSweepInterval     = time.Hour
)

func (c *Config) validateAnonymous(p *Problems) {
	a := &c.Anonymous
	if a.PerIP == 0 {
		a.PerIP = defaultAnonPerIP
	}
	if a.Window == 0 {
		a.Window = defaultAnonWindow
	}
	if a.SweepAfter == 0 {
		a.SweepAfter = defaultAnonSweepAfter
	}
	if a.PerIP < 0 {
		p.add("anonymous.per_ip", "must be positive, got %d", a.PerIP)
	}
	if a.Window < 0 {
		p.add("anonymous.window", "must be positive, got %s", a.Window)
	}
	if a.SweepAfter < time.Hour {
		p.add("anonymous.sweep_after", "must be at least 1h, got %s", a.SweepAfter)
	}
	if _, taken := c.Providers[exchange.AnonymousProvider]; taken && a.Enabled {
		p.add("providers.anonymous", "the name anonymous is the anonymous users' placeholder provider; rename this provider or turn anonymous.enabled off")
	}
}

// anonymous is the exchange's config (after Validate); nil: off.
func (c *Config) anonymous() *exchange.AnonymousConfig {
	if !c.Anonymous.Enabled {
		return nil
	}
	a := c.Anonymous
	return &exchange.AnonymousConfig{PerIP: a.PerIP, Window: a.Window, SweepAfter: a.SweepAfter}
}

// sweepAnonymous deletes stale anonymous users every hour until ctx ends.
func (s *service) sweepAnonymous(ctx context.Context) {
	t := time.NewTicker(anonSweepInterval)
	defer t.Stop()
	for {
		if n, err := s.svc.SweepAnonymous(ctx); err != nil {
			s.log.Warn("anonymous sweep", "err", err)
		} else if n > 0 {
			s.log.Info("anonymous users swept", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
