package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

const (
	// githubIssuer names GitHub identities: GitHub is OAuth 2 only and has
	// no issuer of its own. The subject is the numeric user id, which
	// survives a change of login.
	githubIssuer   = "https://github.com"
	githubAPI      = "https://api.github.com"
	githubTokenURL = "https://github.com/login/oauth/access_token"
)

// githubVerifier accepts a GitHub OAuth app's user access token (or a code
// it exchanges for one). GitHub issues no id_token, so the token is checked
// through the API:
//
//  1. POST /applications/{client_id}/token with the app's own credentials
//     (HTTP Basic client_id:client_secret): GitHub answers 200 only for a
//     token issued to this app, 404 or 422 otherwise (audience_mismatch).
//     This comes first: another app's token never reaches step 2.
//  2. GET /user: the account (id, login, name, avatar).
//  3. GET /user/emails: the verified primary address; without one the
//     token is refused (email_not_verified). This needs the user:email
//     scope.
type githubVerifier struct {
	name     string
	clientID string
	secret   string
	api      string
	tokenURL string
	redirect []string
	client   *http.Client
	log      *slog.Logger
}

var _ Verifier = (*githubVerifier)(nil)

// GitHubConfig is type github: a GitHub OAuth app (exactly one client id,
// whose secret is required for the app check).
type GitHubConfig struct {
	Common   `yaml:",inline"`
	APIURL   string `yaml:"api_url"`   // the REST API base
	TokenURL string `yaml:"token_url"` // for code exchange
}

func newGitHubConfig() TypeConfig { return &GitHubConfig{APIURL: githubAPI, TokenURL: githubTokenURL} }

func (c *GitHubConfig) Validate() []Problem {
	var ps problems
	validateURLs(&ps, c.URLs())
	c.Common.validate(&ps, c.hasSecret(), true)
	if len(c.ClientIDs) > 1 {
		ps.add("client_ids", "github takes exactly one client id: the OAuth app whose secret is client_secret")
	}
	if !c.hasSecret() {
		ps.add("client_secret", "is required with type github: it proves a token was issued to our app")
	}
	return ps
}

func (c *GitHubConfig) URLs() map[string]string {
	return map[string]string{"api_url": c.APIURL, "token_url": c.TokenURL}
}

func (c *GitHubConfig) Config(name string) Config {
	cfg := c.config(name)
	cfg.APIURL, cfg.TokenURL = c.APIURL, c.TokenURL
	return cfg
}

// EmailProvesOwnership is false: GitHub's verified means the user once
// clicked a link, and stays after the mailbox changes hands (docs/providers.md).
func (c *GitHubConfig) EmailProvesOwnership() bool { return false }
func (c *GitHubConfig) IdentityIssuer() string     { return "" }

func newGitHub(_ context.Context, cfg Config) (Verifier, error) {
	var problems []string
	if cfg.Issuer != "" {
		problems = append(problems, "issuer is not used by type github")
	}
	if len(cfg.ClientIDs) != 1 {
		problems = append(problems, "github takes exactly one client id (the OAuth app's, whose secret is client_secret)")
	}
	if cfg.ClientSecret == "" {
		problems = append(problems, "client_secret is required by type github: it proves a token was issued to our app")
	}
	api := strings.TrimSuffix(cfg.APIURL, "/")
	if api == "" {
		api = githubAPI
	}
	if err := checkURL("api_url", api); err != nil {
		problems = append(problems, err.Error())
	}
	tokenURL := cfg.TokenURL
	if tokenURL == "" {
		tokenURL = githubTokenURL
	}
	if err := checkURL("token_url", tokenURL); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return &githubVerifier{
		name: cfg.Name, clientID: cfg.ClientIDs[0], secret: cfg.ClientSecret,
		api: api, tokenURL: tokenURL, redirect: slices.Clone(cfg.RedirectURIs), client: cfg.HTTPClient, log: cfg.Logger,
	}, nil
}

func (g *githubVerifier) Name() string { return g.name }

// Ready is always nil: there is nothing to discover.
func (g *githubVerifier) Ready() error { return nil }

func (g *githubVerifier) Verify(ctx context.Context, c Credential) (Identity, error) {
	token, err := accessTokenOf(ctx, c, "GitHub issues no id_token; send the access_token",
		g.client, g.log, g.clientID, g.secret, g.tokenURL, g.redirect)
	if err != nil {
		return Identity{}, err
	}
	return g.verifyToken(ctx, token)
}

