package main

import (
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/mail"
)

// EmailConfig is the `email:` section: how authex sends its mail (email
// verification, password reset; docs/accounts.md). Absent, those features
// answer 501 email_not_configured.
type EmailConfig struct {
	// Transport: smtp, or log (development: the links are written to the
	// log, never sent).
	Transport string          `yaml:"transport"`
	From      string          `yaml:"from"`
	SMTP      EmailSMTPConfig `yaml:"smtp"`
	Links     EmailLinks      `yaml:"links"`
	// TemplatesDir holds the operator's templates; each file missing there
	// is the embedded default (docs/accounts.md lists the names).
	TemplatesDir string              `yaml:"templates_dir"`
	VerifyTTL    time.Duration       `yaml:"verify_ttl"`
	ResetTTL     time.Duration       `yaml:"reset_ttl"`
	Throttle     EmailThrottleConfig `yaml:"throttle"`
	Retry        EmailRetryConfig    `yaml:"retry"`
	QueueSize    int                 `yaml:"queue_size"`

	templates *mail.Templates // loaded by Validate
}

// EmailSMTPConfig is the SMTP relay.
type EmailSMTPConfig struct {
	Host         string        `yaml:"host"`
	Port         int           `yaml:"port"`
	TLS          string        `yaml:"tls"` // starttls (default), implicit, none (loopback only)
	Username     string        `yaml:"username"`
	Password     Secret        `yaml:"password"`      // usually "${SMTP_PASSWORD}"
	PasswordFile string        `yaml:"password_file"` // or a file holding it
	Timeout      time.Duration `yaml:"timeout"`
}

// EmailLinks are the app's pages the mails link to: {token} is replaced by
// the token, {uid} by the user id (base64url, dj-rest-auth's uid).
type EmailLinks struct {
	VerifyEmail   string `yaml:"verify_email"`
	ResetPassword string `yaml:"reset_password"`
}

// EmailThrottleConfig bounds the mail one address or one client IP can
// cause: burst mails, refilled in full over window.
type EmailThrottleConfig struct {
	PerAddress int           `yaml:"per_address"`
	PerIP      int           `yaml:"per_ip"`
	Window     time.Duration `yaml:"window"`
}

// EmailRetryConfig is the send queue's retry policy.
type EmailRetryConfig struct {
	Attempts int           `yaml:"attempts"`
	Initial  time.Duration `yaml:"initial"`
	Max      time.Duration `yaml:"max"`
}

// Defaults of the email section.
const (
	defaultSMTPPort      = 587
	defaultEmailPerAddr  = 5
	defaultEmailPerIP    = 20
	defaultEmailWindow   = time.Hour
	defaultEmailAttempts = 6
	defaultEmailInitial  = 2 * time.Second
	defaultEmailMax      = 5 * time.Minute
	defaultEmailQueue    = 1000
)

// validateEmail fills defaults, reads password_file, loads the templates
// and checks the section. Messages name the key, never the password.
func (c *Config) validateEmail(p *Problems) {
	e := c.Email
	if e == nil {
		return
	}
	switch e.Transport {
	case "smtp":
		c.validateSMTP(p)
	case "log":
	case "":
		p.add("email.transport", "is required: smtp, or log (development: links written to the log)")
	default:
		p.add("email.transport", "must be smtp or log, got %q", e.Transport)
	}
	if a, err := netmail.ParseAddress(e.From); err != nil || strings.ContainsAny(e.From, "\r\n") {
		p.add("email.from", "must be an address such as \"Example <no-reply@example.com>\", got %q", e.From)
	} else if !strings.Contains(a.Address, "@") {
		p.add("email.from", "must hold a full address")
	}
	for _, l := range []struct{ key, v string }{{"email.links.verify_email", e.Links.VerifyEmail}, {"email.links.reset_password", e.Links.ResetPassword}} {
		u, err := url.Parse(strings.ReplaceAll(strings.ReplaceAll(l.v, "{token}", "t"), "{uid}", "u"))
		switch {
		case l.v == "":
			p.add(l.key, "is required: the page of your app that takes the token, e.g. https://app.example.com/reset-password?token={token}")
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			p.add(l.key, "must be an absolute http(s) URL, got %q", l.v)
		case !strings.Contains(l.v, "{token}"):
			p.add(l.key, "must contain {token}")
		}
	}
	if e.VerifyTTL == 0 {
		e.VerifyTTL = exchange.DefaultVerifyTTL
	}
	if e.ResetTTL == 0 {
		e.ResetTTL = exchange.DefaultResetTTL
	}
	if e.VerifyTTL < time.Minute || e.VerifyTTL > 7*24*time.Hour {
		p.add("email.verify_ttl", "must be between 1m and 168h, got %s", e.VerifyTTL)
	}
	if e.ResetTTL < time.Minute || e.ResetTTL > 24*time.Hour {
		p.add("email.reset_ttl", "must be between 1m and 24h, got %s", e.ResetTTL)
	}
	t := &e.Throttle
	t.PerAddress, t.PerIP, t.Window = orInt(t.PerAddress, defaultEmailPerAddr), orInt(t.PerIP, defaultEmailPerIP), orDur(t.Window, defaultEmailWindow)
	if t.PerAddress < 0 || t.PerIP < 0 || t.Window < 0 {
		p.add("email.throttle", "per_address, per_ip and window must be positive")
	}
	r := &e.Retry
	r.Attempts, r.Initial, r.Max = orInt(r.Attempts, defaultEmailAttempts), orDur(r.Initial, defaultEmailInitial), orDur(r.Max, defaultEmailMax)
	if r.Attempts < 1 || r.Attempts > 20 {
		p.add("email.retry.attempts", "must be between 1 and 20, got %d", r.Attempts)
	}
	if r.Initial < 0 || r.Max < r.Initial {
		p.add("email.retry", "initial must be positive and at most max")
	}
	e.QueueSize = orInt(e.QueueSize, defaultEmailQueue)
	if e.QueueSize < 1 || e.QueueSize > 1_000_000 {
		p.add("email.queue_size", "must be between 1 and 1000000, got %d", e.QueueSize)
	}
	tmpl, err := mail.LoadTemplates(e.TemplatesDir)
	if err != nil {
		p.add("email.templates_dir", "%v", err)
	}
	e.templates = tmpl
	if _, ok := c.Providers["password"]; !ok {
		p.add("email", "sends only password accounts' mail: configure providers.password too, or remove the section")
	}
}

