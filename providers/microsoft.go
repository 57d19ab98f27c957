package providers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

const (
	microsoftAuthority = "https://login.microsoftonline.com"
	tenantPlaceholder  = "{tenantid}"
)

// MicrosoftConfig is type microsoft: the Microsoft identity platform
// (v2.0); discovery is at AUTHORITY/TENANT/v2.0/.well-known/openid-configuration.
type MicrosoftConfig struct {
	Common        `yaml:",inline"`
	IDTokenPolicy `yaml:",inline"`
	Authority     string `yaml:"authority"` // the login host
	// Tenant: common, organizations, consumers or a tenant id.
	Tenant string `yaml:"tenant"`
	// AllowedTenants (required): the tids allowed to sign in, or "*".
	AllowedTenants []string `yaml:"allowed_tenants"`
}

func newMicrosoftConfig() TypeConfig {
	return &MicrosoftConfig{Authority: microsoftAuthority, Tenant: "common"}
}

func (c *MicrosoftConfig) Validate() []Problem {
	var ps problems
	validateURLs(&ps, c.URLs())
	c.Common.validate(&ps, c.hasSecret(), false)
	c.IDTokenPolicy.validate(&ps)
	if len(c.AllowedTenants) == 0 {
		ps.add("allowed_tenants", `is required with type microsoft: the tenant ids allowed to sign in, or [ "*" ] for any`)
	}
	for i, t := range c.AllowedTenants {
		if strings.TrimSpace(t) == "" || strings.ContainsAny(t, "/?#{} ") {
			ps.add(fmt.Sprintf("allowed_tenants[%d]", i), `must be a tenant id or "*", got %q`, t)
		}
	}
	if strings.ContainsAny(c.Tenant, "/?#{} ") {
		ps.add("tenant", "must be common, organizations, consumers or a tenant id, got %q", c.Tenant)
	}
	return ps
}

func (c *MicrosoftConfig) URLs() map[string]string {
	return map[string]string{"authority": c.Authority}
}

func (c *MicrosoftConfig) Config(name string) Config {
	cfg := c.config(name)
	cfg.Authority, cfg.Tenant, cfg.AllowedTenants = c.Authority, c.Tenant, c.AllowedTenants
	c.apply(&cfg)
	return cfg
}

// EmailProvesOwnership is false: a tenant administrator can set any
// address as a user's mail (nOAuth).
func (c *MicrosoftConfig) EmailProvesOwnership() bool { return false }
func (c *MicrosoftConfig) IdentityIssuer() string     { return "" }

// newMicrosoft verifies id_tokens from the Microsoft identity platform
// (v2.0), through its multi-tenant endpoints.
//
// The common and organizations endpoints publish one discovery document
// whose issuer is a template, https://login.microsoftonline.com/{tenantid}/v2.0:
// every tenant signs with the same keys, and a token says which tenant it
// is from in tid. So a token's iss must equal the template with the
// token's own tid in it (else any tenant could claim to be another), and
// the tid must be one of AllowedTenants ("*": any tenant, which is what a
// consumer-facing app wants). The identity's issuer is that per-tenant
// issuer, so (issuer, sub) stays unique.
//
// Email: an Azure AD tenant administrator can set any unverified address
// as a user's mail, and the token's email then carries it (the "nOAuth"
// account-takeover class). So EmailVerified is false unless the token
// carries xms_edov (email domain owner verified) true; the app
// registration must request that optional claim. Microsoft's own
// email_verified, when present, is ignored.
func newMicrosoft(ctx context.Context, cfg Config) (Verifier, error) {
	if cfg.Issuer != "" {
		return nil, errors.New("issuer is not used by type microsoft: set authority and tenant")
	}
	authority := strings.TrimSuffix(cfg.Authority, "/")
	if authority == "" {
		authority = microsoftAuthority
	}
	if err := checkIssuer(authority); err != nil {
		return nil, fmt.Errorf("authority: %w", err)
	}
	tenant := cfg.Tenant
	if tenant == "" {
		tenant = "common"
	}
	if strings.ContainsAny(tenant, "/?#{} ") {
		return nil, fmt.Errorf("tenant %q must be common, organizations, consumers or a tenant id", tenant)
	}
	if len(cfg.AllowedTenants) == 0 {
		return nil, errors.New(`allowed_tenants is required: the tenant ids allowed to sign in, or "*" for any`)
	}
	var tenants []string
	anyTenant := false
	for i, t := range cfg.AllowedTenants {
		t = strings.ToLower(strings.TrimSpace(t))
		switch {
		case t == "":
			return nil, fmt.Errorf("allowed_tenants[%d] is empty", i)
		case t == "*":
			anyTenant = true
		case strings.ContainsAny(t, "/?#{} "):
			return nil, fmt.Errorf("allowed_tenants[%d] %q is not a tenant id", i, t)
		}
		tenants = append(tenants, t)
	}

	cfg.Issuer = authority + "/" + tenant + "/v2.0" // for discovery and logs
	v := newOIDCVerifier(cfg, nil)
	v.docIssuerOK = func(iss string) bool {
		// The template, or (tenant-specific endpoint) a concrete issuer,
		// on the authority's host.
		return strings.HasPrefix(iss, authority+"/") && strings.HasSuffix(iss, "/v2.0")
	}
	v.issuerOf = func(d *discovered, cl *claims) (string, error) {
		tid := cl.TenantID
		if tid == "" || strings.ContainsAny(tid, "/?#{} ") {
			return "", refuse(ReasonIssuer, "id_token has no valid tenant id (tid)", fmt.Errorf("tid %q", tid))
		}
		want := strings.ReplaceAll(d.issuer, tenantPlaceholder, tid)
		if cl.Issuer != want {
			return "", refuse(ReasonIssuer, "id_token issuer does not match its tenant id (tid)",
				fmt.Errorf("iss %q, tid %q, expected %q", cl.Issuer, tid, want))
		}
		if !anyTenant && !slices.Contains(tenants, strings.ToLower(tid)) {
			return "", refuse(ReasonTenant, "", fmt.Errorf("tid %q, allowed %v", tid, tenants))
		}
		return want, nil
	}
	v.finish = func(cl *claims, id *Identity) {
		id.TenantID = cl.TenantID
		id.EmailVerified = id.Email != "" && bool(cl.EmailDomainOV)
	}
	v.start(ctx)
	return v, nil
}
