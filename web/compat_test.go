package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/web"
)

// These tests drive each profile with the request bodies the tutorials'
// client code sends (docs/compat.md quotes it) and check the fields that
// code reads.

// fields decodes a JSON object and fails unless every key is present.
func fields(t *testing.T, res response, keys ...string) map[string]any {
	t.Helper()
	m := res.json(t)
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Fatalf("answer lacks %q: %s", k, res.body)
		}
	}
	return m
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// firstOf reads DRF's {"field": ["message", ...]}.
func firstOf(t *testing.T, m map[string]any, field string) string {
	t.Helper()
	list, ok := m[field].([]any)
	if !ok || len(list) == 0 {
		t.Fatalf("no %s[0] in %v", field, m)
	}
	s, _ := list[0].(string)
	return s
}

func wantStatus(t *testing.T, res response, status int, reason string) map[string]any {
	t.Helper()
	if res.status != status {
		t.Fatalf("status %d, want %d: %s", res.status, status, res.body)
	}
	m := res.json(t)
	if m["reason"] != reason {
		t.Fatalf("reason %v, want %q: %s", m["reason"], reason, res.body)
	}
	return m
}

// TestCompatFastAPI: the Auth.js v5 Credentials provider's authorize()
// posts JSON.stringify(credentials) to /users/login/ and reads
// access_token, token_type and user; the session callback posts the token
// to /users/session/ on every render and keeps what comes back.
func TestCompatFastAPI(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()), withCompat("fastapi"))
	reg := h.register("ada@example.com", goodPassword, "Ada Lovelace")

	// authorize(): Auth.js passes the form's fields, csrfToken and
	// callbackUrl included.
	before := h.snapshot()
	res := h.postJSON("/users/login/", map[string]string{
		"username": "ada@example.com", "password": "wrong password", "csrfToken": "x", "callbackUrl": "/"})
	// if (!response.ok) throw new CredentialsSignin(json.detail)
	m := wantStatus(t, res, 401, "invalid_credentials")
	if m["detail"] != "Could not validate credentials" || res.header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("refusal: %s %v", res.body, res.header)
	}
	m = wantStatus(t, h.postJSON("/users/login/", map[string]string{"password": "x"}), 422, "missing_field")
	if d, _ := m["detail"].([]any); len(d) != 1 || !strings.Contains(string(mustJSON(t, d[0])), `"loc":["body","username"]`) {
		t.Fatalf("validation error: %v", m)
	}
	h.assertUnchanged(before)

	res = h.postJSON("/users/login/", map[string]string{
		"username": "ada@example.com", "password": goodPassword, "csrfToken": "x", "callbackUrl": "/"})
	if res.status != http.StatusOK {
		t.Fatalf("login: %d %s", res.status, res.body)
	}
	login := fields(t, res, "access_token", "token_type", "user")
	user := login["user"].(map[string]any)
	for _, k := range []string{"id", "email", "first_name", "last_name", "name", "is_staff", "is_active", "is_superuser", "last_login", "date_joined"} {
		if _, ok := user[k]; !ok {
			t.Fatalf("user lacks %q: %v", k, user)
		}
	}
	if login["token_type"] != "Bearer" || user["id"] != reg.User.ID || user["email"] != "ada@example.com" ||
		user["first_name"] != "Ada" || user["last_name"] != "Lovelace" || user["is_active"] != true || user["is_staff"] != false {
		t.Fatalf("login answer: %s", res.body)
	}
	token := str(login, "access_token")
	verifyWithJWKS(t, h, token)

	session := func(token string) response {
		return h.do(http.MethodPost, "/users/session/", "application/json", nil, "Authorization", "Bearer "+token)
	}
	// A fresh token comes back as it is.
	res = session(token)
	if s := fields(t, res, "access_token", "token_type", "user"); res.status != 200 || s["access_token"] != token {
		t.Fatalf("fresh token: %d %s", res.status, res.body)
	}
	// With less than a third of its life left, it is rotated, and
	// concurrent renders all get a working token.
	h.clock.Advance(11 * time.Minute)
	var wg sync.WaitGroup
	renewed := make([]string, 8)
	for i := range renewed {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := session(token)
			if res.status != 200 {
				t.Errorf("render %d: %d %s", i, res.status, res.body)
				return
			}
			var s struct {
				AccessToken string `json:"access_token"`
			}
			_ = json.Unmarshal(res.body, &s)
			renewed[i] = s.AccessToken
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, tok := range renewed {
		if tok == token || tok == "" {
			t.Fatalf("render %d kept the old token", i)
		}
		if res := h.get("/v1/me", tok); res.status != 200 {
			t.Fatalf("renewed token %d: %d %s", i, res.status, res.body)
		}
	}
	// The renewed token lives a full lifetime: it outlives the old one.
	h.clock.Advance(5 * time.Minute)
	wantStatus(t, session(token), 401, "expired")
	newest := renewed[0]
	if res := session(newest); res.status != 200 {
		t.Fatalf("renewed token after the old one expired: %d %s", res.status, res.body)
	}

	// 401 for a disabled user, a revoked session, no token.
	other := h.loginOK("ada@example.com", goodPassword)
	res = h.postJSON("/v1/logout", map[string]string{"refresh_token": other.RefreshToken})
	if res.status != 200 {
		t.Fatal(res.status)
	}
	wantStatus(t, session(other.AccessToken), 401, "revoked")
	wantStatus(t, h.do(http.MethodPost, "/users/session/", "application/json", nil), 401, "missing_token")
	u, _ := h.store.GetUser(context.Background(), reg.User.ID)
	u.Disabled = true
	if err := h.store.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	m = wantStatus(t, session(newest), 401, "user_disabled")
	if m["detail"] != "Could not validate credentials" {
		t.Fatalf("disabled: %v", m)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCompatSimpleJWT drives the DigitalOcean tutorial's axios
// AuthContext: register posts {username, email, password, password2} and
// then logs in; login posts {username, password}, keeps access and
// refresh, and reads /user/; on a 401 the interceptor posts {refresh} to
// /token/refresh/ and reads access.
func TestCompatSimpleJWT(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig(func(c *exchange.PasswordConfig) { c.AccountBurst = 3 })), withCompat("simplejwt"))
	const base = "/api/auth"

	// The register page reads err.response.data.username?.[0].
	refusals := []struct {
		name   string
		body   map[string]string
		field  string
		reason string
	}{
		{"username is another email", map[string]string{"username": "alice@example.com", "email": "bob@example.com", "password": goodPassword, "password2": goodPassword}, "username", "username_is_email"},
		{"username too short", map[string]string{"username": "bo", "email": "bob@example.com", "password": goodPassword, "password2": goodPassword}, "username", "invalid_username"},
		{"username with a space", map[string]string{"username": "bob smith", "email": "bob@example.com", "password": goodPassword, "password2": goodPassword}, "username", "invalid_username"},
		{"username without email", map[string]string{"username": "bob", "password": goodPassword, "password2": goodPassword}, "email", "missing_field"},
		{"passwords differ", map[string]string{"username": "bob@example.com", "email": "bob@example.com", "password": goodPassword, "password2": goodPassword + "!"}, "password", "password_mismatch"},
		{"common", map[string]string{"username": "bob@example.com", "email": "bob@example.com", "password": "qwertyuiop", "password2": "qwertyuiop"}, "password", "password_too_common"},
		{"short", map[string]string{"username": "bob@example.com", "email": "bob@example.com", "password": "abc", "password2": "abc"}, "password", "password_too_short"},
		{"missing password2", map[string]string{"username": "bob@example.com", "email": "bob@example.com", "password": goodPassword}, "password2", "missing_field"},
		{"bad email", map[string]string{"username": "bob@", "email": "bob@", "password": goodPassword, "password2": goodPassword}, "email", "invalid_email"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			before := h.snapshot()
			m := wantStatus(t, h.postJSON(base+"/register/", r.body), 400, r.reason)
			if firstOf(t, m, r.field) == "" {
				t.Fatal("empty message")
			}
			h.assertUnchanged(before)
		})
	}

	// register(username, email, password, password2), then login.
	res := h.postJSON(base+"/register/", map[string]string{
		"username": "bob@example.com", "email": "bob@example.com", "password": goodPassword, "password2": goodPassword})
	if res.status != http.StatusCreated {
		t.Fatalf("register: %d %s", res.status, res.body)
	}
	if m := res.json(t); m["username"] != "bob@example.com" || m["password"] != nil {
		t.Fatalf("register answer: %s", res.body)
	}
	before := h.snapshot()
	m := wantStatus(t, h.postJSON(base+"/register/", map[string]string{
		"username": "BOB@example.com", "email": "BOB@example.com", "password": goodPassword, "password2": goodPassword}), 400, "email_taken")
	if firstOf(t, m, "username") == "" {
		t.Fatal("duplicate not on username")
	}
	h.assertUnchanged(before)

	// The login page reads err.response.data.detail.
	before = h.snapshot()
	m = wantStatus(t, h.postJSON(base+"/login/", map[string]string{"username": "bob@example.com", "password": "nope"}), 401, "invalid_credentials")
	if m["detail"] != "No active account found with the given credentials" {
		t.Fatalf("login refusal: %v", m)
	}
	m = wantStatus(t, h.postJSON(base+"/login/", map[string]string{}), 400, "missing_field")
	firstOf(t, m, "username")
	firstOf(t, m, "password")
	h.assertUnchanged(before)

	res = h.postJSON(base+"/login/", map[string]string{"username": "bob@example.com", "password": goodPassword})
	if res.status != 200 {
		t.Fatalf("login: %d %s", res.status, res.body)
	}
	pair := fields(t, res, "access", "refresh")
	access, refresh := str(pair, "access"), str(pair, "refresh")
	// Django also takes form bodies.
	form := h.do(http.MethodPost, base+"/login/", "application/x-www-form-urlencoded",
		[]byte("username=bob%40example.com&password="+strings.ReplaceAll(goodPassword, " ", "+")))
	fields(t, form, "access", "refresh")

	// api.get('/user/') with the Bearer interceptor.
	res = h.get(base+"/user/", access)
	user := fields(t, res, "id", "username", "email", "first_name", "last_name")
	if res.status != 200 || user["username"] != "bob@example.com" || user["email"] != "bob@example.com" {
		t.Fatalf("/user/: %d %s", res.status, res.body)
	}
	m = wantStatus(t, h.get(base+"/user/", ""), 401, "missing_token")
	if m["detail"] != "Authentication credentials were not provided." {
		t.Fatalf("no token: %v", m)
	}

	// The access token expires; the interceptor sees 401, refreshes, retries.
	h.clock.Advance(16 * time.Minute)
	m = wantStatus(t, h.get(base+"/user/", access), 401, "expired")
	if m["code"] != "token_not_valid" {
		t.Fatalf("expired: %v", m)
	}
	res = h.postJSON(base+"/token/refresh/", map[string]string{"refresh": refresh})
	if res.status != 200 {
		t.Fatalf("refresh: %d %s", res.status, res.body)
	}
	next := fields(t, res, "access", "refresh")
	if res := h.get(base+"/user/", str(next, "access")); res.status != 200 {
		t.Fatalf("retried /user/: %d %s", res.status, res.body)
	}
	wantStatus(t, h.postJSON(base+"/token/refresh/", map[string]string{"refresh": "garbage"}), 401, "malformed")
	firstOf(t, wantStatus(t, h.postJSON(base+"/token/refresh/", map[string]string{}), 400, "missing_field"), "refresh")

	// Throttled logins: DRF's throttle message and Retry-After.
	for range 3 {
		h.postJSON(base+"/login/", map[string]string{"username": "bob@example.com", "password": "nope"})
	}
	res = h.postJSON(base+"/login/", map[string]string{"username": "bob@example.com", "password": goodPassword})
	m = wantStatus(t, res, 429, "rate_limited")
	if secs, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || secs < 1 ||
		m["detail"] != "Request was throttled. Expected available in "+strconv.Itoa(secs)+" seconds." {
		t.Fatalf("throttle: %v %v", res.header.Get("Retry-After"), m)
	}

	// djrestauth's social route is not served by this profile.
	if res := h.postJSON(base+"/google/", map[string]string{"id_token": "x"}); res.status != http.StatusNotFound && res.status != http.StatusMethodNotAllowed {
		t.Fatalf("social route served under simplejwt: %d", res.status)
	}
}

