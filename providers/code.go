package providers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// checkCodeRequest refuses a code that comes without what binds it to the
// client that started the flow: a PKCE code_verifier of RFC 7636 syntax and
// a redirect_uri that is exactly one of the provider's redirect_uris.
// (The provider then checks both against its own record of the flow.)
func checkCodeRequest(c Credential, allowed []string) error {
	if !validVerifier(c.CodeVerifier) {
		detail := "no code_verifier"
		if c.CodeVerifier != "" {
			detail = fmt.Sprintf("code_verifier of %d characters or outside the unreserved set", len(c.CodeVerifier))
		}
		return refuse(ReasonPKCERequired, "", errors.New(detail))
	}
	if c.RedirectURI == "" || !slices.Contains(allowed, c.RedirectURI) {
		if len(allowed) == 0 {
			return refuse(ReasonRedirectURINotAllowed, "this provider has no redirect_uris configured, so it accepts no code; send the id_token", nil)
		}
		return refuse(ReasonRedirectURINotAllowed, "", fmt.Errorf("redirect_uri of %d bytes not in the %d configured", len(c.RedirectURI), len(allowed)))
	}
	return nil
}

// validVerifier: RFC 7636 §4.1, 43 to 128 characters of
// [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// checkRedirectURI checks a configured redirect_uri: an absolute URL
// without a fragment (RFC 6749 §3.1.2); native apps' custom schemes are
// allowed.
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "" && u.Path == "") {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("%q must not have a fragment", raw)
	}
	return nil
}

// exchangeCode trades an authorization code at the provider's token
// endpoint (golang.org/x/oauth2, with PKCE's code_verifier when given) and
// returns the provider's token answer.
//
// A code the provider refuses (expired, used, redirect_uri or verifier
// mismatch) is code_rejected. The provider refusing our own client
// credentials is our misconfiguration, not the caller's: it is logged and
// answered as unavailable.
func exchangeCode(ctx context.Context, client *http.Client, log *slog.Logger, clientID, secret, tokenURL string, redirectURIs []string, c Credential) (*oauth2.Token, error) {
	if tokenURL == "" {
		return nil, refuse(ReasonMalformed, "this provider publishes no token endpoint; send the id_token", nil)
	}
	if err := checkCodeRequest(c, redirectURIs); err != nil {
		return nil, err
	}
	conf := oauth2.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		Endpoint:     oauth2.Endpoint{TokenURL: tokenURL},
		RedirectURL:  c.RedirectURI,
	}
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(c.CodeVerifier)}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, client), fetchTimeout)
	defer cancel()
	tok, err := conf.Exchange(ctx, c.Code, opts...)
	if err == nil {
		if tok.AccessToken == "" {
			return nil, fmt.Errorf("%w: token endpoint answered without an access_token", ErrUnavailable)
		}
		return tok, nil
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		status := re.Response.StatusCode
		// Never log re itself: its message carries the upstream body.
		detail := fmt.Errorf("token endpoint: %d %s", status, re.ErrorCode)
		switch {
		case re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client" ||
			re.ErrorCode == "incorrect_client_credentials" || status == http.StatusUnauthorized: // the last is GitHub's
			log.Error("the provider refused our client credentials at its token endpoint; check client_ids[0] and client_secret",
				"status", status, "error_code", re.ErrorCode)
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, detail)
		case status >= 500:
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, detail)
		default:
			return nil, refuse(ReasonCodeRejected, "", detail)
		}
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil, fmt.Errorf("%w: token endpoint did not answer in time", ErrUnavailable)
	}
	return nil, fmt.Errorf("%w: token endpoint: %v", ErrUnavailable, err)
}

// exchangeCode exchanges the code and verifies the id_token of the answer
// as if the client had sent it, nonce included.
func (v *oidcVerifier) exchangeCode(ctx context.Context, d *discovered, c Credential) (Identity, error) {
	tok, err := exchangeCode(ctx, v.client, v.log, v.clientIDs[0], v.secret, d.tokenURL, v.redirectURIs, c)
	if err != nil {
		return Identity{}, err
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, refuse(ReasonMalformed, "the provider's token answer has no id_token (was the openid scope requested?)", nil)
	}
	id, err := v.verifyIDToken(ctx, d, Credential{IDToken: raw, AccessToken: tok.AccessToken, Nonce: c.Nonce})
	// The provider redeems a code once: its id_token came to us alone and
	// is no replay risk.
	id.TokenKey = ""
	return id, err
}

// accessTokenOf is the access token an OAuth2-only provider (github,
// oauth2) verifies: the one sent, or the one a sent code is exchanged for.
// noIDToken is the refusal for an id_token, which these providers never
// issue.
func accessTokenOf(ctx context.Context, c Credential, noIDToken string, client *http.Client, log *slog.Logger, clientID, secret, tokenURL string, redirectURIs []string) (string, error) {
	switch {
	case c.IDToken != "":
		return "", refuse(ReasonMalformed, noIDToken, nil)
	case c.Code != "":
		if secret == "" || tokenURL == "" {
			return "", refuse(ReasonMalformed, "this provider does not accept an authorization code (token_url and client_secret are not configured)", nil)
		}
		tok, err := exchangeCode(ctx, client, log, clientID, secret, tokenURL, redirectURIs, c)
		if err != nil {
			return "", err
		}
		return tok.AccessToken, nil
	case c.AccessToken == "":
		return "", refuse(ReasonMalformed, "this provider needs an access_token", nil)
	}
	return c.AccessToken, nil
}
