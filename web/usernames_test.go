package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/storage"
)

// Usernames (issue 14): register with one, log in by it, see it in the
// token and /v1/me, and every refusal writes nothing.

// jwtClaims decodes a JWT's payload without verifying it (the harness's
// own tokens; verification is tested elsewhere).
func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestUsernameRegisterAndLogin(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()))
	res := h.postJSON("/v1/register", map[string]string{"email": "john@example.com", "password": goodPassword, "username": "John.Doe"})
	if res.status != http.StatusOK {
		t.Fatalf("register: %d %s", res.status, res.body)
	}
	m := res.json(t)
	if u := m["user"].(map[string]any); u["preferred_username"] != "John.Doe" {
		t.Fatalf("register answer user: %v", u)
	}
	reg := decodeTokens(t, res)
	if c := jwtClaims(t, reg.AccessToken); c["preferred_username"] != "John.Doe" {
		t.Fatalf("access token claims: %v", c)
	}
	me := h.get("/v1/me", reg.AccessToken)
	if me.status != http.StatusOK || me.json(t)["preferred_username"] != "John.Doe" {
		t.Fatalf("/v1/me: %d %s", me.status, me.body)
	}

	// Every way to name the account opens it, in any ASCII case.
	for _, body := range []map[string]string{
		{"username": "john.doe"},
		{"username": "JOHN.DOE"},
		{"identifier": "John.Doe"},
		{"identifier": "JOHN@example.com"},
		{"email": "john@example.com"},
	} {
		body["password"] = goodPassword
		res := h.postJSON("/v1/login", body)
		if res.status != http.StatusOK {
			t.Fatalf("login %v: %d %s", body, res.status, res.body)
		}
		if tk := decodeTokens(t, res); tk.User.ID != reg.User.ID {
			t.Fatalf("login %v opened %s, want %s", body, tk.User.ID, reg.User.ID)
		}
	}
	// An account without a username has no claim.
	plain := h.register("plain@example.com", goodPassword, "")
	if c := jwtClaims(t, plain.AccessToken); c["preferred_username"] != nil {
		t.Fatalf("preferred_username on an account without one: %v", c)
	}
}

func TestUsernameRefusals(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()))
	h.postJSON("/v1/register", map[string]string{"email": "sam@example.com", "password": goodPassword, "username": "sam"})
	reg := func(username string) map[string]string {
		return map[string]string{"email": "new@example.com", "password": goodPassword, "username": username}
	}
	cases := []struct {
		name         string
		path         string
		body         map[string]string
		status       int
		code, reason string
	}{
		{"taken in another case", "/v1/register", reg("SAM"), 409, "account_exists", "username_taken"},
		{"looks like an email", "/v1/register", reg("sam@example.org"), 400, "invalid_request", "username_is_email"},
		{"bare at sign", "/v1/register", reg("sam@"), 400, "invalid_request", "username_is_email"},
		{"too short", "/v1/register", reg("ab"), 400, "invalid_request", "invalid_username"},
		{"too long", "/v1/register", reg(strings.Repeat("a", 31)), 400, "invalid_request", "invalid_username"},
		{"leading dot", "/v1/register", reg(".sam2"), 400, "invalid_request", "invalid_username"},
		{"space inside", "/v1/register", reg("sam two"), 400, "invalid_request", "invalid_username"},
		{"non-ASCII", "/v1/register", reg("s\u00e1m"), 400, "invalid_request", "invalid_username"},
		{"Kelvin sign", "/v1/register", reg("\u212Aelvin"), 400, "invalid_request", "invalid_username"},
		{"plus", "/v1/register", reg("sam+1"), 400, "invalid_request", "invalid_username"},
		{"two names", "/v1/login", map[string]string{"email": "sam@example.com", "username": "sam", "password": goodPassword}, 400, "invalid_request", "conflicting_identifiers"},
		{"identifier and email", "/v1/login", map[string]string{"email": "sam@example.com", "identifier": "sam", "password": goodPassword}, 400, "invalid_request", "conflicting_identifiers"},
		{"no name", "/v1/login", map[string]string{"password": goodPassword}, 400, "invalid_request", "missing_email"},
		{"unknown username", "/v1/login", map[string]string{"username": "nobody", "password": goodPassword}, 401, "invalid_credentials", "invalid_credentials"},
		{"wrong password", "/v1/login", map[string]string{"username": "sam", "password": "wrong " + goodPassword}, 401, "invalid_credentials", "invalid_credentials"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := h.snapshot()
			assertError(t, h.postJSON(c.path, c.body), c.status, c.code, c.reason)
			h.assertUnchanged(before)
		})
	}
}

