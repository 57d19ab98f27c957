package web_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/storage"
)

// testArgon2 is cheap enough for -race, and real argon2id all the same.
var testArgon2 = exchange.Argon2Params{Memory: 8 * 1024, Iterations: 1, Parallelism: 1}

func passwordConfig(mod ...func(*exchange.PasswordConfig)) exchange.PasswordConfig {
	cfg := exchange.PasswordConfig{Argon2: testArgon2, MinLength: 8, AllowSignup: true,
		AccountBurst: 5, IPBurst: 50, Window: 15 * time.Minute}
	for _, m := range mod {
		m(&cfg)
	}
	return cfg
}

const goodPassword = "correct horse battery staple"

func (h *harness) register(email, password, name string) tokens {
	h.t.Helper()
	res := h.postJSON("/v1/register", map[string]string{"email": email, "password": password, "name": name})
	if res.status != http.StatusOK {
		h.t.Fatalf("register %s: %d %s", email, res.status, res.body)
	}
	return decodeTokens(h.t, res)
}

func (h *harness) login(email, password string) response {
	h.t.Helper()
	return h.postJSON("/v1/login", map[string]string{"email": email, "password": password})
}

func (h *harness) loginOK(email, password string) tokens {
	h.t.Helper()
	res := h.login(email, password)
	if res.status != http.StatusOK {
		h.t.Fatalf("login %s: %d %s", email, res.status, res.body)
	}
	return decodeTokens(h.t, res)
}

func TestPasswordRegisterAndLogin(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()))
	reg := h.register("Pat@Example.com", goodPassword, "Pat Doe")
	if reg.Created == nil || !*reg.Created || reg.TokenType != "Bearer" || reg.RefreshToken == "" ||
		reg.User.Email != "Pat@Example.com" || reg.User.EmailVerified || reg.User.Name != "Pat Doe" ||
		len(reg.User.Identities) != 1 || reg.User.Identities[0].Provider != "password" ||
		reg.User.Identities[0].Subject != reg.User.ID || reg.ExpiresIn < 890 {
		t.Fatalf("register answer: %+v", reg)
	}
	claims := verifyWithJWKS(t, h, reg.AccessToken)
	if claims["idp"] != "password" || claims["email_verified"] != false || claims["sub"] != reg.User.ID {
		t.Fatalf("claims: %v", claims)
	}

	// Stored: a PHC argon2id string with the configured parameters, the
	// identity under our issuer + "#password", and no verified-email entry.
	ctx := context.Background()
	u, err := h.store.GetUser(ctx, reg.User.ID)
	if err != nil || !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=8192,t=1,p=1$") || strings.Contains(u.PasswordHash, goodPassword) {
		t.Fatalf("stored hash %q (%v)", u.PasswordHash, err)
	}
	if _, err := h.store.GetIdentity(ctx, h.cfg.Issuer+"#password", reg.User.ID); err != nil {
		t.Fatalf("password identity: %v", err)
	}
	if _, err := h.store.GetUserByVerifiedEmail(ctx, "pat@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an unverified email reached the verified index: %v", err)
	}

	// Login, with the email in any case, answers like /v1/exchange.
	in := h.loginOK("pat@example.COM", goodPassword)
	if in.Created == nil || *in.Created || in.User.ID != reg.User.ID || in.SessionID == reg.SessionID ||
		len(in.User.Identities) != 1 || in.RefreshToken == "" {
		t.Fatalf("login answer: %+v", in)
	}
	if res := h.get("/v1/me", in.AccessToken); res.status != http.StatusOK || res.json(t)["id"] != reg.User.ID {
		t.Fatalf("/v1/me: %d %s", res.status, res.body)
	}
	res := h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": in.RefreshToken})
	if res.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", res.status, res.body)
	}
}

