package web_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/providers"
	"github.com/authex/authex/providers/providertest"
)

// Tests of each provider type through POST /v1/exchange, against local
// fakes: an Apple-like issuer, a multi-tenant Microsoft-like issuer, a
// GitHub-like API, Google-like tokeninfo/userinfo, an OAuth 2 provider with
// introspection, and the harness issuer's token endpoint for code exchange.
// Every refusal is checked for its status, its reason, and an unchanged
// store.

// refused is one request that must be refused.
type refused struct {
	name   string
	body   map[string]any
	status int
	code   string
	reason string
}

func (h *harness) checkRefusals(t *testing.T, cases []refused) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := h.snapshot()
			res := h.postJSON("/v1/exchange", c.body)
			assertError(t, res, c.status, c.code, c.reason)
			h.assertUnchanged(before)
		})
	}
}

func (h *harness) exchangeBody(body map[string]any) tokens {
	h.t.Helper()
	res := h.postJSON("/v1/exchange", body)
	if res.status != http.StatusOK {
		h.t.Fatalf("exchange %v: %d %s", body["provider"], res.status, res.body)
	}
	return decodeTokens(h.t, res)
}

func TestAppleProvider(t *testing.T) {
	h := newHarness(t, withProvider("apple", providerSpec{typ: "apple", link: exchange.LinkAuto, allowSignup: true}))
	apple := func(sub string, extra map[string]any) string {
		c := map[string]any{
			"sub": sub, "aud": webClientID, "email": sub + "@privaterelay.appleid.com",
			"email_verified": "true", "is_private_email": "true", "auth_time": 1700000000, "nonce_supported": true,
		}
		for k, v := range extra {
			c[k] = v
		}
		return h.iss.Mint(t, c)
	}

	// String booleans; the name comes from profile.name on creation only.
	tk := h.exchangeBody(map[string]any{"provider": "apple", "id_token": apple("001.apple", nil), "profile": map[string]any{"name": "Ada Apple"}})
	if !*tk.Created || tk.User.Name != "Ada Apple" || !tk.User.EmailVerified || tk.User.Email != "001.apple@privaterelay.appleid.com" ||
		tk.User.Identities[0].Provider != "apple" || tk.User.Identities[0].Subject != "001.apple" {
		t.Fatalf("first Apple sign-in: %+v", tk)
	}
	again := h.exchangeBody(map[string]any{"provider": "apple", "id_token": apple("001.apple", nil), "profile": map[string]any{"name": "Mallory"}})
	if *again.Created || again.User.ID != tk.User.ID || again.User.Name != "Ada Apple" {
		t.Fatalf("profile.name changed an existing user: %+v", again)
	}

	// "false" is false: no verified email, so nothing to link or index.
	unverified := h.exchangeBody(map[string]any{"provider": "apple", "id_token": apple("002.apple", map[string]any{
		"email": "bob@example.com", "email_verified": "false", "is_private_email": false,
	})})
	if unverified.User.EmailVerified {
		t.Fatalf(`email_verified "false" was taken as verified: %+v`, unverified)
	}

	// Apple links by verified email (auto): a Google user signs in with Apple.
	g := h.exchangeOK("google", h.idToken("carol", nil))
	linked := h.exchangeBody(map[string]any{"provider": "apple", "id_token": apple("003.apple", map[string]any{
		"email": "carol@example.com", "is_private_email": "false",
	})})
	if *linked.Created || linked.User.ID != g.User.ID || len(linked.User.Identities) != 2 {
		t.Fatalf("Apple did not link to the verified-email owner: %+v", linked)
	}

	h.checkRefusals(t, []refused{
		{"email_verified neither boolean nor true/false", map[string]any{"provider": "apple", "id_token": apple("004.apple", map[string]any{"email_verified": "yes"})},
			401, "invalid_token", "malformed"},
		{"is_private_email of another type", map[string]any{"provider": "apple", "id_token": apple("004.apple", map[string]any{"is_private_email": 1})},
			401, "invalid_token", "malformed"},
		{"another issuer", map[string]any{"provider": "apple", "id_token": apple("004.apple", map[string]any{"iss": "https://appleid.apple.com.evil"})},
			401, "invalid_token", "issuer"},
		{"another app's audience", map[string]any{"provider": "apple", "id_token": apple("004.apple", map[string]any{"aud": "com.other.app"})},
			401, "invalid_token", "audience_mismatch"},
		{"nonce mismatch", map[string]any{"provider": "apple", "id_token": apple("004.apple", map[string]any{"nonce": "abc"}), "nonce": "xyz"},
			401, "invalid_token", "nonce_mismatch"},
		{"access token alone", map[string]any{"provider": "apple", "access_token": "a.b"},
			401, "invalid_token", "malformed"},
	})
}