// TestCompatDjRestAuth drives the Next-Auth + dj-rest-auth social login:
// the jwt callback posts Google's tokens to /api/auth/google/ and reads
// access, refresh and user; it refreshes at /api/auth/token/refresh/.
func TestCompatDjRestAuth(t *testing.T) {
	h := newHarness(t, withCompat("djrestauth"))
	const base = "/api/auth"
	idToken := h.idToken("g-dj", map[string]any{"email": "dj@example.com", "name": "Django Reinhardt"})

	before := h.snapshot()
	bad := h.idToken("g-dj", map[string]any{"aud": "someone-else"})
	m := wantStatus(t, h.postJSON(base+"/google/", map[string]string{"access_token": "ya29.x", "id_token": bad}), 400, "audience_mismatch")
	firstOf(t, m, "non_field_errors")
	firstOf(t, wantStatus(t, h.postJSON(base+"/nope/", map[string]string{"id_token": idToken}), 400, "unknown_provider"), "non_field_errors")
	firstOf(t, wantStatus(t, h.postJSON(base+"/google/", map[string]string{}), 400, "missing_credential"), "non_field_errors")
	h.assertUnchanged(before)

	res := h.postJSON(base+"/google/", map[string]string{"id_token": idToken})
	if res.status != 200 {
		t.Fatalf("social login: %d %s", res.status, res.body)
	}
	login := fields(t, res, "access", "refresh", "user")
	user := login["user"].(map[string]any)
	if user["pk"] == "" || user["email"] != "dj@example.com" || user["username"] != "dj@example.com" ||
		user["first_name"] != "Django" || user["last_name"] != "Reinhardt" {
		t.Fatalf("user: %s", res.body)
	}
	claims := verifyWithJWKS(t, h, str(login, "access"))
	if claims["idp"] != "google" || claims["sub"] != user["pk"] {
		t.Fatalf("claims: %v", claims)
	}

	// /user/, /token/verify/, /token/refresh/.
	if res := h.get(base+"/user/", str(login, "access")); res.status != 200 || res.json(t)["pk"] != user["pk"] {
		t.Fatalf("/user/: %d %s", res.status, res.body)
	}
	if res := h.postJSON(base+"/token/verify/", map[string]string{"token": str(login, "access")}); res.status != 200 || string(res.body) != "{}\n" {
		t.Fatalf("verify: %d %q", res.status, res.body)
	}
	m = wantStatus(t, h.postJSON(base+"/token/verify/", map[string]string{"token": str(login, "access") + "x"}), 401, "signature")
	if m["code"] != "token_not_valid" {
		t.Fatalf("verify refusal: %v", m)
	}
	res = h.postJSON(base+"/token/refresh/", map[string]string{"refresh": str(login, "refresh")})
	pair := fields(t, res, "access", "refresh")
	if res.status != 200 || pair["refresh"] == login["refresh"] {
		t.Fatalf("refresh: %d %s", res.status, res.body)
	}

	// Logout with a Bearer token and no body (a JSON Content-Type all the same).
	spare := fields(t, h.postJSON(base+"/google/", map[string]string{"id_token": h.idToken("g-dj", map[string]any{"email": "dj@example.com"})}), "access")
	res = h.do(http.MethodPost, base+"/logout/", "application/json", nil, "Authorization", "Bearer "+str(spare, "access"))
	if res.status != 200 {
		t.Fatalf("bearer logout: %d %s", res.status, res.body)
	}
	wantStatus(t, h.get(base+"/user/", str(spare, "access")), 401, "revoked")

	// Logout with the refresh token revokes the session.
	wantStatus(t, h.postJSON(base+"/logout/", map[string]string{}), 401, "missing_credential")
	res = h.postJSON(base+"/logout/", map[string]string{"refresh": str(pair, "refresh")})
	if res.status != 200 || res.json(t)["detail"] != "Successfully logged out." {
		t.Fatalf("logout: %d %s", res.status, res.body)
	}
	wantStatus(t, h.postJSON(base+"/token/refresh/", map[string]string{"refresh": str(pair, "refresh")}), 401, "revoked")
	wantStatus(t, h.postJSON(base+"/token/verify/", map[string]string{"token": str(pair, "access")}), 401, "revoked")

	// account_exists carries the link_token in the DRF body.
	h.exchangeOK("google", h.idToken("g-first", map[string]any{"email": "shared@example.com"}))
	m = wantStatus(t, h.postJSON(base+"/corp/", map[string]string{"id_token": h.idToken("c-second", map[string]any{"email": "shared@example.com"})}), 400, "account_exists")
	if str(m, "link_token") == "" {
		t.Fatalf("no link_token: %v", m)
	}
}

func TestCompatRoutesOnlyWhenConfigured(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()))
	for _, p := range []string{"/users/login/", "/api/auth/login/", "/api/auth/google/", "/api/auth/token/refresh/"} {
		if res := h.postJSON(p, map[string]string{}); res.status != http.StatusNotFound {
			t.Fatalf("%s served without compat: %d", p, res.status)
		}
	}
}

func TestCompatConflicts(t *testing.T) {
	got := web.CompatConflicts([]string{"djrestauth", "simplejwt"})
	if len(got) != 1 || !strings.Contains(got[0], "POST /api/auth/token/refresh/") || !strings.Contains(got[0], "GET /api/auth/user/") ||
		!strings.Contains(got[0], "POST /api/auth/login/") {
		t.Fatalf("conflicts: %v", got)
	}
	for _, ok := range [][]string{{"djrestauth", "fastapi"}, {"simplejwt", "fastapi"}, {"fastapi"}} {
		if c := web.CompatConflicts(ok); len(c) != 0 {
			t.Fatalf("%v: %v", ok, c)
		}
	}
}
