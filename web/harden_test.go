package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/storage"
)

// interleave runs a hook just before the next write to a user, so a test
// can put a concurrent request exactly between a read-modify-write's read
// and its write, where a race would put it once in a while.
type interleave struct {
	storage.Store
	hook atomic.Pointer[func()]
}

func (s *interleave) before() {
	if f := s.hook.Swap(nil); f != nil {
		(*f)()
	}
}

func (s *interleave) UpdateUser(ctx context.Context, u storage.User) error {
	s.before()
	return s.Store.UpdateUser(ctx, u)
}

func (s *interleave) ModifyUser(ctx context.Context, id string, fn func(*storage.User) error) (storage.User, error) {
	s.before()
	return s.Store.ModifyUser(ctx, id, fn)
}

func withInterleave(il *interleave) harnessOption {
	return func(c *harnessConfig) {
		c.wrap = func(s storage.Store) storage.Store { il.Store = s; return il }
	}
}

// A write that lands while another request is between its read and its
// write must survive it: the second write may not put back what it read.
// The interleave hook runs the concurrent request at exactly that point.
func TestUserWritesKeepConcurrentChanges(t *testing.T) {
	disable := func(h *harness, id string) { h.adminOK("POST", "/admin/v1/users/"+id+"/disable", nil) }
	cases := []struct {
		name      string
		meanwhile func(h *harness, userID string)
		write     func(h *harness, userID, access string) response
		status    int
		check     func(t *testing.T, u storage.User)
	}{
		{"password change keeps a disable", disable, func(h *harness, _, access string) response {
			return h.postJSON("/v1/me/password", map[string]string{"current_password": goodPassword, "new_password": "a brand new passphrase"},
				"Authorization", "Bearer "+access)
		}, http.StatusOK, func(t *testing.T, u storage.User) {
			if !u.Disabled {
				t.Error("the admin's disable was undone by a concurrent password change")
			}
		}},
		{"roles keep a disable", disable, func(h *harness, userID, _ string) response {
			return h.admin("PUT", "/admin/v1/users/"+userID+"/roles", map[string]any{"roles": []string{"editor"}})
		}, http.StatusOK, func(t *testing.T, u storage.User) {
			if !u.Disabled || !slices.Equal(u.Roles, []string{"editor"}) {
				t.Errorf("disabled %v, roles %v; want true, [editor]", u.Disabled, u.Roles)
			}
		}},
		{"disable keeps roles", func(h *harness, id string) {
			h.adminOK("PUT", "/admin/v1/users/"+id+"/roles", map[string]any{"roles": []string{"editor"}})
		}, func(h *harness, userID, _ string) response {
			return h.admin("POST", "/admin/v1/users/"+userID+"/disable", nil)
		}, http.StatusOK, func(t *testing.T, u storage.User) {
			if !u.Disabled || !slices.Equal(u.Roles, []string{"editor"}) {
				t.Errorf("disabled %v, roles %v; want true, [editor]", u.Disabled, u.Roles)
			}
		}},
		{"claim by a verified identity keeps a disable", disable, func(h *harness, _, _ string) response {
			return h.postJSON("/v1/exchange", map[string]string{"provider": "google",
				"id_token": h.idToken("g-pat", map[string]any{"email": "pat@example.com"})})
		}, http.StatusForbidden, func(t *testing.T, u storage.User) {
			if !u.Disabled || u.PasswordHash == "" || u.EmailVerified {
				t.Errorf("disabled %v, password kept %v, verified %v; want a disabled account left as it was",
					u.Disabled, u.PasswordHash != "", u.EmailVerified)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			il := &interleave{}
			h := newHarness(t, withPassword(passwordConfig()), withAdmin(adminToken), withInterleave(il))
			reg := h.register("pat@example.com", goodPassword, "Pat")
			hook := func() { tc.meanwhile(h, reg.User.ID) }
			il.hook.Store(&hook)
			if res := tc.write(h, reg.User.ID, reg.AccessToken); res.status != tc.status {
				t.Fatalf("write: %d %s", res.status, res.body)
			}
			if il.hook.Load() != nil {
				t.Fatal("the write never reached the store")
			}
			u, err := h.store.GetUser(context.Background(), reg.User.ID)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, u)
		})
	}
}