const (
	tenantA = "11111111-1111-1111-1111-111111111111"
	tenantB = "22222222-2222-2222-2222-222222222222"
)

// microsoftSpec is a Microsoft provider against the harness issuer, which
// serves a multi-tenant discovery document at /common/v2.0.
func microsoftSpec(link string, tenants ...string) providerSpec {
	return providerSpec{typ: "microsoft", link: link, allowSignup: true, setup: func(iss *providertest.Issuer, cfg *providers.Config) {
		iss.AddDiscovery("/common/v2.0", iss.URL()+"/{tenantid}/v2.0")
		cfg.Issuer, cfg.Authority, cfg.AllowedTenants = "", iss.URL(), tenants
	}}
}

func TestMicrosoftProvider(t *testing.T) {
	h := newHarness(t,
		withProvider("microsoft", microsoftSpec(exchange.LinkConfirm, tenantA)),
		withProvider("ms-any", microsoftSpec(exchange.LinkConfirm, "*")),
	)
	ms := func(sub, tid string, extra map[string]any) string {
		c := map[string]any{
			"sub": sub, "aud": webClientID, "tid": tid, "iss": h.iss.URL() + "/" + tid + "/v2.0",
			"email": sub + "@contoso.example", "name": "MS " + sub, "oid": "oid-" + sub, "ver": "2.0",
		}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
				continue
			}
			c[k] = v
		}
		return h.iss.Mint(t, c)
	}

	tk := h.exchangeBody(map[string]any{"provider": "microsoft", "id_token": ms("m1", tenantA, nil)})
	if !*tk.Created || tk.User.EmailVerified || tk.User.Name != "MS m1" {
		t.Fatalf("Microsoft sign-in: %+v (email must not count as verified without xms_edov)", tk)
	}
	// The identity's issuer is the per-tenant one: the same sub in another
	// tenant is another identity.
	other := h.exchangeBody(map[string]any{"provider": "ms-any", "id_token": ms("m1", tenantB, nil)})
	if !*other.Created || other.User.ID == tk.User.ID {
		t.Fatalf("a tenant B account signed in as the tenant A one: %+v", other)
	}

	// nOAuth: a Microsoft token naming another user's verified address,
	// without xms_edov, neither links nor asks to link: a separate user
	// whose address is not verified.
	victim := h.exchangeOK("google", h.idToken("victim", nil))
	attacker := h.exchangeBody(map[string]any{"provider": "ms-any", "id_token": ms("attacker", tenantB, map[string]any{"email": "victim@example.com"})})
	if !*attacker.Created || attacker.User.ID == victim.User.ID || attacker.User.EmailVerified {
		t.Fatalf("an unverified Microsoft email reached another user's account: %+v", attacker)
	}

	before := h.snapshot()
	res := h.postJSON("/v1/exchange", map[string]any{"provider": "microsoft", "id_token": ms("m2", tenantA, map[string]any{
		"email": "victim@example.com", "xms_edov": true,
	})})
	assertError(t, res, 409, "account_exists", "account_exists")
	if res.json(t)["link_token"] == "" {
		t.Fatalf("409 without link_token: %s", res.body)
	}
	h.assertUnchanged(before)

	// Keys: a rotation is picked up by one refetch of the shared JWKS.
	h.iss.RotateKey()
	h.exchangeBody(map[string]any{"provider": "microsoft", "id_token": ms("m1", tenantA, nil)})

	h.checkRefusals(t, []refused{
		{"tenant not allowed", map[string]any{"provider": "microsoft", "id_token": ms("m3", tenantB, nil)},
			401, "invalid_token", "tenant_not_allowed"},
		{"iss of tenant A with tid B", map[string]any{"provider": "ms-any", "id_token": ms("m3", tenantB, map[string]any{"iss": h.iss.URL() + "/" + tenantA + "/v2.0"})},
			401, "invalid_token", "issuer"},
		{"iss of tenant B with tid A", map[string]any{"provider": "microsoft", "id_token": ms("m3", tenantA, map[string]any{"iss": h.iss.URL() + "/" + tenantB + "/v2.0"})},
			401, "invalid_token", "issuer"},
		{"no tid", map[string]any{"provider": "ms-any", "id_token": ms("m3", tenantA, map[string]any{"tid": nil})},
			401, "invalid_token", "issuer"},
		{"the template itself as iss", map[string]any{"provider": "ms-any", "id_token": ms("m3", "{tenantid}", nil)},
			401, "invalid_token", "issuer"},
		{"another app", map[string]any{"provider": "microsoft", "id_token": ms("m3", tenantA, map[string]any{"aud": "other-app"})},
			401, "invalid_token", "audience_mismatch"},
		{"forged key", map[string]any{"provider": "microsoft", "id_token": h.iss.MintWith(t, providertest.MintOptions{Key: providertest.ForeignKey(), KeyID: "forged"},
			map[string]any{"sub": "m3", "aud": webClientID, "tid": tenantA, "iss": h.iss.URL() + "/" + tenantA + "/v2.0"})},
			401, "invalid_token", "unknown_key"},
	})

	// While the issuer is down, the last good keys keep verifying; the
	// forged kid above cost it one refetch, then the cooldown holds.
	h.iss.SetDown(true)
	fetches := h.iss.JWKSFetches()
	h.exchangeBody(map[string]any{"provider": "microsoft", "id_token": ms("m1", tenantA, nil)})
	h.checkRefusals(t, []refused{
		{"forged key while down", map[string]any{"provider": "microsoft", "id_token": h.iss.MintWith(t, providertest.MintOptions{Key: providertest.ForeignKey(), KeyID: "forged-2"},
			map[string]any{"sub": "m3", "aud": webClientID, "tid": tenantA, "iss": h.iss.URL() + "/" + tenantA + "/v2.0"})},
			401, "invalid_token", "unknown_key"},
	})
	if n := h.iss.JWKSFetches() - fetches; n != 0 {
		t.Fatalf("%d JWKS fetches inside the cooldown", n)
	}
}

