package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/webhook"
)

// WebhookConfig is one endpoint of `webhooks:` (docs/events.md).
type WebhookConfig struct {
	// Name keys the endpoint's deliveries in the outbox; default: URL.
	// Keep it when the URL changes, or pending deliveries are orphaned.
	Name       string   `yaml:"name"`
	URL        string   `yaml:"url"`
	Secret     Secret   `yaml:"secret"`      // "whsec_" + base64, usually "${ENV_VAR}"
	SecretFile string   `yaml:"secret_file"` // or a file holding it
	Events     []string `yaml:"events"`      // empty: every event type
	// Timeout bounds one attempt (default 10s); MaxAttempts gives up after
	// that many (default 20, about 12 hours of exponential backoff).
	Timeout     time.Duration `yaml:"timeout"`
	MaxAttempts int           `yaml:"max_attempts"`

	key []byte // parsed by Validate
}

// validateWebhooks checks the endpoints and reads secret_file secrets.
// Messages name the key, never the secret.
func (c *Config) validateWebhooks(p *Problems) {
	names := map[string]bool{}
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		path := fmt.Sprintf("webhooks[%d]", i)
		u, err := url.Parse(w.URL)
		switch {
		case w.URL == "":
			p.add(path+".url", "is required")
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			p.add(path+".url", "must be an absolute http(s) URL")
		case u.User != nil:
			p.add(path+".url", "must not carry credentials; the signature authenticates the sender")
		case u.Scheme == "http" && !loopbackHost(u.Hostname()):
			p.add(path+".url", "must be https (plain http only to a loopback host): events carry user data")
		}
		if w.Name == "" {
			w.Name = w.URL
		}
		if names[w.Name] {
			p.add(path+".name", "%q names two endpoints (set distinct names)", w.Name)
		}
		names[w.Name] = true
		if w.SecretFile != "" {
			if w.Secret != "" {
				p.add(path+".secret_file", "set secret or secret_file, not both")
			} else if raw, err := os.ReadFile(w.SecretFile); err != nil {
				p.add(path+".secret_file", "cannot be read: %v", errors.Unwrap(err))
			} else {
				w.Secret = Secret(strings.TrimRight(string(raw), "\r\n"))
			}
		}
		if w.Secret == "" {
			if w.SecretFile == "" {
				p.add(path+".secret", "is required (whsec_ + base64 of 24 to 64 random bytes; generate one: echo whsec_$(openssl rand -base64 32))")
			}
		} else if key, err := webhook.ParseSecret(string(w.Secret)); err != nil {
			key := path + ".secret"
			if w.SecretFile != "" {
				key = path + ".secret_file"
			}
			p.add(key, "%v", err)
		} else {
			w.key = key
		}
		for j, e := range w.Events {
			if !slices.Contains(exchange.WebhookEvents, e) {
				p.add(fmt.Sprintf("%s.events[%d]", path, j), "must be one of %s, got %q", strings.Join(exchange.WebhookEvents, ", "), e)
			}
		}
		if w.Timeout < 0 || w.Timeout > time.Minute {
			p.add(path+".timeout", "must be 0 (10s) to 1m, got %s", w.Timeout)
		}
		if w.MaxAttempts < 0 || w.MaxAttempts > 100 {
			p.add(path+".max_attempts", "must be 0 (20) to 100, got %d", w.MaxAttempts)
		}
	}
}

// webhookTargets is what exchange needs: names and filters.
func (c *Config) webhookTargets() []exchange.WebhookTarget {
	var out []exchange.WebhookTarget
	for _, w := range c.Webhooks {
		out = append(out, exchange.WebhookTarget{Name: w.Name, Events: w.Events})
	}
	return out
}

// notifyWebhooks wakes the delivery worker (exchange calls it after a
// commit that wrote events).
func (s *service) notifyWebhooks() {
	if s.webhooks != nil {
		s.webhooks.Notify()
	}
}

// startWebhooks starts the delivery worker when endpoints are configured
// and answers the function that stops it: the worker finishes the
// attempts in flight (each bounded by its timeout) and returns; what is
// still pending is delivered by the next start or another instance.
func (s *service) startWebhooks() func() {
	if len(s.cfg.Webhooks) == 0 {
		return func() {}
	}
	var eps []webhook.Endpoint
	for _, w := range s.cfg.Webhooks {
		eps = append(eps, webhook.Endpoint{Name: w.Name, URL: w.URL, Key: w.key, Timeout: w.Timeout, MaxAttempts: w.MaxAttempts})
	}
	worker, err := webhook.New(webhook.Options{Store: s.store, Endpoints: eps, Logger: s.log})
	if err != nil {
		s.log.Error("webhooks: the delivery worker cannot start", "err", err)
		return func() {}
	}
	s.webhooks = worker
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		worker.Run(ctx)
	}()
	s.log.Info("webhooks: delivering", "endpoints", len(eps))
	return func() {
		cancel()
		<-done
	}
}
