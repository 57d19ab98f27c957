package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authex/authex/storage"
)

// Helpers shared by the linking, sessions, clients and OAuth tests.

func (h *harness) postForm(path string, vals url.Values, headers ...string) response {
	h.t.Helper()
	return h.do(http.MethodPost, path, "application/x-www-form-urlencoded", []byte(vals.Encode()), headers...)
}

func (h *harness) del(path, bearer string) response {
	h.t.Helper()
	return h.do(http.MethodDelete, path, "", nil, "Authorization", "Bearer "+bearer)
}

func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

func (h *harness) auditTypes() []string {
	h.t.Helper()
	events, err := h.store.ListAudit(context.Background(), storage.AuditFilter{Limit: 1000})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range events {
		out = append(out, e.Type)
	}
	return out
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// linkTokenFor signs in a new corp identity whose verified email another
// user owns, and returns the link_token of the 409.
func (h *harness) linkTokenFor(sub, email string) string {
	h.t.Helper()
	before := h.snapshot()
	res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken(sub, map[string]any{"email": email})})
	assertError(h.t, res, http.StatusConflict, "account_exists", "account_exists")
	h.assertUnchanged(before)
	lt, _ := res.json(h.t)["link_token"].(string)
	if lt == "" {
		h.t.Fatalf("409 without link_token: %s", res.body)
	}
	return lt
}

func TestLinkFlowEndToEnd(t *testing.T) {
	h := newHarness(t)
	// The existing account signs in with Google.
	owner := h.exchangeOK("google", h.idToken("g-owner", map[string]any{"email": "shared@example.com"}))

	// The same person arrives through corp (link_by_email: confirm): 409.
	res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("c-owner", map[string]any{"email": "shared@example.com"})})
	assertError(t, res, http.StatusConflict, "account_exists", "account_exists")
	body := res.json(t)
	linkToken := body["link_token"].(string)

	// The 409 and its token say nothing about the existing account.
	if strings.Contains(string(res.body), owner.User.ID) || strings.Contains(string(res.body), "google") ||
		strings.Contains(string(res.body), "g-owner") {
		t.Fatalf("409 reveals the existing account: %s", res.body)
	}
	// The token itself is sealed: it names nothing (TestLinkTokenIsSealed).
	assertSealed(t, linkToken, "shared@example.com", "c-owner", owner.User.ID, h.iss.URL())

	// The existing user posts it.
	res = h.postJSON("/v1/me/identities", map[string]any{"link_token": linkToken}, bearer(owner.AccessToken)...)
	if res.status != http.StatusCreated {
		t.Fatalf("link: %d %s", res.status, res.body)
	}
	var linked struct {
		Linked   bool `json:"linked"`
		Identity struct {
			ID, Provider, Subject string
		} `json:"identity"`
		User struct {
			ID         string           `json:"id"`
			Identities []map[string]any `json:"identities"`
		} `json:"user"`
	}
	if err := json.Unmarshal(res.body, &linked); err != nil {
		t.Fatal(err)
	}
	if !linked.Linked || linked.Identity.Provider != "corp" || linked.Identity.Subject != "c-owner" ||
		linked.User.ID != owner.User.ID || len(linked.User.Identities) != 2 {
		t.Fatalf("link answer: %s", res.body)
	}

	// Both identities now sign in to the one user.
	viaCorp := h.exchangeOK("corp", h.idToken("c-owner", map[string]any{"email": "shared@example.com"}))
	viaGoogle := h.exchangeOK("google", h.idToken("g-owner", map[string]any{"email": "shared@example.com"}))
	if viaCorp.User.ID != owner.User.ID || viaGoogle.User.ID != owner.User.ID || *viaCorp.Created {
		t.Fatalf("identities sign in to different users: %s %s %s", owner.User.ID, viaCorp.User.ID, viaGoogle.User.ID)
	}
	if n, _ := h.store.CountUsers(context.Background()); n != 1 {
		t.Fatalf("%d users, want 1", n)
	}
	if got := h.auditTypes(); countOf(got, "identity.linked") != 1 || countOf(got, "user.created") != 1 {
		t.Fatalf("audit trail: %v", got)
	}

	// Posting the same token again is idempotent: 200, nothing written.
	before := h.snapshot()
	res = h.postJSON("/v1/me/identities", map[string]any{"link_token": linkToken}, bearer(owner.AccessToken)...)
	if res.status != http.StatusOK || res.json(t)["linked"] != false {
		t.Fatalf("second link: %d %s", res.status, res.body)
	}
	h.assertUnchanged(before)
}

func TestLinkWithFreshCredential(t *testing.T) {
	h := newHarness(t)
	u := h.exchangeOK("corp", h.idToken("fresh-a", nil))
	res := h.postJSON("/v1/me/identities", map[string]any{
		"provider": "google", "id_token": h.idToken("fresh-b", map[string]any{"email": "other@example.com"}),
	}, bearer(u.AccessToken)...)
	if res.status != http.StatusCreated {
		t.Fatalf("link: %d %s", res.status, res.body)
	}
	again := h.exchangeOK("google", h.idToken("fresh-b", map[string]any{"email": "other@example.com"}))
	if again.User.ID != u.User.ID || *again.Created {
		t.Fatalf("linked identity signs in elsewhere: %+v", again)
	}
}