func TestPasswordRegisterRefusals(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()))
	h.register("taken@example.com", goodPassword, "")
	h.exchangeOK("google", h.idToken("g-owner", map[string]any{"email": "owner@example.com"}))
	long := strings.Repeat("x", exchange.MaxPasswordLength+1)
	cases := []struct {
		name           string
		body           any
		status         int
		code, reason   string
		wantInResponse string
	}{
		{"too short", map[string]string{"email": "a@example.com", "password": "Abc123!"}, 400, "invalid_request", "password_too_short", "at least 8"},
		{"too long", map[string]string{"email": "a@example.com", "password": long}, 400, "invalid_request", "password_too_long", ""},
		{"common", map[string]string{"email": "a@example.com", "password": "Password123"}, 400, "invalid_request", "password_too_common", ""},
		{"common digits", map[string]string{"email": "a@example.com", "password": "12345678"}, 400, "invalid_request", "password_too_common", ""},
		{"is the email", map[string]string{"email": "longname@example.com", "password": "LongName"}, 400, "invalid_request", "password_matches_email", ""},
		{"missing email", map[string]string{"password": goodPassword}, 400, "invalid_request", "missing_email", ""},
		{"invalid email", map[string]string{"email": "not-an-address", "password": goodPassword}, 400, "invalid_request", "invalid_email", ""},
		{"email with a name", map[string]string{"email": "Bob <bob@example.com>", "password": goodPassword}, 400, "invalid_request", "invalid_email", ""},
		{"missing password", map[string]string{"email": "a@example.com"}, 400, "invalid_request", "missing_password", ""},
		{"duplicate", map[string]string{"email": "TAKEN@example.com", "password": goodPassword}, 409, "account_exists", "email_taken", ""},
		{"verified owner", map[string]string{"email": "owner@example.com", "password": goodPassword}, 409, "account_exists", "email_taken", ""},
		{"malformed", "{", 400, "invalid_request", "malformed_json", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot()
			var res response
			if s, ok := tc.body.(string); ok {
				res = h.do(http.MethodPost, "/v1/register", "application/json", []byte(s))
			} else {
				res = h.postJSON("/v1/register", tc.body)
			}
			assertError(t, res, tc.status, tc.code, tc.reason)
			if !strings.Contains(string(res.body), tc.wantInResponse) {
				t.Fatalf("answer lacks %q: %s", tc.wantInResponse, res.body)
			}
			h.assertUnchanged(before)
		})
	}

	t.Run("signup disabled", func(t *testing.T) {
		h := newHarness(t, withPassword(passwordConfig(func(c *exchange.PasswordConfig) { c.AllowSignup = false })))
		before := h.snapshot()
		assertError(t, h.postJSON("/v1/register", map[string]string{"email": "a@example.com", "password": goodPassword}),
			403, "access_denied", "signup_disabled")
		h.assertUnchanged(before)
	})
	t.Run("passwords off", func(t *testing.T) {
		h := newHarness(t)
		before := h.snapshot()
		assertError(t, h.postJSON("/v1/register", map[string]string{"email": "a@example.com", "password": goodPassword}),
			400, "unsupported_provider", "passwords_disabled")
		assertError(t, h.login("a@example.com", goodPassword), 400, "unsupported_provider", "passwords_disabled")
		h.assertUnchanged(before)
	})
}

func TestPasswordLoginFailuresLookAlike(t *testing.T) {
	// A large budget: this test is about the answers, not the throttle.
	h := newHarness(t, withPassword(passwordConfig(func(c *exchange.PasswordConfig) {
		c.Argon2 = exchange.Argon2Params{Memory: 16 * 1024, Iterations: 2, Parallelism: 1}
		c.AccountBurst, c.IPBurst = 1000, 1000
	})))
	h.register("known@example.com", goodPassword, "")
	before := h.snapshot()
	wrong := h.login("known@example.com", "not the password")
	unknown := h.login("nobody@example.com", "not the password")
	assertError(t, wrong, 401, "invalid_credentials", "invalid_credentials")
	assertError(t, unknown, 401, "invalid_credentials", "invalid_credentials")
	if w, u := wrong.json(t)["error_description"], unknown.json(t)["error_description"]; w != u {
		t.Fatalf("the two failures differ: %q vs %q", w, u)
	}
	h.assertUnchanged(before)

	// Timing: both pay one argon2id. Medians of a few attempts each, with
	// generous bounds (the machine is shared): an unknown email that
	// skipped the hash would be many times faster.
	// Interleaved, so that load on the machine hits both alike.
	var dw, du []time.Duration
	for range 7 {
		for _, email := range []string{"known@example.com", "nobody@example.com"} {
			start := time.Now()
			res := h.login(email, "not the password")
			d := time.Since(start)
			if res.status != 401 {
				t.Fatalf("%d %s", res.status, res.body)
			}
			if email == "known@example.com" {
				dw = append(dw, d)
			} else {
				du = append(du, d)
			}
		}
	}
	slices.Sort(dw)
	slices.Sort(du)
	mw, mu := dw[len(dw)/2], du[len(du)/2]
	t.Logf("median failed login: wrong password %v, unknown email %v", mw, mu)
	if mu < mw/3 || mu > mw*3 {
		t.Fatalf("unknown email %v vs wrong password %v: the answer time tells them apart", mu, mw)
	}
}

