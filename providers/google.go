package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// googleIssuer is Google's issuer. Google's id_tokens carry it either as is
// or without its scheme ("accounts.google.com"); both are accepted.
const googleIssuer = "https://accounts.google.com"

// GoogleConfig is type google: Sign in with Google, with its issuer and
// endpoints as defaults.
type GoogleConfig struct {
	Common        `yaml:",inline"`
	IDTokenPolicy `yaml:",inline"`
	Issuer        string `yaml:"issuer"`
	// AllowedDomains: when set, the token's hd (Workspace domain) must be
	// one of them.
	AllowedDomains []string `yaml:"allowed_domains"`
	// TokenInfoURL binds an access token sent alone to our client ids;
	// UserInfoURL then reads the account.
	TokenInfoURL string `yaml:"tokeninfo_url"`
	UserInfoURL  string `yaml:"userinfo_url"`
}

func newGoogleConfig() TypeConfig {
	return &GoogleConfig{Issuer: googleIssuer, TokenInfoURL: googleTokenInfo, UserInfoURL: googleUserInfo}
}

func (c *GoogleConfig) Validate() []Problem {
	var ps problems
	validateURLs(&ps, c.URLs())
	c.Common.validate(&ps, c.hasSecret(), false)
	c.IDTokenPolicy.validate(&ps)
	return ps
}

func (c *GoogleConfig) URLs() map[string]string {
	return map[string]string{"issuer": c.Issuer, "tokeninfo_url": c.TokenInfoURL, "userinfo_url": c.UserInfoURL}
}

func (c *GoogleConfig) Config(name string) Config {
	cfg := c.config(name)
	cfg.Issuer, cfg.AllowedDomains, cfg.TokenInfoURL, cfg.UserInfoURL = c.Issuer, c.AllowedDomains, c.TokenInfoURL, c.UserInfoURL
	c.apply(&cfg)
	return cfg
}

// EmailProvesOwnership: Google verifies the addresses it asserts.
func (c *GoogleConfig) EmailProvesOwnership() bool { return true }
func (c *GoogleConfig) IdentityIssuer() string     { return c.Issuer }

// newGoogle is the oidc verifier with Google's preset: the default issuer,
// its scheme-less spelling, the Workspace domain (hd) check, and access
// tokens alone bound through tokeninfo.
func newGoogle(ctx context.Context, cfg Config) (Verifier, error) {
	if cfg.Issuer == "" {
		cfg.Issuer = googleIssuer
	}
	if err := checkIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	var domains []string
	for i, d := range cfg.AllowedDomains {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "" {
			return nil, fmt.Errorf("allowed_domains[%d] is empty", i)
		}
		if strings.ContainsAny(d, "/@ ") {
			return nil, errors.New("allowed_domains entries are bare domains, like example.com")
		}
		domains = append(domains, d)
	}

	issuers := []string{cfg.Issuer}
	if bare := strings.TrimPrefix(strings.TrimPrefix(cfg.Issuer, "https://"), "http://"); bare != cfg.Issuer {
		issuers = append(issuers, bare)
	}
	tokenInfoURL, userInfoURL := cfg.TokenInfoURL, cfg.UserInfoURL
	if tokenInfoURL == "" {
		tokenInfoURL = googleTokenInfo
	}
	if userInfoURL == "" {
		userInfoURL = googleUserInfo
	}
	if err := checkURL("tokeninfo_url", tokenInfoURL); err != nil {
		return nil, err
	}
	if err := checkURL("userinfo_url", userInfoURL); err != nil {
		return nil, err
	}
	v := newOIDCVerifier(cfg, issuers)
	v.domains = domains
	v.needDomain = len(domains) > 0
	v.accessToken = func(ctx context.Context, token string) (Identity, error) {
		return v.verifyGoogleAccessToken(ctx, tokenInfoURL, userInfoURL, token)
	}
	v.start(ctx)
	return v, nil
}

const (
	googleTokenInfo = "https://oauth2.googleapis.com/tokeninfo"
	googleUserInfo  = "https://openidconnect.googleapis.com/v1/userinfo"
)

// googleTokenInfo is the part of Google's tokeninfo answer we use. Google
// sends numbers and booleans there as strings.
type tokenInfo struct {
	Audience  string `json:"aud"`
	AuthParty string `json:"azp"`
	Subject   string `json:"sub"`
	ExpiresIn string `json:"expires_in"`
}

// verifyGoogleAccessToken accepts a Google access token sent without its
// id_token. A Google access token says nothing, by itself, about which app
// it was issued to: any app's token reads the same userinfo. So tokeninfo
// binds it first (aud and azp must be our client ids, else
// audience_mismatch), and only then is userinfo read. The identity's
// issuer is Google's, so it is the same identity as an id_token sign-in.
func (v *oidcVerifier) verifyGoogleAccessToken(ctx context.Context, tokenInfoURL, userInfoURL, token string) (Identity, error) {
	req, err := newRequest(http.MethodPost, tokenInfoURL, url.Values{"access_token": {token}})
	if err != nil {
		return Identity{}, err
	}
	var ti tokenInfo
	status, err := callJSON(ctx, v.client, req, &ti)
	switch {
	case err != nil:
		return Identity{}, err
	case status == http.StatusBadRequest || status == http.StatusUnauthorized:
		return Identity{}, refuse(ReasonTokenInactive, "", fmt.Errorf("tokeninfo: %d", status))
	case status != http.StatusOK:
		return Identity{}, fmt.Errorf("%w: tokeninfo: status %d", ErrUnavailable, status)
	}
	if ti.Audience == "" && ti.AuthParty == "" {
		return Identity{}, refuse(ReasonAudience, "access token's tokeninfo names no client", nil)
	}
	if (ti.Audience != "" && !v.isClientID(ti.Audience)) || (ti.AuthParty != "" && !v.isClientID(ti.AuthParty)) {
		return Identity{}, refuse(ReasonAudience, "access token was issued to another app, not to one of this provider's client ids",
			fmt.Errorf("aud %q, azp %q, client ids %q", ti.Audience, ti.AuthParty, v.clientIDs))
	}
	if n, err := strconv.Atoi(ti.ExpiresIn); ti.ExpiresIn != "" && (err != nil || n <= 0) {
		return Identity{}, refuse(ReasonTokenInactive, "", fmt.Errorf("tokeninfo expires_in %q", ti.ExpiresIn))
	}

	ui, err := readUserInfo(ctx, v.client, userInfoURL, token)
	if err != nil {
		return Identity{}, err
	}
	if ti.Subject != "" && ui.Sub != ti.Subject {
		return Identity{}, refuse(ReasonMalformed, "the provider's userinfo and tokeninfo name different accounts",
			fmt.Errorf("tokeninfo sub %q, userinfo sub %q", ti.Subject, ui.Sub))
	}
	if v.needDomain && !slices.Contains(v.domains, strings.ToLower(ui.HostedDomain)) {
		return Identity{}, refuse(ReasonDomain, "", fmt.Errorf("hd %q, allowed %v", ui.HostedDomain, v.domains))
	}
	id := ui.identity(v.issuer)
	id.HostedDomain = ui.HostedDomain
	if v.needVerEm && !id.EmailVerified {
		return Identity{}, refuse(ReasonEmailNotVerified, "", nil)
	}
	return id, nil
}