func TestGitHubProvider(t *testing.T) {
	gh := providertest.NewGitHub(t)
	gh.AddApp("gh-app", "gh-secret")
	gh.AddApp("other-app", "other-secret")
	spec := func(secret string) providerSpec {
		return providerSpec{typ: "github", link: exchange.LinkConfirm, allowSignup: true, setup: func(_ *providertest.Issuer, cfg *providers.Config) {
			cfg.Issuer, cfg.ClientIDs, cfg.ClientSecret = "", []string{"gh-app"}, secret
			cfg.APIURL, cfg.TokenURL = gh.URL(), gh.URL()+"/login/oauth/access_token"
			cfg.RedirectURIs = []string{"https://app.example.com/cb"}
		}}
	}
	h := newHarness(t, withProvider("github", spec("gh-secret")), withProvider("github-misconfigured", spec("wrong-secret")))

	octo := providertest.GitHubUser{ID: 4242, Login: "octo", Name: "Octo Cat", AvatarURL: "https://avatars.example/4242"}
	gh.AddToken("gho_good", providertest.GitHubToken{ClientID: "gh-app", User: octo, Emails: []providertest.GitHubEmail{
		{Email: "old@example.com", Verified: true},
		{Email: "octo@example.com", Primary: true, Verified: true},
	}})
	gh.AddToken("gho_other_app", providertest.GitHubToken{ClientID: "other-app", User: octo, Emails: []providertest.GitHubEmail{{Email: "octo@example.com", Primary: true, Verified: true}}})
	gh.AddToken("gho_unverified", providertest.GitHubToken{ClientID: "gh-app", User: providertest.GitHubUser{ID: 7, Login: "u"}, Emails: []providertest.GitHubEmail{
		{Email: "u@example.com", Primary: true, Verified: false},
		{Email: "u2@example.com", Verified: true},
	}})
	gh.AddToken("gho_noscope", providertest.GitHubToken{ClientID: "gh-app", User: providertest.GitHubUser{ID: 8, Login: "n"}, NoEmailScope: true})

	tk := h.exchangeBody(map[string]any{"provider": "github", "access_token": "gho_good"})
	if !*tk.Created || tk.User.Email != "octo@example.com" || !tk.User.EmailVerified || tk.User.Name != "Octo Cat" ||
		tk.User.Identities[0].Subject != "4242" || tk.User.Identities[0].Provider != "github" {
		t.Fatalf("GitHub sign-in: %+v", tk)
	}

	// Code exchange at GitHub's token endpoint, then the same checks.
	gh.AddCode("gh-code", "gho_good")
	again := h.exchangeBody(map[string]any{"provider": "github", "code": "gh-code", "redirect_uri": "https://app.example.com/cb", "code_verifier": pkceVerifier})
	if *again.Created || again.User.ID != tk.User.ID {
		t.Fatalf("GitHub code sign-in: %+v", again)
	}

	// RFC 8693 token exchange with a bindable access token: the same checks.
	const accessType = "urn:ietf:params:oauth:token-type:access_token"
	te := func(token string) url.Values {
		return url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {token},
			"subject_token_type": {accessType}, "subject_issuer": {"github"}}
	}
	if res := h.postForm("/oauth/token", te("gho_good")); res.status != http.StatusOK || res.json(t)["issued_token_type"] != accessType {
		t.Fatalf("token exchange of a GitHub access token: %d %s", res.status, res.body)
	}
	before := h.snapshot()
	assertError(t, h.postForm("/oauth/token", te("gho_other_app")), 400, "invalid_request", "audience_mismatch")
	h.assertUnchanged(before)

	userCalls := gh.UserCalls()
	h.checkRefusals(t, []refused{
		{"another app's token", map[string]any{"provider": "github", "access_token": "gho_other_app"}, 401, "invalid_token", "audience_mismatch"},
		{"unknown token", map[string]any{"provider": "github", "access_token": "gho_unknown"}, 401, "invalid_token", "audience_mismatch"},
	})
	if gh.UserCalls() != userCalls {
		t.Fatal("a token that failed the app check was used to read /user")
	}
	h.checkRefusals(t, []refused{
		{"no verified primary email", map[string]any{"provider": "github", "access_token": "gho_unverified"}, 401, "invalid_token", "email_not_verified"},
		{"no user:email scope", map[string]any{"provider": "github", "access_token": "gho_noscope"}, 401, "invalid_token", "email_not_verified"},
		{"an id_token", map[string]any{"provider": "github", "id_token": h.idToken("x", nil)}, 401, "invalid_token", "malformed"},
		{"a used code", map[string]any{"provider": "github", "code": "gh-code", "redirect_uri": "https://app.example.com/cb", "code_verifier": pkceVerifier}, 401, "invalid_token", "code_rejected"},
		{"a code without PKCE", map[string]any{"provider": "github", "code": "gh-code", "redirect_uri": "https://app.example.com/cb"}, 400, "invalid_request", "pkce_required"},
		{"our app secret is wrong", map[string]any{"provider": "github-misconfigured", "access_token": "gho_good"}, 503, "provider_unavailable", "provider_unavailable"},
	})
	gh.SetDown(true)
	h.checkRefusals(t, []refused{
		{"GitHub is down", map[string]any{"provider": "github", "access_token": "gho_good"}, 503, "provider_unavailable", "provider_unavailable"},
	})
}

