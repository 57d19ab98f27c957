package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// callJSON sends req and, on a 2xx answer, decodes its JSON body into out.
// It returns the status. A transport failure, a 5xx, or a 2xx whose body
// is not the JSON we expect means the provider cannot answer: the error
// wraps ErrUnavailable. Other statuses return with a nil error, for the
// caller to judge. Errors name the method, URL (without its query) and
// status, never a body or a token.
func callJSON(ctx context.Context, client *http.Client, req *http.Request, out any) (int, error) {
	where := req.Method + " " + redactURL(req.URL)
	resp, body, err := send(ctx, client, req)
	if resp == nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, query and all
		}
		return 0, fmt.Errorf("%w: %s: %v", ErrUnavailable, where, err)
	}
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%w: %s: reading body: %v", ErrUnavailable, where, err)
	}
	if resp.StatusCode >= 500 {
		return resp.StatusCode, fmt.Errorf("%w: %s: %s", ErrUnavailable, where, resp.Status)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, nil
	}
	if err := decodeStrict(body, maxDocumentSize, out); err != nil {
		if errors.Is(err, errDuplicateKey) || errors.Is(err, errCaseVariant) {
			// Names we read, spelt twice or in another case: which one
			// the provider meant is unknowable, so the account is refused
			// (it may be an attacker's claim name, not an outage).
			return resp.StatusCode, refuse(ReasonMalformed, "the provider's answer about this token has duplicate or case-variant keys", fmt.Errorf("%s: %w", where, err))
		}
		return resp.StatusCode, fmt.Errorf("%w: %s: answer is not the JSON expected: %v", ErrUnavailable, where, err)
	}
	return resp.StatusCode, nil
}

// send does req within fetchTimeout, asking for JSON, and reads at most
// maxDocumentSize+1 bytes of the answer, so that callers can tell an
// oversized body. resp is nil when the request failed; otherwise its body
// is already read and closed, and err is a failure reading it.
func send(ctx context.Context, client *http.Client, req *http.Request) (resp *http.Response, body []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req = req.WithContext(ctx)
	req.Header.Set("Accept", "application/json")
	resp, err = client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxDocumentSize+1))
	return resp, body, err
}

func redactURL(u *url.URL) string {
	c := *u
	c.RawQuery, c.User = "", nil
	return c.String()
}

// newRequest builds a request; body, when not nil, is a form.
func newRequest(method, rawURL string, form url.Values) (*http.Request, error) {
	if form == nil {
		return http.NewRequest(method, rawURL, nil)
	}
	req, err := http.NewRequest(method, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req, nil
}

// checkURL checks a configured endpoint.
func checkURL(key, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s %q is not an http(s) URL", key, raw)
	}
	return nil
}

// checkEndpoint checks an endpoint a discovery document names (jwks_uri,
// token_endpoint): https, or http on a loopback host only. Keys or codes
// fetched over plain http can be swapped or read by anyone on the path.
func checkEndpoint(key, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s %q is not an http(s) URL", key, raw)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%s %q must use https (plain http only on a loopback host)", key, raw)
	}
	return nil
}

// isLoopback: localhost, 127.0.0.0/8 or ::1.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// userInfo is what we read from a userinfo endpoint (OIDC's, Google's, or
// a generic OAuth 2 one): sub, or a string or numeric id. readUserInfo
// sets Sub to the subject either way.
type userInfo struct {
	Sub           string          `json:"sub"`
	ID            json.RawMessage `json:"id"`
	Email         string          `json:"email"`
	EmailVerified flexBool        `json:"email_verified"`
	Name          string          `json:"name"`
	Picture       string          `json:"picture"`
	HostedDomain  string          `json:"hd"`
}

// subject is sub, else id (a string or a number, as GitHub-like APIs send).
func (u *userInfo) subject() string {
	if u.Sub != "" {
		return u.Sub
	}
	var s string
	if json.Unmarshal(u.ID, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(u.ID, &n) == nil {
		return n.String()
	}
	return ""
}

// readUserInfo GETs a userinfo endpoint with the access token.
func readUserInfo(ctx context.Context, client *http.Client, endpoint, token string) (userInfo, error) {
	var ui userInfo
	req, err := newRequest(http.MethodGet, endpoint, nil)
	if err != nil {
		return ui, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	status, err := callJSON(ctx, client, req, &ui)
	switch {
	case err != nil:
		return ui, err
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return ui, refuse(ReasonTokenInactive, "", fmt.Errorf("userinfo: %d", status))
	case status != http.StatusOK:
		return ui, fmt.Errorf("%w: userinfo: status %d", ErrUnavailable, status)
	}
	if ui.Sub = ui.subject(); ui.Sub == "" {
		return ui, refuse(ReasonMalformed, "the provider's userinfo answer names no subject", nil)
	}
	return ui, nil
}

// identity is what the answer states about the account, under issuer.
func (u *userInfo) identity(issuer string) Identity {
	return Identity{
		Issuer:        issuer,
		Subject:       u.Sub,
		Email:         u.Email,
		EmailVerified: u.Email != "" && bool(u.EmailVerified),
		Name:          u.Name,
		Picture:       u.Picture,
	}
}
