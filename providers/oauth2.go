package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// oauth2Verifier is the generic OAuth 2 type: a provider with a userinfo
// endpoint but no id_token. A bearer access token proves only that someone
// holds it, not that it was issued to us: a token obtained by any other app
// of the same provider would read the same userinfo and sign its holder in
// here as the victim. So the type requires a binding method, and without
// one New refuses the provider:
//
//   - IntrospectionURL: RFC 7662 introspection, authenticated with
//     ClientIDs[0] and ClientSecret; the answer must be active and its
//     client_id one of ClientIDs;
//   - TokenInfoURL: a tokeninfo endpoint (GET ?access_token=) whose answer
//     names the client in aud, azp, client_id, audience or issued_to; every
//     one of those that is present must be one of ClientIDs.
//
// Then UserInfoURL is read with the token. Issuer names the identities.
type oauth2Verifier struct {
	name          string
	issuer        string
	clientIDs     []string
	secret        string
	introspectURL string
	tokenInfo     *url.URL // parsed once; nil with introspectURL
	userInfoURL   string
	tokenURL      string
	redirectURIs  []string
	needVerEm     bool
	client        *http.Client
	log           *slog.Logger
}

var _ Verifier = (*oauth2Verifier)(nil)

// OAuth2Config is type oauth2: a provider with a userinfo endpoint and a
// way to bind access tokens to our client (introspection_url or
// tokeninfo_url); Issuer only names the identities.
type OAuth2Config struct {
	Common           `yaml:",inline"`
	Issuer           string `yaml:"issuer"`
	TokenURL         string `yaml:"token_url"`
	TokenInfoURL     string `yaml:"tokeninfo_url"`
	UserInfoURL      string `yaml:"userinfo_url"`
	IntrospectionURL string `yaml:"introspection_url"`
}

func (c *OAuth2Config) Validate() []Problem {
	var ps problems
	validateIssuerURL(&ps, c.Issuer)
	validateURLs(&ps, c.URLs())
	c.Common.validate(&ps, c.hasSecret() && c.TokenURL != "", false)
	if c.UserInfoURL == "" {
		ps.add("userinfo_url", "is required with type oauth2")
	}
	switch {
	case c.IntrospectionURL == "" && c.TokenInfoURL == "":
		ps.add("introspection_url", "type oauth2 needs a way to bind access tokens to our client: introspection_url or tokeninfo_url (without one, any app's token would sign its holder in)")
	case c.IntrospectionURL != "" && c.TokenInfoURL != "":
		ps.add("tokeninfo_url", "set introspection_url or tokeninfo_url, not both")
	case c.IntrospectionURL != "" && !c.hasSecret():
		ps.add("client_secret", "is required with introspection_url (RFC 7662 introspection is client-authenticated)")
	}
	return ps
}

func (c *OAuth2Config) URLs() map[string]string {
	return map[string]string{"issuer": c.Issuer, "token_url": c.TokenURL, "tokeninfo_url": c.TokenInfoURL,
		"userinfo_url": c.UserInfoURL, "introspection_url": c.IntrospectionURL}
}

func (c *OAuth2Config) Config(name string) Config {
	cfg := c.config(name)
	cfg.Issuer, cfg.TokenURL, cfg.TokenInfoURL, cfg.UserInfoURL, cfg.IntrospectionURL =
		c.Issuer, c.TokenURL, c.TokenInfoURL, c.UserInfoURL, c.IntrospectionURL
	return cfg
}

// EmailProvesOwnership is false: a generic provider's verified flag is
// not known to be proof.
func (c *OAuth2Config) EmailProvesOwnership() bool { return false }
func (c *OAuth2Config) IdentityIssuer() string     { return c.Issuer }