type githubUser struct {
	ID        int64  `json:"id"`
	Login     string `json:"login"`
	Name      string `json:"name"`
	AvatarURL string `json:"avatar_url"`
}

// githubApp is the answer of the app token check.
type githubApp struct {
	User githubUser `json:"user"`
}

// githubEmails is the answer of GET /user/emails.
type githubEmails []struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

func (g *githubVerifier) request(method, path string, body any) (*http.Request, error) {
	var req *http.Request
	var err error
	if body != nil {
		b, merr := json.Marshal(body)
		if merr != nil {
			return nil, merr
		}
		req, err = http.NewRequest(method, g.api+path, bytes.NewReader(b))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	} else {
		req, err = http.NewRequest(method, g.api+path, nil)
	}
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	return req, nil
}

func (g *githubVerifier) verifyToken(ctx context.Context, token string) (Identity, error) {
	// 1. The token is our app's.
	req, err := g.request(http.MethodPost, "/applications/"+url.PathEscape(g.clientID)+"/token", map[string]string{"access_token": token})
	if err != nil {
		return Identity{}, err
	}
	req.SetBasicAuth(g.clientID, g.secret)
	var app githubApp
	status, err := callJSON(ctx, g.client, req, &app)
	switch {
	case err != nil:
		return Identity{}, err
	case status == http.StatusNotFound || status == http.StatusUnprocessableEntity:
		return Identity{}, refuse(ReasonAudience, "access token was not issued to this provider's GitHub app (or is no longer valid)",
			fmt.Errorf("app token check: %d", status))
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		g.log.ErrorContext(ctx, "GitHub refused our app credentials on the token check; check client_ids and client_secret", "status", status)
		return Identity{}, fmt.Errorf("%w: GitHub app token check: %d", ErrUnavailable, status)
	case status != http.StatusOK:
		return Identity{}, fmt.Errorf("%w: GitHub app token check: %d", ErrUnavailable, status)
	}

	// 2. The account.
	if req, err = g.request(http.MethodGet, "/user", nil); err != nil {
		return Identity{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	var user githubUser
	status, err = callJSON(ctx, g.client, req, &user)
	if err := githubStatus(status, err, "GET /user"); err != nil {
		return Identity{}, err
	}
	if user.ID <= 0 {
		return Identity{}, refuse(ReasonMalformed, "GitHub's /user answer has no id", nil)
	}
	if app.User.ID != 0 && app.User.ID != user.ID {
		return Identity{}, refuse(ReasonAudience, "GitHub's app check and /user name different accounts",
			fmt.Errorf("app check user %d, /user %d", app.User.ID, user.ID))
	}

	// 3. The verified primary email.
	if req, err = g.request(http.MethodGet, "/user/emails", nil); err != nil {
		return Identity{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	var emails githubEmails
	status, err = callJSON(ctx, g.client, req, &emails)
	if status == http.StatusForbidden || status == http.StatusNotFound {
		return Identity{}, refuse(ReasonEmailNotVerified, "the access token cannot read the account's email addresses (request the user:email scope)",
			fmt.Errorf("GET /user/emails: %d", status))
	}
	if err := githubStatus(status, err, "GET /user/emails"); err != nil {
		return Identity{}, err
	}
	email := ""
	for _, e := range emails {
		if e.Primary && e.Verified && e.Email != "" {
			email = e.Email
			break
		}
	}
	if email == "" {
		return Identity{}, refuse(ReasonEmailNotVerified, "the GitHub account has no verified primary email address", nil)
	}

	name := user.Name
	if name == "" {
		name = user.Login
	}
	return Identity{
		Provider:      g.name,
		Issuer:        githubIssuer,
		Subject:       strconv.FormatInt(user.ID, 10),
		Email:         email,
		EmailVerified: true,
		Name:          name,
		Picture:       user.AvatarURL,
	}, nil
}

// githubStatus judges the answer of a call made with the user's token.
func githubStatus(status int, err error, what string) error {
	switch {
	case err != nil:
		return err
	case status == http.StatusUnauthorized:
		return refuse(ReasonTokenInactive, "", fmt.Errorf("%s: %d", what, status))
	case status != http.StatusOK:
		return fmt.Errorf("%w: %s: %d", ErrUnavailable, what, status)
	}
	return nil
}