func (c *Config) validateSMTP(p *Problems) {
	s := &c.Email.SMTP
	if s.Host == "" {
		p.add("email.smtp.host", "is required with transport smtp")
	}
	if s.Port == 0 {
		s.Port = defaultSMTPPort
	}
	if s.Port < 1 || s.Port > 65535 {
		p.add("email.smtp.port", "must be 1..65535, got %d", s.Port)
	}
	if s.TLS == "" {
		s.TLS = mail.TLSStartTLS
	}
	switch s.TLS {
	case mail.TLSStartTLS, mail.TLSImplicit:
	case mail.TLSNone:
		if !loopbackHost(s.Host) {
			p.add("email.smtp.tls", "none sends mail (and any password) in clear: only for a relay on loopback, not %q", s.Host)
		}
	default:
		p.add("email.smtp.tls", "must be starttls, implicit or none, got %q", s.TLS)
	}
	if s.PasswordFile != "" {
		if s.Password != "" {
			p.add("email.smtp.password_file", "set password or password_file, not both")
		} else if raw, err := os.ReadFile(s.PasswordFile); err != nil {
			p.add("email.smtp.password_file", "cannot be read: %v", errors.Unwrap(err))
		} else {
			s.Password = Secret(strings.TrimRight(string(raw), "\r\n"))
		}
	}
	if s.Password != "" && s.Username == "" {
		p.add("email.smtp.username", "is required with a password")
	}
	if s.Username != "" && s.Password == "" {
		p.add("email.smtp.password", "is required with a username (or password_file)")
	}
	if s.Timeout == 0 {
		s.Timeout = 30 * time.Second
	}
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func orDur(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// emailWarnings: the log transport off loopback.
func (c *Config) emailWarnings() []string {
	if c.Email == nil || c.Email.Transport != "log" {
		return nil
	}
	if u, err := url.Parse(c.Server.PublicURL); err == nil && !loopbackHost(u.Hostname()) {
		return []string{"email.transport: log writes live verification and reset links to the log instead of mailing them: for development only"}
	}
	return nil
}

// exchangeEmail builds the service's email options (nil: no email section).
func (c *Config) exchangeEmail(log *slog.Logger) (*exchange.EmailConfig, error) {
	e := c.Email
	if e == nil {
		return nil, nil
	}
	var sender mail.Sender = mail.Log{Logger: log}
	if e.Transport == "smtp" {
		s, err := mail.NewSMTP(mail.SMTPConfig{Host: e.SMTP.Host, Port: e.SMTP.Port, TLS: e.SMTP.TLS,
			Username: e.SMTP.Username, Password: string(e.SMTP.Password), From: e.From, Timeout: e.SMTP.Timeout})
		if err != nil {
			return nil, fmt.Errorf("email: %w", err)
		}
		sender = s
	}
	return &exchange.EmailConfig{Sender: sender, Templates: e.templates,
		VerifyURL: e.Links.VerifyEmail, ResetURL: e.Links.ResetPassword, VerifyTTL: e.VerifyTTL, ResetTTL: e.ResetTTL,
		AddressBurst: e.Throttle.PerAddress, IPBurst: e.Throttle.PerIP, Window: e.Throttle.Window,
		Retry:     mail.Retry{Attempts: e.Retry.Attempts, Initial: e.Retry.Initial, Max: e.Retry.Max},
		QueueSize: e.QueueSize}, nil
}