func newOAuth2(_ context.Context, cfg Config) (Verifier, error) {
	var problems []string
	add := func(err error) {
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	add(checkIssuer(cfg.Issuer))
	if cfg.UserInfoURL == "" {
		problems = append(problems, "userinfo_url is required by type oauth2")
	} else {
		add(checkURL("userinfo_url", cfg.UserInfoURL))
	}
	switch {
	case cfg.IntrospectionURL == "" && cfg.TokenInfoURL == "":
		problems = append(problems, "type oauth2 needs a way to bind access tokens to our client: introspection_url or tokeninfo_url (without one, any app's token would sign its holder in)")
	case cfg.IntrospectionURL != "" && cfg.TokenInfoURL != "":
		problems = append(problems, "set one of introspection_url and tokeninfo_url, not both")
	case cfg.IntrospectionURL != "":
		add(checkURL("introspection_url", cfg.IntrospectionURL))
		if cfg.ClientSecret == "" {
			problems = append(problems, "introspection_url needs client_secret (RFC 7662 introspection is client-authenticated)")
		}
	default:
		add(checkURL("tokeninfo_url", cfg.TokenInfoURL))
	}
	if cfg.TokenURL != "" {
		add(checkURL("token_url", cfg.TokenURL))
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	o := &oauth2Verifier{
		name: cfg.Name, issuer: cfg.Issuer, clientIDs: slices.Clone(cfg.ClientIDs), secret: cfg.ClientSecret,
		introspectURL: cfg.IntrospectionURL, userInfoURL: cfg.UserInfoURL,
		tokenURL: cfg.TokenURL, redirectURIs: slices.Clone(cfg.RedirectURIs), needVerEm: cfg.RequireVerifiedEmail, client: cfg.HTTPClient, log: cfg.Logger,
	}
	if cfg.TokenInfoURL != "" {
		o.tokenInfo, _ = url.Parse(cfg.TokenInfoURL) // checkURL parsed it
	}
	return o, nil
}

func (o *oauth2Verifier) Name() string { return o.name }

func (o *oauth2Verifier) Ready() error { return nil }

func (o *oauth2Verifier) Verify(ctx context.Context, c Credential) (Identity, error) {
	token, err := accessTokenOf(ctx, c, "this provider takes an access_token, not an id_token",
		o.client, o.log, o.clientIDs[0], o.secret, o.tokenURL, o.redirectURIs)
	if err != nil {
		return Identity{}, err
	}
	sub, err := o.bind(ctx, token)
	if err != nil {
		return Identity{}, err
	}
	ui, err := readUserInfo(ctx, o.client, o.userInfoURL, token)
	if err != nil {
		return Identity{}, err
	}
	if sub != "" && ui.Sub != sub {
		return Identity{}, refuse(ReasonMalformed, "the provider's userinfo and token check name different accounts",
			fmt.Errorf("bound sub %q, userinfo sub %q", sub, ui.Sub))
	}
	id := ui.identity(o.issuer)
	id.Provider = o.name
	if o.needVerEm && !id.EmailVerified {
		return Identity{}, refuse(ReasonEmailNotVerified, "", nil)
	}
	return id, nil
}

// bindAnswer is what introspection or tokeninfo tells us about the token.
type bindAnswer struct {
	Active    *bool           `json:"active"` // introspection only
	ClientID  string          `json:"client_id"`
	AuthParty string          `json:"azp"`
	IssuedTo  string          `json:"issued_to"`
	Audience  json.RawMessage `json:"aud"`
	Audience2 json.RawMessage `json:"audience"`
	Subject   string          `json:"sub"`
}

// bind checks that the token was issued to one of our client ids and
// returns the subject the check names, if any.
func (o *oauth2Verifier) bind(ctx context.Context, token string) (string, error) {
	var req *http.Request
	var err error
	what := "introspection"
	if o.introspectURL != "" {
		req, err = newRequest(http.MethodPost, o.introspectURL, url.Values{"token": {token}, "token_type_hint": {"access_token"}})
		if err == nil {
			// RFC 6749 §2.3.1: both parts form-encoded before Basic.
			req.SetBasicAuth(url.QueryEscape(o.clientIDs[0]), url.QueryEscape(o.secret))
		}
	} else {
		what = "tokeninfo"
		u := *o.tokenInfo
		q := u.Query()
		q.Set("access_token", token)
		u.RawQuery = q.Encode()
		req, err = newRequest(http.MethodGet, u.String(), nil)
	}
	if err != nil {
		return "", err
	}
	var a bindAnswer
	status, err := callJSON(ctx, o.client, req, &a)
	switch {
	case err != nil:
		return "", err
	case o.introspectURL != "" && (status == http.StatusUnauthorized || status == http.StatusForbidden):
		o.log.ErrorContext(ctx, "the provider refused our client credentials at its introspection endpoint; check client_ids[0] and client_secret", "status", status)
		return "", fmt.Errorf("%w: introspection: %d", ErrUnavailable, status)
	case o.introspectURL == "" && status >= 400 && status < 500:
		return "", refuse(ReasonTokenInactive, "", fmt.Errorf("tokeninfo: %d", status))
	case status != http.StatusOK:
		return "", fmt.Errorf("%w: %s: %d", ErrUnavailable, what, status)
	}
	if o.introspectURL != "" && (a.Active == nil || !*a.Active) {
		return "", refuse(ReasonTokenInactive, "", errors.New("introspection: active is not true"))
	}

	named := false
	for _, id := range []string{a.ClientID, a.AuthParty, a.IssuedTo} {
		if id == "" {
			continue
		}
		named = true
		if !slices.Contains(o.clientIDs, id) {
			return "", refuse(ReasonAudience, "access token was issued to another client, not to one of this provider's client ids",
				fmt.Errorf("%s names client %q, client ids %q", what, id, o.clientIDs))
		}
	}
	for _, raw := range []json.RawMessage{a.Audience, a.Audience2} {
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		var aud audience
		if err := aud.UnmarshalJSON(raw); err != nil {
			return "", fmt.Errorf("%w: %s: aud is neither a string nor a list", ErrUnavailable, what)
		}
		named = true
		if !slices.ContainsFunc(aud, func(s string) bool { return slices.Contains(o.clientIDs, s) }) {
			return "", refuse(ReasonAudience, "access token's audience is not one of this provider's client ids",
				fmt.Errorf("%s aud %q, client ids %q", what, []string(aud), o.clientIDs))
		}
	}
	if !named {
		return "", refuse(ReasonAudience, "the provider's token check does not say which client the token was issued to",
			fmt.Errorf("%s names no client", what))
	}
	return a.Subject, nil
}