func TestGoogleAccessToken(t *testing.T) {
	api := providertest.NewGoogleAPI(t)
	h := newHarness(t,
		withProvider("google", providerSpec{typ: "google", link: exchange.LinkAuto, allowSignup: true, setup: func(_ *providertest.Issuer, cfg *providers.Config) {
			cfg.TokenInfoURL, cfg.UserInfoURL = api.TokenInfoURL(), api.UserInfoURL()
		}}),
		withProvider("workspace", providerSpec{typ: "google", link: exchange.LinkAuto, allowSignup: true, setup: func(_ *providertest.Issuer, cfg *providers.Config) {
			cfg.TokenInfoURL, cfg.UserInfoURL, cfg.AllowedDomains = api.TokenInfoURL(), api.UserInfoURL(), []string{"corp.example"}
		}}),
	)
	api.AddToken("ya29.ours", providertest.GoogleToken{ClientID: iosClientID, Subject: "g-1", Email: "g-1@example.com", Verified: true, Name: "G One"})
	api.AddToken("ya29.theirs", providertest.GoogleToken{ClientID: "another-app.apps.googleusercontent.com", Subject: "g-1", Email: "g-1@example.com", Verified: true})
	api.AddToken("ya29.expired", providertest.GoogleToken{ClientID: webClientID, Subject: "g-1", Expired: true})

	// The id_token and the access token name one identity: one user.
	first := h.exchangeOK("google", h.idToken("g-1", nil))
	tk := h.exchangeBody(map[string]any{"provider": "google", "access_token": "ya29.ours"})
	if *tk.Created || tk.User.ID != first.User.ID || len(tk.User.Identities) != 1 {
		t.Fatalf("a Google access token signed in as another user: %+v vs %+v", tk, first)
	}

	userInfo := api.UserInfoCalls()
	h.checkRefusals(t, []refused{
		{"another app's access token", map[string]any{"provider": "google", "access_token": "ya29.theirs"}, 401, "invalid_token", "audience_mismatch"},
		{"expired access token", map[string]any{"provider": "google", "access_token": "ya29.expired"}, 401, "invalid_token", "token_inactive"},
		{"unknown access token", map[string]any{"provider": "google", "access_token": "ya29.nope"}, 401, "invalid_token", "token_inactive"},
		{"hosted domain not allowed", map[string]any{"provider": "workspace", "access_token": "ya29.ours"}, 401, "invalid_token", "domain_not_allowed"},
		{"oidc cannot bind an access token", map[string]any{"provider": "corp", "access_token": "ya29.ours"}, 401, "invalid_token", "malformed"},
	})
	if api.UserInfoCalls() != userInfo+1 { // only the workspace case got past tokeninfo
		t.Fatalf("userinfo read %d times for refused tokens, want 1 (the domain check)", api.UserInfoCalls()-userInfo)
	}
	api.SetDown(true)
	h.checkRefusals(t, []refused{
		{"Google API down", map[string]any{"provider": "google", "access_token": "ya29.ours"}, 503, "provider_unavailable", "provider_unavailable"},
	})
}