func TestPasswordLoginThrottle(t *testing.T) {
	cfg := passwordConfig(func(c *exchange.PasswordConfig) { c.AccountBurst, c.IPBurst = 3, 6 })
	h := newHarness(t, withPassword(cfg))
	h.register("target@example.com", goodPassword, "")
	h.register("other@example.com", goodPassword, "")
	before := h.snapshot()
	for i := range cfg.AccountBurst {
		assertError(t, h.login("target@example.com", "guess "+strconv.Itoa(i)), 401, "invalid_credentials", "invalid_credentials")
	}
	// The account is throttled, even for the right password.
	res := h.login("target@example.com", goodPassword)
	assertError(t, res, 429, "rate_limited", "rate_limited")
	ra, err := strconv.Atoi(res.header.Get("Retry-After"))
	perFailure := cfg.Window / time.Duration(cfg.AccountBurst)
	if err != nil || ra < 1 || time.Duration(ra)*time.Second > perFailure+time.Second {
		t.Fatalf("Retry-After %q, want 1..%v", res.header.Get("Retry-After"), perFailure)
	}
	h.assertUnchanged(before)
	// Another account from the same IP still signs in.
	h.loginOK("other@example.com", goodPassword)

	// After Retry-After the account may try again.
	h.clock.Advance(time.Duration(ra) * time.Second)
	h.loginOK("target@example.com", goodPassword)

	// Per IP: failures spread over many accounts exhaust the IP's budget;
	// then every account is refused from that IP, an unknown one too.
	for i := 0; ; i++ {
		if i > cfg.IPBurst {
			t.Fatalf("%d failures from one IP and no throttle", i)
		}
		res = h.login("spray"+strconv.Itoa(i)+"@example.com", "guess")
		if res.status == http.StatusTooManyRequests {
			break
		}
		assertError(t, res, 401, "invalid_credentials", "invalid_credentials")
	}
	assertError(t, res, 429, "rate_limited", "rate_limited")
	if res.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	assertError(t, h.login("other@example.com", goodPassword), 429, "rate_limited", "rate_limited")
}

func TestPasswordDisabledUser(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()))
	reg := h.register("off@example.com", goodPassword, "")
	u, _ := h.store.GetUser(context.Background(), reg.User.ID)
	u.Disabled = true
	if err := h.store.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	before := h.snapshot()
	// The disabled state shows only to whoever knows the password.
	assertError(t, h.login("off@example.com", "wrong password!"), 401, "invalid_credentials", "invalid_credentials")
	assertError(t, h.login("off@example.com", goodPassword), 403, "access_denied", "user_disabled")
	h.assertUnchanged(before)
}

func TestPasswordChange(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()))
	a := h.register("chg@example.com", goodPassword, "")
	b := h.loginOK("chg@example.com", goodPassword)
	c := h.loginOK("chg@example.com", goodPassword)
	change := func(bearer string, body map[string]string) response {
		return h.postJSON("/v1/me/password", body, "Authorization", "Bearer "+bearer)
	}
	const newPassword = "a much better passphrase"
	refusals := []struct {
		name         string
		bearer       string
		body         map[string]string
		status       int
		code, reason string
	}{
		{"no bearer", "", map[string]string{"current_password": goodPassword, "new_password": newPassword}, 401, "invalid_token", "missing_token"},
		{"no current", a.AccessToken, map[string]string{"new_password": newPassword}, 400, "invalid_request", "missing_current_password"},
		{"wrong current", a.AccessToken, map[string]string{"current_password": "nope nope nope", "new_password": newPassword}, 401, "invalid_credentials", "invalid_credentials"},
		{"no new", a.AccessToken, map[string]string{"current_password": goodPassword}, 400, "invalid_request", "missing_password"},
		{"common new", a.AccessToken, map[string]string{"current_password": goodPassword, "new_password": "iloveyou"}, 400, "invalid_request", "password_too_common"},
		{"short new", a.AccessToken, map[string]string{"current_password": goodPassword, "new_password": "short"}, 400, "invalid_request", "password_too_short"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			before := h.snapshot()
			assertError(t, change(r.bearer, r.body), r.status, r.code, r.reason)
			h.assertUnchanged(before)
		})
	}

	res := change(a.AccessToken, map[string]string{"current_password": goodPassword, "new_password": newPassword})
	if res.status != http.StatusOK || res.json(t)["revoked"] != float64(2) {
		t.Fatalf("change: %d %s", res.status, res.body)
	}
	// The other sessions are gone, this one lives on.
	for _, other := range []tokens{b, c} {
		assertError(t, h.get("/v1/me", other.AccessToken), 401, "invalid_token", "revoked")
		assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": other.RefreshToken}), 400, "invalid_grant", "revoked")
	}
	if res := h.get("/v1/me", a.AccessToken); res.status != http.StatusOK {
		t.Fatalf("caller's session: %d %s", res.status, res.body)
	}
	assertError(t, h.login("chg@example.com", goodPassword), 401, "invalid_credentials", "invalid_credentials")
	h.loginOK("chg@example.com", newPassword)

	t.Run("provider user sets a first password", func(t *testing.T) {
		g := h.exchangeOK("google", h.idToken("g-setter", map[string]any{"email": "setter@example.com"}))
		res := change(g.AccessToken, map[string]string{"new_password": newPassword})
		if res.status != http.StatusOK || res.json(t)["revoked"] != float64(0) {
			t.Fatalf("set: %d %s", res.status, res.body)
		}
		in := h.loginOK("setter@example.com", newPassword)
		if in.User.ID != g.User.ID || !in.User.EmailVerified || len(in.User.Identities) != 2 {
			t.Fatalf("login after set: %+v", in)
		}
		// From now on the current password is required.
		before := h.snapshot()
		assertError(t, change(g.AccessToken, map[string]string{"new_password": "yet another passphrase"}), 400, "invalid_request", "missing_current_password")
		h.assertUnchanged(before)
	})
}