// TestUsernameLoginSharesTheAccountBudget: failures by username and by
// email count against one budget, so two names do not double the guesses.
func TestUsernameLoginSharesTheAccountBudget(t *testing.T) {
	cfg := passwordConfig(func(c *exchange.PasswordConfig) { c.AccountBurst, c.IPBurst = 4, 50 })
	h := newHarness(t, withPassword(cfg))
	h.postJSON("/v1/register", map[string]string{"email": "target@example.com", "password": goodPassword, "username": "target"})
	for i := range cfg.AccountBurst {
		body := map[string]string{"password": "guess " + strconv.Itoa(i)}
		if i%2 == 0 {
			body["username"] = "TARGET"
		} else {
			body["email"] = "target@example.com"
		}
		assertError(t, h.postJSON("/v1/login", body), 401, "invalid_credentials", "invalid_credentials")
	}
	for _, body := range []map[string]string{
		{"username": "target", "password": goodPassword},
		{"identifier": "target@example.com", "password": goodPassword},
	} {
		assertError(t, h.postJSON("/v1/login", body), 429, "rate_limited", "rate_limited")
	}
}

// TestUsernameConcurrentRegistrations: 50 registrations of one username
// (in two cases, each with its own email) at once: exactly one account.
func TestUsernameConcurrentRegistrations(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig(func(c *exchange.PasswordConfig) {
		c.RegisterBurst, c.HashWait = 100, time.Minute
	})))
	const n = 50
	codes := make([]int, n)
	reasons := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			name := "racer"
			if i%2 == 1 {
				name = "Racer"
			}
			res := h.postJSON("/v1/register", map[string]string{"email": "racer" + strconv.Itoa(i) + "@example.com",
				"password": goodPassword, "username": name})
			codes[i] = res.status
			if res.status != http.StatusOK {
				reasons[i], _ = res.json(t)["reason"].(string)
			}
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, c := range codes {
		switch {
		case c == http.StatusOK:
			ok++
		case c == http.StatusConflict && reasons[i] == "username_taken":
		default:
			t.Fatalf("registration %d: %d %s", i, c, reasons[i])
		}
	}
	users, err := h.store.ListUsers(context.Background(), storage.UserFilter{Username: "RACER"})
	if n, _ := h.store.CountUsers(context.Background()); ok != 1 || n != 1 || err != nil || len(users) != 1 {
		t.Fatalf("%d registrations succeeded, %d users, %d named racer (%v)", ok, n, len(users), err)
	}
}

// TestUsernameClaimedAccountLosesIt: the pre-registration attack with a
// username: when a verified identity takes the password account over, the
// username the password holder chose goes with the password, and no
// longer signs anyone in.
func TestUsernameClaimedAccountLosesIt(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()))
	res := h.postJSON("/v1/register", map[string]string{"email": "victim@gmail.com", "password": goodPassword, "username": "victim"})
	if res.status != http.StatusOK {
		t.Fatalf("register: %d %s", res.status, res.body)
	}
	victim := h.exchangeOK("google", h.idToken("victim-google", map[string]any{"email": "victim@gmail.com", "email_verified": true}))
	u, err := h.store.GetUser(context.Background(), victim.User.ID)
	if err != nil || u.Username != "" || u.PasswordHash != "" {
		t.Fatalf("claimed account: %+v %v", u, err)
	}
	if _, err := h.store.GetUserByUsername(context.Background(), "victim"); err == nil {
		t.Fatal("the claimed account's username is still indexed")
	}
	assertError(t, h.postJSON("/v1/login", map[string]string{"username": "victim", "password": goodPassword}),
		401, "invalid_credentials", "invalid_credentials")
	if c := jwtClaims(t, victim.AccessToken); c["preferred_username"] != nil {
		t.Fatalf("claimed account's token still names the username: %v", c)
	}
}