// fire sends n copies of a JSON POST at once and returns the answers.
func fire(t *testing.T, h *harness, n int, path string, body func(i int) any) []response {
	t.Helper()
	out := make([]response, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		b, err := json.Marshal(body(i))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := http.Post(h.url+path, "application/json", bytes.NewReader(b))
			if err != nil {
				errs[i] = err
				return
			}
			defer res.Body.Close()
			rb, _ := io.ReadAll(res.Body)
			out[i] = response{status: res.StatusCode, header: res.Header, body: rb}
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Concurrent wrong passwords for one account: the throttle counts each
// before it hashes, so no more than per_account of them get to try.
func TestPasswordThrottleHoldsUnderConcurrency(t *testing.T) {
	const n, perAccount = 40, 5
	h := newHarness(t, withPassword(passwordConfig(func(c *exchange.PasswordConfig) { c.AccountBurst = perAccount })))
	h.register("pat@example.com", goodPassword, "")
	answers := fire(t, h, n, "/v1/login", func(i int) any {
		return map[string]string{"email": "pat@example.com", "password": fmt.Sprintf("wrong guess %d", i)}
	})
	counts := map[int]int{}
	for _, res := range answers {
		counts[res.status]++
		switch res.status {
		case http.StatusUnauthorized:
			assertError(t, res, http.StatusUnauthorized, "invalid_credentials", "invalid_credentials")
		case http.StatusTooManyRequests:
			assertError(t, res, http.StatusTooManyRequests, "rate_limited", "rate_limited")
			if s, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("429 Retry-After = %q", res.header.Get("Retry-After"))
			}
		default:
			t.Errorf("unexpected answer %d %s", res.status, res.body)
		}
	}
	// One token refills every window/perAccount (3 minutes): no slack needed.
	if counts[http.StatusUnauthorized] > perAccount || counts[http.StatusUnauthorized]+counts[http.StatusTooManyRequests] != n {
		t.Fatalf("%d concurrent wrong logins with per_account %d: %v (status: count)", n, perAccount, counts)
	}
	// The account is locked now, even for the right password.
	assertError(t, h.login("pat@example.com", goodPassword), http.StatusTooManyRequests, "rate_limited", "rate_limited")
}

// A success costs no token: the owner may sign in many times in a row.
func TestPasswordThrottleSuccessesAreFree(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig(func(c *exchange.PasswordConfig) { c.AccountBurst = 2 })))
	h.register("pat@example.com", goodPassword, "")
	for range 5 {
		h.loginOK("pat@example.com", goodPassword)
	}
	assertError(t, h.login("pat@example.com", "wrong wrong wrong"), http.StatusUnauthorized, "invalid_credentials", "invalid_credentials")
	h.loginOK("pat@example.com", goodPassword)
}

// With one hashing slot and a wait shorter than a hash, concurrent logins
// that need a hash are refused as busy instead of piling up argon2 memory.
func TestPasswordHashingBounded(t *testing.T) {
	heavy := exchange.Argon2Params{Memory: 32 * 1024, Iterations: 3, Parallelism: 1}
	h := newHarness(t, withPassword(passwordConfig(func(c *exchange.PasswordConfig) {
		c.Argon2, c.HashConcurrency, c.HashWait = heavy, 1, time.Millisecond
	})))
	const n = 8
	answers := fire(t, h, n, "/v1/login", func(i int) any {
		return map[string]string{"email": fmt.Sprintf("user%d@example.com", i), "password": "some wrong password"}
	})
	counts := map[int]int{}
	for _, res := range answers {
		counts[res.status]++
		switch res.status {
		case http.StatusUnauthorized:
		case http.StatusServiceUnavailable:
			assertError(t, res, http.StatusServiceUnavailable, "server_error", "busy")
			if res.header.Get("Retry-After") != "1" {
				t.Errorf("503 busy Retry-After = %q, want 1", res.header.Get("Retry-After"))
			}
		default:
			t.Errorf("unexpected answer %d %s", res.status, res.body)
		}
	}
	if counts[http.StatusServiceUnavailable] == 0 || counts[http.StatusUnauthorized] == 0 {
		t.Fatalf("%d concurrent logins through one hashing slot: %v (status: count), want some busy and some checked", n, counts)
	}

	// A compat profile's login answers busy in its own shape, with the same
	// Retry-After.
	hc := newHarness(t, withCompat("fastapi"), withPassword(passwordConfig(func(c *exchange.PasswordConfig) {
		c.Argon2, c.HashConcurrency, c.HashWait = heavy, 1, time.Millisecond
	})))
	busy := 0
	for _, res := range fire(t, hc, n, "/users/login/", func(i int) any {
		return map[string]string{"username": fmt.Sprintf("user%d@example.com", i), "password": "some wrong password"}
	}) {
		if res.status == http.StatusServiceUnavailable {
			busy++
			if res.header.Get("Retry-After") != "1" || res.json(t)["reason"] != "busy" {
				t.Errorf("compat busy: Retry-After %q, body %s", res.header.Get("Retry-After"), res.body)
			}
		}
	}
	if busy == 0 {
		t.Fatal("no compat login was refused as busy")
	}
}