// TestPreRegistrationAttack: an attacker registers victim@gmail.com with a
// password before the victim ever signs in with Google. The verified
// Google identity takes the account over; the attacker's password, tokens
// and linked identities open nothing of it afterwards.
func TestPreRegistrationAttack(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()))
	ctx := context.Background()
	att := h.register("victim@gmail.com", goodPassword, "Not The Victim")
	// The attacker also links an identity of their own (set up through the
	// store: the linking route is another component's).
	if err := h.store.AddIdentity(ctx, storage.Identity{ID: "att-corp", UserID: att.User.ID, Provider: "corp",
		Issuer: h.iss.URL(), Subject: "attacker-corp", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	victim := h.exchangeOK("google", h.idToken("victim-google", map[string]any{
		"email": "victim@gmail.com", "email_verified": true, "name": "Real Victim"}))
	if !victim.User.EmailVerified || victim.User.Name != "Real Victim" || len(victim.User.Identities) != 1 ||
		victim.User.Identities[0].Provider != "google" {
		t.Fatalf("victim's account: %+v", victim.User)
	}

	// The attacker's password no longer opens anything.
	assertError(t, h.login("victim@gmail.com", goodPassword), 401, "invalid_credentials", "invalid_credentials")
	// Their tokens are dead.
	assertError(t, h.get("/v1/me", att.AccessToken), 401, "invalid_token", "revoked")
	assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": att.RefreshToken}), 400, "invalid_grant", "revoked")
	// Their linked identity is unlinked: signing in with it makes a user of its own.
	mine := h.exchangeOK("corp", h.idToken("attacker-corp", map[string]any{"email": "attacker@example.com"}))
	if mine.User.ID == victim.User.ID {
		t.Fatal("the attacker's linked identity still opens the victim's account")
	}
	// They cannot register the address again, nor set a password on it.
	assertError(t, h.postJSON("/v1/register", map[string]string{"email": "victim@gmail.com", "password": goodPassword}), 409, "account_exists", "email_taken")
	u, err := h.store.GetUser(ctx, victim.User.ID)
	if err != nil || u.PasswordHash != "" || !u.EmailVerified {
		t.Fatalf("stored victim: %+v %v", u, err)
	}
	if owner, err := h.store.GetUserByVerifiedEmail(ctx, "victim@gmail.com"); err != nil || owner.ID != victim.User.ID {
		t.Fatalf("verified index: %v %v", owner.ID, err)
	}
	audit, _ := h.store.ListAudit(ctx, storage.AuditFilter{Type: "user.claimed"})
	if len(audit) != 1 || audit[0].UserID != victim.User.ID {
		t.Fatalf("claim not audited: %+v", audit)
	}
	// The victim signs in again normally.
	if again := h.exchangeOK("google", h.idToken("victim-google", map[string]any{"email": "victim@gmail.com"})); again.User.ID != victim.User.ID {
		t.Fatalf("second sign-in: %+v", again.User)
	}
}

// With a provider whose emails only link after confirmation, the password
// account is neither taken over nor linked: the verified identity gets a
// separate user, and the password keeps opening only its own account.
func TestPreRegistrationConfirmProvider(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()))
	att := h.register("victim@example.com", goodPassword, "")
	victim := h.exchangeOK("corp", h.idToken("victim-corp", map[string]any{"email": "victim@example.com"}))
	if victim.User.ID == att.User.ID || !victim.User.EmailVerified {
		t.Fatalf("victim landed in the password account: %+v", victim.User)
	}
	in := h.loginOK("victim@example.com", goodPassword)
	if in.User.ID != att.User.ID {
		t.Fatalf("password opened %s, want the password account %s", in.User.ID, att.User.ID)
	}
	// One address, one password: the verified user cannot add a second.
	before := h.snapshot()
	assertError(t, h.postJSON("/v1/me/password", map[string]string{"new_password": "the victim's own passphrase"}, bearer(victim.AccessToken)...),
		409, "account_exists", "email_taken")
	h.assertUnchanged(before)
}