// TestCompatSimpleJWTPlainUsername is the tutorial's request sequence as
// its frontend sends it, with a plain username: register {username, email,
// password, password2} (and first_name, last_name as the serializer
// accepts), login {username, password}, GET /user/, refresh {refresh}, GET
// /user/ again. Before usernames, the register answered 400
// username_not_email and the login 401.
func TestCompatSimpleJWTPlainUsername(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()), withCompat("simplejwt"))
	const base = "/api/auth"
	res := h.postJSON(base+"/register/", map[string]string{"username": "john", "email": "john@example.com",
		"password": goodPassword, "password2": goodPassword, "first_name": "Mary Ann", "last_name": "Smith"})
	if res.status != http.StatusCreated {
		t.Fatalf("register: %d %s", res.status, res.body)
	}
	if m := res.json(t); m["username"] != "john" || m["email"] != "john@example.com" ||
		m["first_name"] != "Mary Ann" || m["last_name"] != "Smith" || m["password"] != nil {
		t.Fatalf("register answer: %s", res.body)
	}
	// register() then calls login(username, password).
	res = h.postJSON(base+"/login/", map[string]string{"username": "john", "password": goodPassword})
	if res.status != http.StatusOK {
		t.Fatalf("login: %d %s", res.status, res.body)
	}
	pair := fields(t, res, "access", "refresh")
	if c := jwtClaims(t, str(pair, "access")); c["preferred_username"] != "john" {
		t.Fatalf("access claims: %v", c)
	}
	wantUser := func(access string) {
		t.Helper()
		res := h.get(base+"/user/", access)
		u := fields(t, res, "id", "username", "email", "first_name", "last_name")
		if res.status != http.StatusOK || u["username"] != "john" || u["email"] != "john@example.com" ||
			u["first_name"] != "Mary Ann" || u["last_name"] != "Smith" {
			t.Fatalf("/user/: %d %s", res.status, res.body)
		}
	}
	wantUser(str(pair, "access"))
	h.clock.Advance(16 * time.Minute)
	res = h.postJSON(base+"/token/refresh/", map[string]string{"refresh": str(pair, "refresh")})
	if res.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", res.status, res.body)
	}
	wantUser(str(fields(t, res, "access"), "access"))
	// The email still signs in as the username.
	if res := h.postJSON(base+"/login/", map[string]string{"username": "JOHN@example.com", "password": goodPassword}); res.status != http.StatusOK {
		t.Fatalf("login by email: %d %s", res.status, res.body)
	}

	// The register page reads err.response.data.username[0].
	for _, c := range []struct {
		name, username, email, reason string
	}{
		{"taken", "JOHN", "other@example.com", "username_taken"},
		{"invalid", "jo hn", "other@example.com", "invalid_username"},
		{"someone's email", "john@example.com", "other@example.com", "username_is_email"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := h.snapshot()
			m := wantStatus(t, h.postJSON(base+"/register/", map[string]string{"username": c.username, "email": c.email,
				"password": goodPassword, "password2": goodPassword}), 400, c.reason)
			if firstOf(t, m, "username") == "" {
				t.Fatal("empty username[0]")
			}
			h.assertUnchanged(before)
		})
	}
	// The login page reads err.response.data.detail.
	before := h.snapshot()
	m := wantStatus(t, h.postJSON(base+"/login/", map[string]string{"username": "john", "password": "nope"}), 401, "invalid_credentials")
	if m["detail"] != "No active account found with the given credentials" {
		t.Fatalf("login refusal: %v", m)
	}
	h.assertUnchanged(before)
}

// TestUsernameIntrospection: /oauth/introspect answers RFC 7662's
// username for an access or refresh token of an account with one.
func TestUsernameIntrospection(t *testing.T) {
	h := clientHarness(t, withPassword(passwordConfig()))
	res := h.postJSON("/v1/register", map[string]string{"email": "intro@example.com", "password": goodPassword, "username": "Intro"},
		basic("nextjs", nextjsSecret)...)
	if res.status != http.StatusOK {
		t.Fatalf("register: %d %s", res.status, res.body)
	}
	tk := decodeTokens(t, res)
	for _, token := range []string{tk.AccessToken, tk.RefreshToken} {
		res := h.postForm("/oauth/introspect", url.Values{"token": {token}}, basic("nextjs", nextjsSecret)...)
		if m := res.json(t); res.status != http.StatusOK || m["active"] != true || m["username"] != "Intro" {
			t.Fatalf("introspect: %d %s", res.status, res.body)
		}
	}
}