func TestLinkRefusals(t *testing.T) {
	h := newHarness(t)
	a := h.exchangeOK("corp", h.idToken("ref-a", nil))
	b := h.exchangeOK("corp", h.idToken("ref-b", nil))
	lt := h.linkTokenFor("ref-new", "ref-a@example.com")

	tampered := lt[:len(lt)-4] + "AAAA"
	if tampered == lt {
		tampered = lt[:len(lt)-4] + "BBBB"
	}
	cases := []struct {
		name   string
		body   any
		auth   []string
		status int
		code   string
		reason string
	}{
		{"no bearer", map[string]any{"link_token": lt}, nil, 401, "invalid_token", "missing_token"},
		{"link_token of another account", map[string]any{"link_token": lt}, bearer(b.AccessToken), 403, "access_denied", "link_token_wrong_account"},
		{"identity of another user", map[string]any{"provider": "corp", "id_token": h.idToken("ref-a", nil)},
			bearer(b.AccessToken), 409, "identity_in_use", "identity_in_use"},
		{"tampered link_token", map[string]any{"link_token": tampered}, bearer(a.AccessToken), 400, "invalid_grant", "signature"},
		{"not a link_token", map[string]any{"link_token": a.AccessToken}, bearer(a.AccessToken), 400, "invalid_grant", "malformed"},
		{"garbage link_token", map[string]any{"link_token": "x.y.z"}, bearer(a.AccessToken), 400, "invalid_grant", "malformed"},
		{"both", map[string]any{"link_token": lt, "provider": "corp", "id_token": h.idToken("zz", nil)},
			bearer(a.AccessToken), 400, "invalid_request", "conflicting_credentials"},
		{"nothing", map[string]any{}, bearer(a.AccessToken), 400, "invalid_request", "missing_credential"},
		{"provider without credential", map[string]any{"provider": "corp"}, bearer(a.AccessToken), 400, "invalid_request", "missing_credential"},
		{"unknown provider", map[string]any{"provider": "nope", "id_token": "x"}, bearer(a.AccessToken), 400, "unsupported_provider", "unknown_provider"},
		{"bad provider token", map[string]any{"provider": "corp", "id_token": h.idToken("zz", map[string]any{"aud": "someone-else"})},
			bearer(a.AccessToken), 401, "invalid_token", "audience_mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot()
			res := h.postJSON("/v1/me/identities", tc.body, tc.auth...)
			assertError(t, res, tc.status, tc.code, tc.reason)
			h.assertUnchanged(before)
			if tc.auth != nil && strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("a refused provider credential blamed the Bearer token: %q", res.header.Get("WWW-Authenticate"))
			}
		})
	}

	// An expired link_token (10 minutes) is refused.
	h.clock.Advance(11 * time.Minute)
	before := h.snapshot()
	assertError(t, h.postJSON("/v1/me/identities", map[string]any{"link_token": lt}, bearer(a.AccessToken)...),
		400, "invalid_grant", "expired")
	h.assertUnchanged(before)
}

func TestLinkTokenOfIdentityTakenMeanwhile(t *testing.T) {
	h := newHarness(t)
	owner := h.exchangeOK("google", h.idToken("race-owner", map[string]any{"email": "race@example.com"}))
	lt := h.linkTokenFor("race-new", "race@example.com")
	// Someone else links the identity first, with a fresh credential.
	other := h.exchangeOK("google", h.idToken("race-other", map[string]any{"email": "elsewhere@example.com"}))
	res := h.postJSON("/v1/me/identities", map[string]any{"provider": "corp",
		"id_token": h.idToken("race-new", map[string]any{"email": "race@example.com"})}, bearer(other.AccessToken)...)
	if res.status != http.StatusCreated {
		t.Fatalf("link: %d %s", res.status, res.body)
	}
	before := h.snapshot()
	assertError(t, h.postJSON("/v1/me/identities", map[string]any{"link_token": lt}, bearer(owner.AccessToken)...),
		409, "identity_in_use", "identity_in_use")
	h.assertUnchanged(before)
}

