package emulator_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/providers"
	"github.com/authex/authex/providers/emulator"
	"github.com/authex/authex/storage/bolt"
	"github.com/authex/authex/web"
)

const (
	clientID = "authex-dev"
	redirect = "http://localhost:3000/api/auth/callback/authex"
	verifier = "dBjftJeZ4CVP-mJ92ZHhRZ7kp7sKMPsYT-3Y_tW2Ji0kwiHXS5bP9NHNr8uXjGt" // 63 chars
)

func challenge(v string) string {
	s := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// newEmulator serves an emulator at srv.URL+"/emulator".
func newEmulator(t *testing.T) (*emulator.Emulator, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	em, err := emulator.New(emulator.Config{Issuer: "http://" + srv.Listener.Addr().String() + "/emulator", ClientIDs: []string{clientID, "other-app"}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = em
	srv.Start()
	t.Cleanup(srv.Close)
	return em, srv
}

// noRedirects is a client that shows us each redirect instead of following it.
func noRedirects() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type flow struct {
	clientID, redirectURI, challenge, method, nonce, state string
}

func defaultFlow() flow {
	return flow{clientID: clientID, redirectURI: redirect, challenge: challenge(verifier), method: "S256", nonce: "n-0S6_WzA2Mj", state: "st-123"}
}

func (f flow) values() url.Values {
	return url.Values{
		"response_type": {"code"}, "client_id": {f.clientID}, "redirect_uri": {f.redirectURI},
		"scope": {"openid email profile"}, "state": {f.state}, "nonce": {f.nonce},
		"code_challenge": {f.challenge}, "code_challenge_method": {f.method},
	}
}

// approve walks the authorize page as a browser would and returns the
// redirect it ends on.
func approve(t *testing.T, base string, f flow, email, name string) *url.URL {
	t.Helper()
	c := noRedirects()
	res, err := c.Get(base + "/emulator/authorize?" + f.values().Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(page), `id="approve"`) {
		t.Fatalf("authorize page: %d %s", res.StatusCode, page)
	}
	form := f.values()
	form.Set("email", email)
	form.Set("name", name)
	form.Set("action", "approve")
	res, err = c.PostForm(base+"/emulator/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("approve: %d", res.StatusCode)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func token(t *testing.T, base string, form url.Values, basicID string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/emulator/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(basicID, "any-secret")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, m
}

func tokenForm(code, redirectURI, verifier string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}}
}

// verifierFor is authex's real OIDC verifier (discovery, JWKS, go-oidc)
// pointed at the emulator.
func verifierFor(t *testing.T, issuer string) providers.Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := providers.New(ctx, providers.Config{Name: "dev", Type: "oidc", Issuer: issuer, ClientIDs: []string{clientID}})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := providers.WaitReady(wctx, v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCodeFlowWithPKCE(t *testing.T) {
	em, srv := newEmulator(t)
	f := defaultFlow()
	loc := approve(t, srv.URL, f, "ada@example.com", "Ada Lovelace")
	q := loc.Query()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirect {
		t.Fatalf("redirected to %s", loc)
	}
	if q.Get("state") != f.state || q.Get("iss") != em.Issuer() || q.Get("code") == "" {
		t.Fatalf("callback query %v", q)
	}

	status, tok := token(t, srv.URL, tokenForm(q.Get("code"), redirect, verifier), clientID) // client_secret_basic
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, tok)
	}
	idToken, _ := tok["id_token"].(string)
	access, _ := tok["access_token"].(string)

	// authex's own verifier accepts it, nonce and at_hash included.
	id, err := verifierFor(t, em.Issuer()).Verify(context.Background(), providers.Credential{IDToken: idToken, AccessToken: access, Nonce: f.nonce})
	if err != nil {
		t.Fatalf("authex verifier refused the emulator's id_token: %v", err)
	}
	if id.Email != "ada@example.com" || !id.EmailVerified || id.Name != "Ada Lovelace" || id.Subject != emulator.Subject("ada@example.com") {
		t.Fatalf("identity %+v", id)
	}
	// A wrong nonce and a foreign access token are refused: the claims are really there.
	if _, err := verifierFor(t, em.Issuer()).Verify(context.Background(), providers.Credential{IDToken: idToken, Nonce: "other"}); err == nil {
		t.Fatal("wrong nonce accepted")
	}
	if _, err := verifierFor(t, em.Issuer()).Verify(context.Background(), providers.Credential{IDToken: idToken, AccessToken: "x" + access, Nonce: f.nonce}); err == nil {
		t.Fatal("wrong access token accepted against at_hash")
	}

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/emulator/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ui map[string]any
	json.NewDecoder(res.Body).Decode(&ui)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || ui["email"] != "ada@example.com" || ui["sub"] != id.Subject {
		t.Fatalf("userinfo: %d %v", res.StatusCode, ui)
	}

	// The page now offers the recent account.
	res, err = http.Get(srv.URL + "/emulator/authorize?" + f.values().Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(page), `data-email="ada@example.com"`) {
		t.Fatalf("recent account not offered:\n%s", page)
	}
}

func TestTokenRefusals(t *testing.T) {
	_, srv := newEmulator(t)
	f := defaultFlow()

	cases := []struct {
		name   string
		form   func(code string) url.Values
		basic  string
		status int
		error  string
	}{
		{"bad PKCE verifier", func(c string) url.Values { return tokenForm(c, redirect, verifier+"x") }, clientID, 400, "invalid_grant"},
		{"no verifier", func(c string) url.Values { return tokenForm(c, redirect, "") }, clientID, 400, "invalid_grant"},
		{"wrong redirect_uri", func(c string) url.Values { return tokenForm(c, redirect+"/evil", verifier) }, clientID, 400, "invalid_grant"},
		{"other client", func(c string) url.Values { return tokenForm(c, redirect, verifier) }, "other-app", 400, "invalid_grant"},
		{"unknown client", func(c string) url.Values { return tokenForm(c, redirect, verifier) }, "stranger", 401, "invalid_client"},
		{"wrong grant type", func(c string) url.Values {
			v := tokenForm(c, redirect, verifier)
			v.Set("grant_type", "refresh_token")
			return v
		}, clientID, 400, "unsupported_grant_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code := approve(t, srv.URL, f, "bob@example.com", "Bob").Query().Get("code")
			status, body := token(t, srv.URL, tc.form(code), tc.basic)
			if status != tc.status || body["error"] != tc.error || body["id_token"] != nil {
				t.Fatalf("%d %v, want %d %s", status, body, tc.status, tc.error)
			}
		})
	}

	t.Run("reused code", func(t *testing.T) {
		code := approve(t, srv.URL, f, "bob@example.com", "Bob").Query().Get("code")
		form := tokenForm(code, redirect, verifier)
		form.Set("client_id", clientID) // client_secret_post / public client
		if status, body := token(t, srv.URL, form, ""); status != 200 {
			t.Fatalf("first use: %d %v", status, body)
		}
		if status, body := token(t, srv.URL, form, ""); status != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("second use: %d %v", status, body)
		}
	})

	t.Run("a failed attempt burns the code", func(t *testing.T) {
		code := approve(t, srv.URL, f, "bob@example.com", "Bob").Query().Get("code")
		token(t, srv.URL, tokenForm(code, redirect, "wrong-verifier-wrong-verifier-wrong-verifier-1"), clientID)
		if status, body := token(t, srv.URL, tokenForm(code, redirect, verifier), clientID); status != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("code usable after a failed attempt: %d %v", status, body)
		}
	})
}

