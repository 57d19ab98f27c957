package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	typeIDToken        = "urn:ietf:params:oauth:token-type:id_token"
	typeAccessToken    = "urn:ietf:params:oauth:token-type:access_token"
)

type oauthTokens struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	RefreshToken    string `json:"refresh_token"`
}

func decodeOAuth(t testing.TB, res response) oauthTokens {
	t.Helper()
	if res.status != http.StatusOK {
		t.Fatalf("/oauth/token: %d %s", res.status, res.body)
	}
	var out oauthTokens
	if err := json.Unmarshal(res.body, &out); err != nil {
		t.Fatal(err)
	}
	if out.AccessToken == "" || out.RefreshToken == "" || out.TokenType != "Bearer" || out.ExpiresIn < 890 || out.ExpiresIn > 900 {
		t.Fatalf("token answer: %s", res.body)
	}
	if res.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("token answer is cacheable: %v", res.header)
	}
	return out
}

func TestOAuthRefreshGrant(t *testing.T) {
	h := newHarness(t)
	tk := h.exchangeOK("corp", h.idToken("ort", nil))

	// Form body, as RFC 6749 §6 has it.
	got := decodeOAuth(t, h.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.RefreshToken}}))
	if got.IssuedTokenType != "" || got.RefreshToken == tk.RefreshToken {
		t.Fatalf("refresh grant did not rotate: %+v", got)
	}
	if c := verifyWithJWKS(t, h, got.AccessToken); c["sid"] != tk.SessionID || c["sub"] != tk.User.ID {
		t.Fatalf("claims: %v", c)
	}
	// JSON body too.
	again := decodeOAuth(t, h.postJSON("/oauth/token", map[string]string{"grant_type": "refresh_token", "refresh_token": got.RefreshToken}))

	// The reuse rules are those of /v1/token/refresh: the first token, two
	// generations old, is reuse and revokes the session.
	before := h.snapshot()
	res := h.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.RefreshToken}})
	assertError(t, res, 400, "invalid_grant", "reused")
	assertError(t, h.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {again.RefreshToken}}),
		400, "invalid_grant", "revoked")
	if after := h.snapshot(); len(after.Audit) != len(before.Audit)+1 || after.Audit[0].Type != "session.reused" {
		t.Fatalf("reuse not audited: %+v", after.Audit)
	}
}

func TestOAuthTokenExchange(t *testing.T) {
	h := newHarness(t, withoutProvider("google"))
	form := url.Values{
		"grant_type": {grantTokenExchange}, "subject_token": {h.idToken("ote", nil)},
		"subject_token_type": {typeIDToken}, "subject_issuer": {"corp"},
	}
	got := decodeOAuth(t, h.postForm("/oauth/token", form))
	if got.IssuedTokenType != typeAccessToken {
		t.Fatalf("issued_token_type = %q", got.IssuedTokenType)
	}
	claims := verifyWithJWKS(t, h, got.AccessToken)
	if claims["idp"] != "corp" || claims["email"] != "ote@example.com" {
		t.Fatalf("claims: %v", claims)
	}
	// The issuer URL names the provider too, with or without a trailing slash.
	form.Set("subject_issuer", h.iss.URL()+"/")
	form.Set("subject_token", h.idToken("ote", nil))
	byURL := decodeOAuth(t, h.postForm("/oauth/token", form))
	if verifyWithJWKS(t, h, byURL.AccessToken)["sub"] != claims["sub"] {
		t.Fatal("the issuer URL signed in another user")
	}
	// JSON body, and the refresh token it returned works at the refresh grant.
	js := decodeOAuth(t, h.postJSON("/oauth/token", map[string]string{"grant_type": grantTokenExchange,
		"subject_token": h.idToken("ote", nil), "subject_token_type": typeIDToken, "subject_issuer": "corp"}))
	decodeOAuth(t, h.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {js.RefreshToken}}))
}