func TestUnlink(t *testing.T) {
	h := newHarness(t)
	u := h.exchangeOK("corp", h.idToken("un-a", nil))
	first := u.User.Identities[0].ID
	other := h.exchangeOK("corp", h.idToken("un-other", nil))

	// The last way to sign in is never removed.
	before := h.snapshot()
	assertError(t, h.del("/v1/me/identities/"+first, u.AccessToken), 409, "conflict", "last_identity")
	h.assertUnchanged(before)

	// Someone else's identity, or none at all: 404, nothing written.
	assertError(t, h.del("/v1/me/identities/"+other.User.Identities[0].ID, u.AccessToken), 404, "not_found", "not_found")
	assertError(t, h.del("/v1/me/identities/no-such-id", u.AccessToken), 404, "not_found", "not_found")
	assertError(t, h.do(http.MethodDelete, "/v1/me/identities/"+first, "", nil), 401, "invalid_token", "missing_token")
	h.assertUnchanged(before)

	// With a second identity, the first can go.
	res := h.postJSON("/v1/me/identities", map[string]any{"provider": "google",
		"id_token": h.idToken("un-b", map[string]any{"email": "un-b@example.com"})}, bearer(u.AccessToken)...)
	if res.status != http.StatusCreated {
		t.Fatalf("link: %d %s", res.status, res.body)
	}
	if res := h.del("/v1/me/identities/"+first, u.AccessToken); res.status != http.StatusNoContent {
		t.Fatalf("unlink: %d %s", res.status, res.body)
	}
	idents, _ := h.store.ListIdentities(context.Background(), u.User.ID)
	if len(idents) != 1 || idents[0].Subject != "un-b" {
		t.Fatalf("identities after unlink: %+v", idents)
	}
	if got := h.auditTypes(); countOf(got, "identity.unlinked") != 1 || countOf(got, "identity.linked") != 1 {
		t.Fatalf("audit trail: %v", got)
	}
	// And now the remaining one is the last.
	before = h.snapshot()
	assertError(t, h.del("/v1/me/identities/"+idents[0].ID, u.AccessToken), 409, "conflict", "last_identity")
	h.assertUnchanged(before)
}

func TestUnlinkPasswordCountsAsSignInMethod(t *testing.T) {
	h := newHarness(t)
	u := h.exchangeOK("corp", h.idToken("pw-a", nil))
	user, err := h.store.GetUser(context.Background(), u.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	user.PasswordHash = "$argon2id$v=19$m=65536,t=1,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
	if err := h.store.UpdateUser(context.Background(), user); err != nil {
		t.Fatal(err)
	}
	if res := h.del("/v1/me/identities/"+u.User.Identities[0].ID, u.AccessToken); res.status != http.StatusNoContent {
		t.Fatalf("unlink with a password left: %d %s", res.status, res.body)
	}
}

func TestConcurrentUnlinkKeepsOneWayIn(t *testing.T) {
	h := newHarness(t)
	u := h.exchangeOK("corp", h.idToken("cc-a", nil))
	res := h.postJSON("/v1/me/identities", map[string]any{"provider": "google",
		"id_token": h.idToken("cc-b", map[string]any{"email": "cc-b@example.com"})}, bearer(u.AccessToken)...)
	if res.status != http.StatusCreated {
		t.Fatalf("link: %d %s", res.status, res.body)
	}
	idents, _ := h.store.ListIdentities(context.Background(), u.User.ID)
	statuses := make(chan int, len(idents))
	for _, id := range idents {
		go func() {
			statuses <- h.statusOf(http.MethodDelete, "/v1/me/identities/"+id.ID, u.AccessToken, nil)
		}()
	}
	got := map[int]int{}
	for range idents {
		got[<-statuses]++
	}
	if got[http.StatusNoContent] != 1 || got[http.StatusConflict] != 1 {
		t.Fatalf("statuses %v, want one 204 and one 409", got)
	}
	if left, _ := h.store.ListIdentities(context.Background(), u.User.ID); len(left) != 1 {
		t.Fatalf("%d identities left, want 1", len(left))
	}
}

func TestConcurrentLinkOfOneIdentity(t *testing.T) {
	h := newHarness(t)
	const n = 8
	users := make([]tokens, n)
	for i := range users {
		users[i] = h.exchangeOK("google", h.idToken(fmt.Sprintf("cl-%d", i), nil))
	}
	statuses := make(chan int, n)
	for _, u := range users {
		// A token of its own for each: one identity, n sign-ins at the provider.
		idToken := h.idToken("cl-contested", map[string]any{"email": "contested@example.com"})
		body, _ := json.Marshal(map[string]any{"provider": "corp", "id_token": idToken})
		go func() {
			statuses <- h.statusOf(http.MethodPost, "/v1/me/identities", u.AccessToken, body)
		}()
	}
	got := map[int]int{}
	for range users {
		got[<-statuses]++
	}
	if got[http.StatusCreated] != 1 || got[http.StatusConflict] != n-1 {
		t.Fatalf("statuses %v, want one 201 and %d 409", got, n-1)
	}
	if got := h.auditTypes(); countOf(got, "identity.linked") != 1 {
		t.Fatalf("audit: %v", got)
	}
}

// statusOf sends one request with the bearer token and a JSON body, if any,
// and returns the status, 0 when the request failed. Unlike h.do it never
// calls Fatal, so goroutines may use it.
func (h *harness) statusOf(method, path, bearer string, body []byte) int {
	req, err := http.NewRequest(method, h.url+path, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}