func TestOAuth2Provider(t *testing.T) {
	o := providertest.NewOAuth2(t)
	o.AddClient("acme-client", "acme-secret")
	h := newHarness(t, withProvider("acme", providerSpec{typ: "oauth2", link: exchange.LinkConfirm, allowSignup: true, setup: func(_ *providertest.Issuer, cfg *providers.Config) {
		cfg.Issuer, cfg.ClientIDs, cfg.ClientSecret = "https://acme.example", []string{"acme-client"}, "acme-secret"
		cfg.IntrospectionURL, cfg.UserInfoURL = o.IntrospectionURL(), o.UserInfoURL()
	}}))
	info := map[string]any{"id": 31337, "email": "wile@acme.example", "email_verified": true, "name": "Wile E."}
	o.AddToken("acme-ours", providertest.IntrospectedToken{ClientID: "acme-client", Active: true, Subject: "31337", UserInfo: info})
	o.AddToken("acme-theirs", providertest.IntrospectedToken{ClientID: "roadrunner-app", Active: true, Subject: "31337", UserInfo: info})
	o.AddToken("acme-revoked", providertest.IntrospectedToken{ClientID: "acme-client", Active: false, UserInfo: info})
	o.AddToken("acme-other-sub", providertest.IntrospectedToken{ClientID: "acme-client", Active: true, Subject: "1", UserInfo: info})

	tk := h.exchangeBody(map[string]any{"provider": "acme", "access_token": "acme-ours"})
	if !*tk.Created || tk.User.Identities[0].Subject != "31337" || tk.User.Email != "wile@acme.example" || !tk.User.EmailVerified {
		t.Fatalf("oauth2 sign-in: %+v", tk)
	}
	userInfo := o.UserInfoCalls()
	h.checkRefusals(t, []refused{
		{"another client's token", map[string]any{"provider": "acme", "access_token": "acme-theirs"}, 401, "invalid_token", "audience_mismatch"},
		{"inactive token", map[string]any{"provider": "acme", "access_token": "acme-revoked"}, 401, "invalid_token", "token_inactive"},
		{"unknown token", map[string]any{"provider": "acme", "access_token": "acme-unknown"}, 401, "invalid_token", "token_inactive"},
		{"an id_token", map[string]any{"provider": "acme", "id_token": h.idToken("x", nil)}, 401, "invalid_token", "malformed"},
		{"a code without token_url", map[string]any{"provider": "acme", "code": "c"}, 401, "invalid_token", "malformed"},
	})
	if o.UserInfoCalls() != userInfo {
		t.Fatal("userinfo was read with a token that failed introspection")
	}
	h.checkRefusals(t, []refused{
		{"introspection and userinfo disagree", map[string]any{"provider": "acme", "access_token": "acme-other-sub"}, 401, "invalid_token", "malformed"},
	})
}