func TestOAuthTokenRefusals(t *testing.T) {
	h := newHarness(t)
	tk := h.exchangeOK("corp", h.idToken("otr", nil))
	te := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {grantTokenExchange}, "subject_token": {h.idToken("otr-new", nil)},
			"subject_token_type": {typeIDToken}, "subject_issuer": {"corp"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	expired := h.idToken("otr-new", map[string]any{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()})
	cases := []struct {
		name   string
		form   url.Values
		status int
		code   string
		reason string
	}{
		{"no grant_type", url.Values{"refresh_token": {tk.RefreshToken}}, 400, "invalid_request", "missing_grant_type"},
		{"unknown grant_type", url.Values{"grant_type": {"password"}}, 400, "unsupported_grant_type", "unsupported_grant_type"},
		{"refresh without token", url.Values{"grant_type": {"refresh_token"}}, 400, "invalid_request", "missing_refresh_token"},
		{"refresh with a forged token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.RefreshToken + "x"}}, 400, "invalid_grant", "malformed"},
		{"no subject_token", te("subject_token", ""), 400, "invalid_request", "missing_subject_token"},
		{"no subject_token_type", te("subject_token_type", ""), 400, "invalid_request", "missing_subject_token_type"},
		{"saml subject_token_type", te("subject_token_type", "urn:ietf:params:oauth:token-type:saml2"), 400, "invalid_request", "unsupported_token_type"},
		{"no subject_issuer", te("subject_issuer", ""), 400, "invalid_request", "missing_subject_issuer"},
		{"unknown subject_issuer", te("subject_issuer", "https://elsewhere.example"), 400, "unsupported_provider", "unknown_provider"},
		// corp and google share the harness issuer: its URL names neither.
		{"ambiguous issuer URL", te("subject_issuer", h.iss.URL()), 400, "unsupported_provider", "unknown_provider"},
		{"expired subject token", te("subject_token", expired), 400, "invalid_request", "expired"},
		{"foreign audience", te("subject_token", h.idToken("otr-new", map[string]any{"aud": "other-app"})), 400, "invalid_request", "audience_mismatch"},
		{"access token an oidc provider cannot bind", te("subject_token_type", typeAccessToken, "subject_token", "opaque"), 400, "invalid_request", "malformed"},
		{"actor_token", te("actor_token", "x", "actor_token_type", typeIDToken), 400, "invalid_request", "actor_token_unsupported"},
		{"requested refresh token type", te("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), 400, "invalid_request", "unsupported_requested_token_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot()
			assertError(t, h.postForm("/oauth/token", tc.form), tc.status, tc.code, tc.reason)
			h.assertUnchanged(before)
		})
	}
	bodies := []struct {
		name, contentType, body, reason string
	}{
		{"duplicate parameter", "application/x-www-form-urlencoded", "grant_type=refresh_token&grant_type=refresh_token&refresh_token=" + url.QueryEscape(tk.RefreshToken), "duplicate_parameter"},
		{"text body", "text/plain", "grant_type=refresh_token", "content_type"},
		{"JSON with a number", "application/json", `{"grant_type":"refresh_token","refresh_token":5}`, "malformed_json"},
		{"JSON array", "application/json", `["refresh_token"]`, "malformed_json"},
		{"bad form encoding", "application/x-www-form-urlencoded", "grant_type=%zz", "malformed_body"},
	}
	for _, tc := range bodies {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot()
			assertError(t, h.do(http.MethodPost, "/oauth/token", tc.contentType, []byte(tc.body)), 400, "invalid_request", tc.reason)
			h.assertUnchanged(before)
		})
	}
	// Parameters in the query string are not read.
	before := h.snapshot()
	assertError(t, h.do(http.MethodPost, "/oauth/token?grant_type=refresh_token&refresh_token="+url.QueryEscape(tk.RefreshToken),
		"application/x-www-form-urlencoded", nil), 400, "invalid_request", "missing_grant_type")
	h.assertUnchanged(before)
}