// Registration is throttled per client IP, before any hashing, and a
// refused registration writes nothing.
func TestRegisterThrottledPerIP(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig(func(c *exchange.PasswordConfig) { c.RegisterBurst = 3 })))
	for i := range 3 {
		h.register(fmt.Sprintf("user%d@example.com", i), goodPassword, "")
	}
	before := h.snapshot()
	res := h.postJSON("/v1/register", map[string]string{"email": "user9@example.com", "password": goodPassword})
	assertError(t, res, http.StatusTooManyRequests, "rate_limited", "rate_limited")
	if s, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After = %q", res.header.Get("Retry-After"))
	}
	h.assertUnchanged(before)
	// The bucket refills over the window (15m / 3 = one every 5m).
	h.clock.Advance(5*time.Minute + time.Second)
	h.register("user9@example.com", goodPassword, "")
}

// A first password needs a recent sign-in: an access token whose session is
// older than the reauth window cannot add one.
func TestFirstPasswordNeedsRecentSignIn(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()))
	set := func(access string) response {
		return h.postJSON("/v1/me/password", map[string]string{"new_password": "a brand new passphrase"}, "Authorization", "Bearer "+access)
	}

	// Inside the window: allowed.
	fresh := h.exchangeOK("google", h.idToken("g-fresh", nil))
	h.clock.Advance(4 * time.Minute)
	if res := set(fresh.AccessToken); res.status != http.StatusOK {
		t.Fatalf("first password 4 minutes after sign-in: %d %s", res.status, res.body)
	}
	h.loginOK("g-fresh@example.com", "a brand new passphrase")

	// Outside it, even with a just-refreshed access token: refused, and
	// nothing written.
	old := h.exchangeOK("google", h.idToken("g-old", nil))
	h.clock.Advance(6 * time.Minute)
	refreshed := h.refreshOK(old.RefreshToken)
	before := h.snapshot()
	for _, access := range []string{old.AccessToken, refreshed.AccessToken} {
		assertError(t, set(access), http.StatusForbidden, "access_denied", "reauthentication_required")
	}
	h.assertUnchanged(before)
	u, err := h.store.GetUser(context.Background(), old.User.ID)
	if err != nil || u.PasswordHash != "" {
		t.Fatalf("user after refusal: hash %q, %v", u.PasswordHash, err)
	}
	assertError(t, h.login("g-old@example.com", "a brand new passphrase"), http.StatusUnauthorized, "invalid_credentials", "invalid_credentials")

	// A new sign-in makes it possible.
	again := h.exchangeOK("google", h.idToken("g-old", nil))
	if res := set(again.AccessToken); res.status != http.StatusOK {
		t.Fatalf("first password right after a new sign-in: %d %s", res.status, res.body)
	}

	// Changing an existing password needs the current one, not a fresh
	// session.
	h.clock.Advance(time.Hour)
	cur := h.refreshOK(again.RefreshToken)
	res := h.postJSON("/v1/me/password", map[string]string{"current_password": "a brand new passphrase", "new_password": "another new passphrase"},
		"Authorization", "Bearer "+cur.AccessToken)
	if res.status != http.StatusOK {
		t.Fatalf("password change an hour after sign-in: %d %s", res.status, res.body)
	}
}

// A password change whose verified current password is replaced before its
// write lands is refused, and the other change stands.
func TestPasswordChangeLosesToAConcurrentOne(t *testing.T) {
	il := &interleave{}
	h := newHarness(t, withPassword(passwordConfig()), withInterleave(il))
	reg := h.register("pat@example.com", goodPassword, "Pat")
	other := h.register("other@example.com", "the other passphrase", "")
	ctx := context.Background()
	o, err := h.store.GetUser(ctx, other.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	hook := func() {
		// Another request changed Pat's password meanwhile (to the hash of
		// "the other passphrase", borrowed from the other account).
		if _, err := h.store.ModifyUser(ctx, reg.User.ID, func(u *storage.User) error {
			u.PasswordHash = o.PasswordHash
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
	il.hook.Store(&hook)
	res := h.postJSON("/v1/me/password", map[string]string{"current_password": goodPassword, "new_password": "a brand new passphrase"},
		"Authorization", "Bearer "+reg.AccessToken)
	assertError(t, res, http.StatusConflict, "conflict", "password_changed")
	h.loginOK("pat@example.com", "the other passphrase")
	assertError(t, h.login("pat@example.com", "a brand new passphrase"), http.StatusUnauthorized, "invalid_credentials", "invalid_credentials")
}