func TestAuthorizeRefusals(t *testing.T) {
	_, srv := newEmulator(t)
	c := noRedirects()
	get := func(f flow) *http.Response {
		res, err := c.Get(srv.URL + "/emulator/authorize?" + f.values().Encode())
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	// A bad client or redirect_uri is shown, never redirected to.
	for name, f := range map[string]flow{
		"unknown client":       {clientID: "stranger", redirectURI: redirect, challenge: challenge(verifier), method: "S256"},
		"relative redirect":    {clientID: clientID, redirectURI: "/callback", challenge: challenge(verifier), method: "S256"},
		"javascript: redirect": {clientID: clientID, redirectURI: "javascript:alert(1)", challenge: challenge(verifier), method: "S256"},
	} {
		if res := get(f); res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
			t.Errorf("%s: %d %q", name, res.StatusCode, res.Header.Get("Location"))
		}
	}
	// PKCE problems go back to the client as OAuth errors.
	for name, f := range map[string]flow{
		"no challenge":    {clientID: clientID, redirectURI: redirect, state: "s"},
		"plain method":    {clientID: clientID, redirectURI: redirect, challenge: challenge(verifier), method: "plain", state: "s"},
		"short challenge": {clientID: clientID, redirectURI: redirect, challenge: "abc", method: "S256", state: "s"},
	} {
		res := get(f)
		loc, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != "s" {
			t.Errorf("%s: %d %q", name, res.StatusCode, res.Header.Get("Location"))
		}
	}
	// Deny, and a non-address email.
	form := defaultFlow().values()
	form.Set("action", "deny")
	res, err := c.PostForm(srv.URL+"/emulator/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc, _ := url.Parse(res.Header.Get("Location")); res.StatusCode != http.StatusFound || loc.Query().Get("error") != "access_denied" {
		t.Errorf("deny: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	form.Set("action", "approve")
	form.Set("email", "not an email")
	res, err = c.PostForm(srv.URL+"/emulator/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
		t.Errorf("bad email: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestKeyFilePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "emulator.pem")
	jwks := func() string {
		em, err := emulator.New(emulator.Config{Issuer: "http://127.0.0.1:1/emulator", KeyFile: path})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		em.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/emulator/jwks", nil))
		return rec.Body.String()
	}
	if a, b := jwks(), jwks(); a != b || !strings.Contains(a, `"RS256"`) {
		t.Fatalf("key not kept across restarts:\n%s\n%s", a, b)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9090": true, "localhost:9090": true, "[::1]:9090": true, "127.0.0.2:1": true,
		":9090": false, "0.0.0.0:9090": false, "[::]:9090": false, "192.168.1.5:9090": false, "example.com:80": false, "nonsense": false,
	} {
		if got := emulator.IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}

// authexWithEmulator mounts a fresh emulator inside a real authex server
// (as `serve --dev` does) over a bbolt file, with the emulator registered as
// provider dev and the given clients; it returns once the provider's keys
// are loaded.
func authexWithEmulator(t *testing.T, clients []exchange.ClientConfig) (string, *emulator.Emulator) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	em, err := emulator.New(emulator.Config{Issuer: base + "/emulator"})
	if err != nil {
		t.Fatal(err)
	}
	store, err := bolt.Open(filepath.Join(t.TempDir(), "authex.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := providers.New(ctx, providers.Config{Name: "dev", Type: "oidc", Issuer: em.Issuer(), ClientIDs: em.ClientIDs()})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := exchange.New(ctx, exchange.Config{
		Issuer: base, Audience: []string{"api"}, Algorithm: exchange.AlgES256, AccessTTL: time.Minute,
		RefreshTTL: time.Hour, SessionMax: 2 * time.Hour, ReuseGrace: 10 * time.Second,
		Clients: clients,
	}, store, map[string]exchange.Provider{"dev": {Verifier: v, LinkByEmail: exchange.LinkConfirm, AllowSignup: true}}, exchange.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = web.NewServer(web.Deps{Exchange: svc, Mounts: map[string]http.Handler{"/emulator": em}})
	srv.Start()
	t.Cleanup(srv.Close)
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := providers.WaitReady(wctx, v); err != nil {
		t.Fatal(err)
	}
	return base, em
}

// postExchange POSTs body to the authex server's /v1/exchange, as client
// id with Basic authentication when id is not empty, and returns the status
// and the decoded answer.
func postExchange(t *testing.T, base string, body map[string]any, id, secret string) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/exchange", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if id != "" {
		req.SetBasicAuth(id, secret)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

// TestMintedTokenAtAuthex mounts the emulator inside a real authex server
// (as `serve --dev` does), registers it as provider dev, and trades a
// minted id_token at /v1/exchange; a token minted for another audience is
// refused with its reason.
func TestMintedTokenAtAuthex(t *testing.T) {
	base, _ := authexWithEmulator(t, nil)

	mint := func(claims map[string]any) string {
		b, _ := json.Marshal(claims)
		res, err := http.Post(base+"/emulator/mint", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]string
		json.NewDecoder(res.Body).Decode(&m)
		if res.StatusCode != http.StatusOK || m["id_token"] == "" {
			t.Fatalf("mint: %d %v", res.StatusCode, m)
		}
		return m["id_token"]
	}
	exchangeAt := func(idToken string) (int, map[string]any) {
		return postExchange(t, base, map[string]any{"provider": "dev", "id_token": idToken}, "", "")
	}

	status, body := exchangeAt(mint(map[string]any{"email": "grace@example.com", "name": "Grace Hopper"}))
	if status != http.StatusOK {
		t.Fatalf("exchange: %d %v", status, body)
	}
	user := body["user"].(map[string]any)
	ids := user["identities"].([]any)
	if user["email"] != "grace@example.com" || user["email_verified"] != true || len(ids) != 1 ||
		ids[0].(map[string]any)["provider"] != "dev" || ids[0].(map[string]any)["subject"] != emulator.Subject("grace@example.com") {
		t.Fatalf("user %v", user)
	}

	status, body = exchangeAt(mint(map[string]any{"email": "grace@example.com", "aud": "someone-else"}))
	if status != http.StatusUnauthorized || body["reason"] != "audience_mismatch" {
		t.Fatalf("foreign audience: %d %v", status, body)
	}
	status, body = exchangeAt(mint(map[string]any{"email": "grace@example.com", "exp": time.Now().Add(-time.Hour).Unix()}))
	if status != http.StatusUnauthorized || body["reason"] != "expired" {
		t.Fatalf("expired: %d %v", status, body)
	}

	// iss cannot be forged through mint.
	res, err := http.Post(base+"/emulator/mint", "application/json", strings.NewReader(`{"email":"a@b.c","iss":"https://accounts.google.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("mint with iss: %d", res.StatusCode)
	}
}