func TestOAuthTokenWithClients(t *testing.T) {
	h := clientHarness(t, withoutProvider("google"))
	form := url.Values{"grant_type": {grantTokenExchange}, "subject_token": {h.idToken("otc", nil)},
		"subject_token_type": {typeIDToken}, "subject_issuer": {"corp"}}

	before := h.snapshot()
	assertError(t, h.postForm("/oauth/token", form), 401, "invalid_client", "missing_client")
	assertError(t, h.postForm("/oauth/token", form, basic("nextjs", "wrong")...), 401, "invalid_client", "invalid_secret")
	h.assertUnchanged(before)

	got := decodeOAuth(t, h.postForm("/oauth/token", form, basic("nextjs", nextjsSecret)...))
	if c := verifyWithJWKS(t, h, got.AccessToken); c["client_id"] != "nextjs" {
		t.Fatalf("client_id claim: %v", c["client_id"])
	}
	// Client credentials in the body work too.
	withBody := url.Values{"client_id": {"nextjs"}, "client_secret": {nextjsSecret}}
	for k, v := range form {
		withBody[k] = v
	}
	withBody.Set("subject_token", h.idToken("otc", nil))
	decodeOAuth(t, h.postForm("/oauth/token", withBody))

	// Only the client a refresh token was issued to may use it.
	before = h.snapshot()
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {got.RefreshToken}}
	assertError(t, h.postForm("/oauth/token", refresh, basic("corp-only", corpOnlySecret)...), 400, "invalid_grant", "client_mismatch")
	refresh.Set("client_id", "ios-app")
	assertError(t, h.postForm("/oauth/token", refresh), 400, "invalid_grant", "client_mismatch")
	h.assertUnchanged(before)
	refresh.Del("client_id")
	rotated := decodeOAuth(t, h.postForm("/oauth/token", refresh, basic("nextjs", nextjsSecret)...))
	if c := verifyWithJWKS(t, h, rotated.AccessToken); c["client_id"] != "nextjs" {
		t.Fatalf("client_id lost on refresh: %v", c["client_id"])
	}
}

func TestOAuthRevoke(t *testing.T) {
	h := newHarness(t)
	byRefresh := h.exchangeOK("corp", h.idToken("orv", nil))
	byAccess := h.exchangeOK("corp", h.idToken("orv", nil))

	revoke := func(token string) {
		t.Helper()
		res := h.postForm("/oauth/revoke", url.Values{"token": {token}, "token_type_hint": {"refresh_token"}})
		if res.status != http.StatusOK {
			t.Fatalf("revoke: %d %s", res.status, res.body)
		}
	}
	revoke(byRefresh.RefreshToken)
	assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": byRefresh.RefreshToken}), 400, "invalid_grant", "revoked")
	assertError(t, h.get("/v1/me", byRefresh.AccessToken), 401, "invalid_token", "revoked")

	revoke(byAccess.AccessToken) // the hint is wrong: only a hint
	assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": byAccess.RefreshToken}), 400, "invalid_grant", "revoked")
	if got := h.auditTypes(); countOf(got, "session.revoked") != 2 {
		t.Fatalf("audit trail: %v", got)
	}

	// Unknown, forged, already revoked tokens: 200, nothing written.
	before := h.snapshot()
	for _, tok := range []string{"garbage", byAccess.AccessToken + "x", "a.1.b", byRefresh.RefreshToken} {
		revoke(tok)
	}
	h.assertUnchanged(before)
	assertError(t, h.postForm("/oauth/revoke", url.Values{}), 400, "invalid_request", "missing_token")
	h.assertUnchanged(before)
}

func TestOAuthRevokeWithClients(t *testing.T) {
	h := clientHarness(t)
	res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("orc", nil)}, basic("nextjs", nextjsSecret)...)
	tk := decodeTokens(t, res)

	before := h.snapshot()
	assertError(t, h.postForm("/oauth/revoke", url.Values{"token": {tk.RefreshToken}}), 401, "invalid_client", "missing_client")
	// Another client's token: 200 as RFC 7009 answers unknown tokens, and nothing revoked.
	if res := h.postForm("/oauth/revoke", url.Values{"token": {tk.RefreshToken}, "client_id": {"ios-app"}}); res.status != 200 {
		t.Fatalf("revoke by another client: %d %s", res.status, res.body)
	}
	h.assertUnchanged(before)
	if res := h.postForm("/oauth/revoke", url.Values{"token": {tk.RefreshToken}}, basic("nextjs", nextjsSecret)...); res.status != 200 {
		t.Fatalf("revoke: %d %s", res.status, res.body)
	}
	assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": tk.RefreshToken}, basic("nextjs", nextjsSecret)...), 400, "invalid_grant", "revoked")
}