// pkceVerifier is a code_verifier of RFC 7636 syntax (43 to 128 unreserved
// characters).
const pkceVerifier = "verifier-123-0123456789abcdefghijklmnopqrstuvwxyz"

func TestCodeExchange(t *testing.T) {
	withSecret := func(secret string) providerSpec {
		return providerSpec{typ: "oidc", link: exchange.LinkConfirm, allowSignup: true, setup: func(_ *providertest.Issuer, cfg *providers.Config) {
			cfg.ClientSecret = secret
			cfg.RedirectURIs = []string{"https://app.example.com/callback", "com.example.app:/oauth"}
		}}
	}
	h := newHarness(t, withProvider("corp-code", withSecret("corp-secret")), withProvider("corp-badsecret", withSecret("wrong")))
	const cb = "https://app.example.com/callback"
	grant := func(idToken string) providertest.CodeGrant {
		return providertest.CodeGrant{ClientID: webClientID, ClientSecret: "corp-secret", RedirectURI: cb, CodeVerifier: pkceVerifier, IDToken: idToken}
	}
	h.iss.AddCode("code-1", grant(h.idToken("coder", nil)))
	tk := h.exchangeBody(map[string]any{"provider": "corp-code", "code": "code-1", "redirect_uri": cb, "code_verifier": pkceVerifier})
	if !*tk.Created || tk.User.Identities[0].Subject != "coder" {
		t.Fatalf("code exchange: %+v", tk)
	}

	// Nonce rules apply to the id_token of the answer.
	h.iss.AddCode("code-nonce", grant(h.idToken("coder", map[string]any{"nonce": "n-0S6"})))
	h.exchangeBody(map[string]any{"provider": "corp-code", "code": "code-nonce", "redirect_uri": cb, "code_verifier": pkceVerifier, "nonce": "n-0S6"})

	h.iss.AddCode("code-2", grant(h.idToken("coder2", map[string]any{"nonce": "n-1"})))
	h.iss.AddCode("code-3", grant(h.idToken("coder3", map[string]any{"aud": "someone-else"})))
	h.iss.AddCode("code-4", grant(""))
	h.iss.AddCode("code-5", providertest.CodeGrant{ClientID: webClientID, ClientSecret: "corp-secret", RedirectURI: cb, IDToken: h.idToken("coder5", nil)})
	h.iss.AddCode("code-6", grant(h.idToken("coder6", nil)))
	h.checkRefusals(t, []refused{
		{"used code", map[string]any{"provider": "corp-code", "code": "code-1", "redirect_uri": cb, "code_verifier": pkceVerifier}, 401, "invalid_token", "code_rejected"},
		{"unknown code", map[string]any{"provider": "corp-code", "code": "nope", "redirect_uri": cb, "code_verifier": pkceVerifier}, 401, "invalid_token", "code_rejected"},
		{"redirect_uri not allowed", map[string]any{"provider": "corp-code", "code": "code-6", "redirect_uri": cb + "x", "code_verifier": pkceVerifier}, 400, "invalid_request", "redirect_uri_not_allowed"},
		{"allowed redirect_uri the flow did not use", map[string]any{"provider": "corp-code", "code": "code-6", "redirect_uri": "com.example.app:/oauth", "code_verifier": pkceVerifier}, 401, "invalid_token", "code_rejected"},
		{"wrong code_verifier", map[string]any{"provider": "corp-code", "code": "code-6", "redirect_uri": cb, "code_verifier": pkceVerifier[:42] + "X"}, 401, "invalid_token", "code_rejected"},
		{"no code_verifier", map[string]any{"provider": "corp-code", "code": "code-6", "redirect_uri": cb}, 400, "invalid_request", "pkce_required"},
		{"code_verifier too short", map[string]any{"provider": "corp-code", "code": "code-6", "redirect_uri": cb, "code_verifier": pkceVerifier[:42]}, 400, "invalid_request", "pkce_required"},
		{"code_verifier outside the unreserved set", map[string]any{"provider": "corp-code", "code": "code-6", "redirect_uri": cb, "code_verifier": pkceVerifier[:42] + "+"}, 400, "invalid_request", "pkce_required"},
		{"no redirect_uri", map[string]any{"provider": "corp-code", "code": "code-6", "code_verifier": pkceVerifier}, 400, "invalid_request", "redirect_uri_not_allowed"},
		{"id_token nonce without request nonce", map[string]any{"provider": "corp-code", "code": "code-2", "redirect_uri": cb, "code_verifier": pkceVerifier}, 401, "invalid_token", "nonce_mismatch"},
		{"id_token for another app", map[string]any{"provider": "corp-code", "code": "code-3", "redirect_uri": cb, "code_verifier": pkceVerifier}, 401, "invalid_token", "audience_mismatch"},
		{"answer without id_token", map[string]any{"provider": "corp-code", "code": "code-4", "redirect_uri": cb, "code_verifier": pkceVerifier}, 401, "invalid_token", "malformed"},
		{"provider without client_secret", map[string]any{"provider": "corp", "code": "code-6", "redirect_uri": cb, "code_verifier": pkceVerifier}, 401, "invalid_token", "malformed"},
		{"our client secret refused", map[string]any{"provider": "corp-badsecret", "code": "code-5", "redirect_uri": cb, "code_verifier": pkceVerifier}, 503, "provider_unavailable", "provider_unavailable"},
	})
	// The refused attempts left code-6 usable (the fake burns a code only
	// on success): it still signs in.
	h.exchangeBody(map[string]any{"provider": "corp-code", "code": "code-6", "redirect_uri": cb, "code_verifier": pkceVerifier})

	h.iss.SetDown(true)
	h.iss.AddCode("code-7", grant(h.idToken("coder7", nil)))
	h.checkRefusals(t, []refused{
		{"token endpoint down", map[string]any{"provider": "corp-code", "code": "code-7", "redirect_uri": cb, "code_verifier": pkceVerifier}, 503, "provider_unavailable", "provider_unavailable"},
	})
}
