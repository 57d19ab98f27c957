package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/authex/authex/providers"
)

// productionProblems lists what docs/security.md ("Production checklist")
// says a production deployment must not have. `authex config check
// -production` fails on any of them; `serve` only logs them, because a
// staging box is not wrong to run without a TLS front.
//
// It runs on a config that passed Validate, so every value is well formed.
func (c *Config) productionProblems() Problems {
	var p Problems
	if u, err := url.Parse(c.Server.PublicURL); err == nil && u.Scheme != "https" {
		p.add("server.public_url", "must be https in production (tokens and refresh tokens cross it), got %q", c.Server.PublicURL)
	}
	if c.Secrets.kek == nil {
		p.add("secrets.kek", "is not set: signing keys and refresh secrets would be sealed under a key file generated beside the database, so a copy of the data directory holds both; set secrets.kek or secrets.kek_file from a secret store")
	}
	if c.Log.Level == "debug" {
		p.add("log.level", "debug logs request details meant for development; use info")
	}
	if len(c.Clients) == 0 {
		p.add("clients", "none configured: anyone holding a provider token can exchange it, refresh tokens are not bound to a client and introspection is off")
	}
	hasConfidential := false
	for _, cl := range c.Clients {
		hasConfidential = hasConfidential || !cl.Public
	}
	if len(c.Clients) > 0 && !hasConfidential {
		p.add("clients", "every client is public: at least the server-side app (the Next-Auth callback) should be confidential, with a secret")
	}
	if len(c.Admin.Tokens) > 0 && c.Server.AdminListen == "" {
		p.add("server.admin_listen", "is not set: the admin API and /metrics share the public listener; serve them on a private address")
	} else if c.Server.AdminListen != "" && !privateListen(c.Server.AdminListen) {
		p.add("server.admin_listen", "listens on every interface (%q): bind it to loopback or a private address", c.Server.AdminListen)
	}
	for i, cidr := range c.Server.trustedNets {
		if ones, _ := cidr.Mask.Size(); ones == 0 {
			p.add(fmt.Sprintf("server.trusted_proxies[%d]", i),
				"trusts every address: any client could then set X-Forwarded-For and escape the per-IP limits")
		}
	}
	for _, name := range sortedKeys(c.Providers) {
		pc := c.Providers[name]
		if pc.Spec == nil {
			continue
		}
		urls := pc.Spec.URLs()
		for _, key := range sortedKeys(urls) {
			if u, err := url.Parse(urls[key]); err == nil && u.Scheme == "http" {
				p.add("providers."+name+"."+key, "is plain http on loopback: a development provider, not one for production")
			}
		}
		if ms, ok := pc.Spec.(*providers.MicrosoftConfig); ok {
			for i, t := range ms.AllowedTenants {
				if t == "*" {
					p.add(fmt.Sprintf("providers.%s.allowed_tenants[%d]", name, i),
						"\"*\" lets any Azure AD tenant sign in, and a tenant admin can assert any email")
				}
			}
		}
	}
	if e := c.Email; e != nil {
		if e.Transport == "log" {
			p.add("email.transport", "log writes live verification and reset links to the log instead of mailing them: use smtp")
		}
		if e.Transport == "smtp" && e.SMTP.TLS == "none" {
			p.add("email.smtp.tls", "none: mail (and the links in it) crosses to the relay in clear; use starttls or implicit")
		}
		for _, l := range []struct{ key, v string }{{"email.links.verify_email", e.Links.VerifyEmail}, {"email.links.reset_password", e.Links.ResetPassword}} {
			if !strings.HasPrefix(l.v, "https://") {
				p.add(l.key, "must be https in production: the link carries a live token")
			}
		}
	}
	return p
}

// privateListen reports whether a listen address is bound to loopback or a
// private (RFC 1918, RFC 4193) address rather than to every interface.
func privateListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && !ip.IsUnspecified() && (ip.IsLoopback() || ip.IsPrivate())
}