// Unlinking the password identity removes the password with it; it is
// refused while it is the last way in.
func TestPasswordUnlink(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()))
	reg := h.register("un@example.com", goodPassword, "")
	pwIdent := reg.User.Identities[0].ID
	before := h.snapshot()
	assertError(t, h.del("/v1/me/identities/"+pwIdent, reg.AccessToken), 409, "conflict", "last_identity")
	h.assertUnchanged(before)

	// Link a Google identity (verified, another address), then drop the password.
	res := h.postJSON("/v1/me/identities", map[string]any{"provider": "google",
		"id_token": h.idToken("g-un", map[string]any{"email": "un@gmail.example"})}, bearer(reg.AccessToken)...)
	if res.status != http.StatusCreated {
		t.Fatalf("link: %d %s", res.status, res.body)
	}
	if res := h.del("/v1/me/identities/"+pwIdent, reg.AccessToken); res.status != http.StatusNoContent {
		t.Fatalf("unlink: %d %s", res.status, res.body)
	}
	assertError(t, h.login("un@example.com", goodPassword), 401, "invalid_credentials", "invalid_credentials")
	if u, _ := h.store.GetUser(context.Background(), reg.User.ID); u.PasswordHash != "" {
		t.Fatal("password kept after its identity was unlinked")
	}
	if g := h.exchangeOK("google", h.idToken("g-un", map[string]any{"email": "un@gmail.example"})); g.User.ID != reg.User.ID {
		t.Fatalf("google identity: %+v", g.User)
	}
}

// With clients configured, /v1/register and /v1/login authenticate the
// client as /v1/exchange does, and honour its provider list.
func TestPasswordClientAuth(t *testing.T) {
	h := clientHarness(t, withPassword(passwordConfig()))
	body := map[string]string{"email": "cl@example.com", "password": goodPassword}
	before := h.snapshot()
	assertError(t, h.postJSON("/v1/register", body), 401, "invalid_client", "missing_client")
	assertError(t, h.postJSON("/v1/register", body, basic("nextjs", "wrong")...), 401, "invalid_client", "invalid_secret")
	assertError(t, h.postJSON("/v1/register", body, basic("corp-only", corpOnlySecret)...), 400, "unauthorized_client", "provider_not_allowed")
	h.assertUnchanged(before)
	res := h.postJSON("/v1/register", body, basic("nextjs", nextjsSecret)...)
	if res.status != http.StatusOK {
		t.Fatalf("register: %d %s", res.status, res.body)
	}
	before = h.snapshot()
	assertError(t, h.postJSON("/v1/login", body), 401, "invalid_client", "missing_client")
	h.assertUnchanged(before)
	res = h.postJSON("/v1/login", map[string]string{"email": "cl@example.com", "password": goodPassword, "client_id": "ios-app"})
	if res.status != http.StatusOK {
		t.Fatalf("login: %d %s", res.status, res.body)
	}
	if claims := verifyWithJWKS(t, h, decodeTokens(t, res).AccessToken); claims["client_id"] != "ios-app" {
		t.Fatalf("client_id claim: %v", claims["client_id"])
	}
}

func TestPasswordConcurrentRegistration(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()))
	const n = 8
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res := h.postJSON("/v1/register", map[string]string{"email": "Race@example.com", "password": goodPassword + strconv.Itoa(i)})
			codes[i] = res.status
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusConflict:
		default:
			t.Fatalf("status %d", c)
		}
	}
	if n, _ := h.store.CountUsers(context.Background()); ok != 1 || n != 1 {
		t.Fatalf("%d registrations succeeded, %d users", ok, n)
	}
}