func TestOAuthIntrospect(t *testing.T) {
	h := clientHarness(t)
	tk := decodeTokens(t, h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("oin", nil)}, basic("nextjs", nextjsSecret)...))
	introspect := func(token string) map[string]any {
		t.Helper()
		res := h.postForm("/oauth/introspect", url.Values{"token": {token}}, basic("nextjs", nextjsSecret)...)
		if res.status != http.StatusOK || res.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("introspect: %d %v %s", res.status, res.header, res.body)
		}
		return res.json(t)
	}

	got := introspect(tk.AccessToken)
	claims := verifyWithJWKS(t, h, tk.AccessToken)
	if got["active"] != true || got["sub"] != tk.User.ID || got["client_id"] != "nextjs" || got["sid"] != tk.SessionID ||
		got["iss"] != h.cfg.Issuer || got["token_type"] != "Bearer" || got["exp"] != claims["exp"] || got["iat"] != claims["iat"] {
		t.Fatalf("active access token: %v", got)
	}
	if aud, _ := got["aud"].([]any); len(aud) != 1 || aud[0] != "api" {
		t.Fatalf("aud: %v", got["aud"])
	}
	if _, has := got["scope"]; has {
		t.Fatalf("scope in an answer without scopes: %v", got)
	}
	if rt := introspect(tk.RefreshToken); rt["active"] != true || rt["token_type"] != "refresh_token" || rt["sid"] != tk.SessionID {
		t.Fatalf("refresh token: %v", rt)
	}

	// Introspection writes nothing; refusals neither.
	before := h.snapshot()
	for _, tc := range []struct {
		form    url.Values
		headers []string
		status  int
		code    string
		reason  string
	}{
		{url.Values{"token": {tk.AccessToken}}, nil, 401, "invalid_client", "missing_client"},
		{url.Values{"token": {tk.AccessToken}}, basic("nextjs", "bad"), 401, "invalid_client", "invalid_secret"},
		{url.Values{"token": {tk.AccessToken}, "client_id": {"ios-app"}}, nil, 400, "unauthorized_client", "public_client"},
		{url.Values{}, basic("nextjs", nextjsSecret), 400, "invalid_request", "missing_token"},
	} {
		assertError(t, h.postForm("/oauth/introspect", tc.form, tc.headers...), tc.status, tc.code, tc.reason)
	}
	inactive := func(token, why string) {
		t.Helper()
		got := introspect(token)
		if got["active"] != false || len(got) != 1 {
			t.Fatalf("%s: want only active:false, got %v", why, got)
		}
	}
	inactive("garbage", "garbage")
	inactive(tk.AccessToken+"x", "forged signature")
	h.assertUnchanged(before)

	// A disabled user's tokens are inactive; enabled again, active again.
	ctx := context.Background()
	u, _ := h.store.GetUser(ctx, tk.User.ID)
	u.Disabled = true
	if err := h.store.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	inactive(tk.AccessToken, "disabled user")
	inactive(tk.RefreshToken, "disabled user (refresh)")
	u.Disabled = false
	if err := h.store.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if introspect(tk.AccessToken)["active"] != true {
		t.Fatal("re-enabled user's token inactive")
	}

	// A rotated-away refresh token is inactive once the grace has passed.
	rotated := decodeTokens(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": tk.RefreshToken}, basic("nextjs", nextjsSecret)...))
	h.clock.Advance(11 * time.Second)
	inactive(tk.RefreshToken, "previous generation after the grace")
	if introspect(rotated.RefreshToken)["active"] != true {
		t.Fatal("current refresh token inactive")
	}

	// Expired: the access token's 15 minutes pass.
	h.clock.Advance(16 * time.Minute)
	inactive(rotated.AccessToken, "expired access token")

	// Revoked session: both tokens inactive.
	other := decodeTokens(t, h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("oin", nil)}, basic("nextjs", nextjsSecret)...))
	if introspect(other.AccessToken)["active"] != true {
		t.Fatal("fresh token inactive")
	}
	if res := h.postForm("/oauth/revoke", url.Values{"token": {other.RefreshToken}}, basic("nextjs", nextjsSecret)...); res.status != 200 {
		t.Fatalf("revoke: %d", res.status)
	}
	inactive(other.AccessToken, "revoked session")
	inactive(other.RefreshToken, "revoked session (refresh)")
}

func TestIntrospectRefusedWithoutClients(t *testing.T) {
	h := newHarness(t)
	tk := h.exchangeOK("corp", h.idToken("onc", nil))
	before := h.snapshot()
	assertError(t, h.postForm("/oauth/introspect", url.Values{"token": {tk.AccessToken}}), 403, "access_denied", "no_clients_configured")
	h.assertUnchanged(before)
}
