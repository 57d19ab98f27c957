package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
)

const adminToken = "test-admin-token-0123456789abcdef"

func withAdmin(tokens ...string) harnessOption {
	return func(c *harnessConfig) { c.web.AdminTokens = tokens }
}

func (h *harness) admin(method, path string, body any) response {
	h.t.Helper()
	if body == nil {
		return h.do(method, path, "", nil, "Authorization", "Bearer "+adminToken)
	}
	b, err := json.Marshal(body)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(method, path, "application/json", b, "Authorization", "Bearer "+adminToken)
}

func (h *harness) adminOK(method, path string, body any) map[string]any {
	h.t.Helper()
	res := h.admin(method, path, body)
	if res.status != http.StatusOK {
		h.t.Fatalf("%s %s: %d %s", method, path, res.status, res.body)
	}
	return res.json(h.t)
}

// adminEndpoints is every admin route with a request that is valid once
// authenticated (ids that do not exist are fine: the point is the guard).
var adminEndpoints = []struct {
	method, path string
	body         any
}{
	{"GET", "/admin/v1/users", nil},
	{"GET", "/admin/v1/users/u1", nil},
	{"POST", "/admin/v1/users/u1/disable", nil},
	{"POST", "/admin/v1/users/u1/enable", nil},
	{"DELETE", "/admin/v1/users/u1", nil},
	{"PUT", "/admin/v1/users/u1/roles", map[string]any{"roles": []string{"x"}}},
	{"GET", "/admin/v1/users/u1/sessions", nil},
	{"DELETE", "/admin/v1/users/u1/sessions", nil},
	{"DELETE", "/admin/v1/sessions/s1", nil},
	{"GET", "/admin/v1/keys", nil},
	{"POST", "/admin/v1/keys/rotate", nil},
	{"POST", "/admin/v1/keys/k1/revoke", nil},
	{"GET", "/admin/v1/secrets/refresh", nil},
	{"POST", "/admin/v1/secrets/refresh/rotate", nil},
	{"POST", "/admin/v1/secrets/refresh/r1/retire", nil},
	{"GET", "/admin/v1/audit", nil},
	{"GET", "/admin/v1/backup", nil},
}

func TestAdminRequiresToken(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken, "second-admin-token-fedcba9876543210"))
	h.exchangeOK("corp", h.idToken("guarded", nil))
	before := h.snapshot()
	keysBefore, _ := h.store.ListSigningKeys(context.Background())
	for _, ep := range adminEndpoints {
		t.Run(ep.method+" "+ep.path, func(t *testing.T) {
			var body []byte
			if ep.body != nil {
				body, _ = json.Marshal(ep.body)
			}
			for _, tc := range []struct {
				name, header, reason string
			}{
				{"no header", "", "missing_token"},
				{"empty bearer", "Bearer ", "missing_token"},
				{"wrong token", "Bearer " + adminToken + "x", "admin_token"},
				{"prefix of a token", "Bearer " + adminToken[:20], "admin_token"},
				{"basic auth", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+adminToken)), "missing_token"},
			} {
				var res response
				if tc.header == "" {
					res = h.do(ep.method, ep.path, "application/json", body)
				} else {
					res = h.do(ep.method, ep.path, "application/json", body, "Authorization", tc.header)
				}
				assertError(t, res, http.StatusUnauthorized, "invalid_token", tc.reason)
				if !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s: no WWW-Authenticate: %v", tc.name, res.header)
				}
			}
		})
	}
	h.assertUnchanged(before)
	keysAfter, _ := h.store.ListSigningKeys(context.Background())
	if len(keysAfter) != len(keysBefore) {
		t.Fatalf("a refused rotate wrote a key")
	}
	// Both configured tokens are accepted.
	for _, tok := range []string{adminToken, "second-admin-token-fedcba9876543210"} {
		res := h.do("GET", "/admin/v1/users", "", nil, "Authorization", "Bearer "+tok)
		if res.status != http.StatusOK {
			t.Fatalf("valid token refused: %d %s", res.status, res.body)
		}
	}
}

func TestAdminDisabledWithoutTokens(t *testing.T) {
	h := newHarness(t)
	res := h.do("GET", "/admin/v1/users", "", nil, "Authorization", "Bearer "+adminToken)
	assertError(t, res, http.StatusUnauthorized, "invalid_token", "admin_disabled")
}

func TestAdminEndpointsWithToken(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken))
	tk := h.exchangeOK("corp", h.idToken("present", nil))
	secretID := "" // the refresh secret the rotate endpoint made, for retire
	for _, ep := range adminEndpoints {
		path := strings.ReplaceAll(strings.ReplaceAll(ep.path, "u1", tk.User.ID), "s1", tk.SessionID)
		path = strings.Replace(path, "/keys/k1/", "/keys/"+kidOf(t, tk.AccessToken)+"/", 1)
		path = strings.Replace(path, "/refresh/r1/", "/refresh/"+secretID+"/", 1)
		if ep.method == "DELETE" && path == "/admin/v1/users/"+tk.User.ID {
			continue // last, below
		}
		res := h.admin(ep.method, path, ep.body)
		if res.status != http.StatusOK {
			t.Errorf("%s %s: %d %s", ep.method, path, res.status, res.body)
		}
		if strings.HasSuffix(path, "/secrets/refresh/rotate") {
			secretID, _ = res.json(t)["secret"].(map[string]any)["id"].(string)
		}
	}
	h.adminOK("DELETE", "/admin/v1/users/"+tk.User.ID, nil)
	// Unknown ids: 404 not_found in the one error shape, and nothing written.
	before := h.snapshot()
	defer h.assertUnchanged(before)
	for _, ep := range adminEndpoints {
		if !strings.Contains(ep.path, "/u1") && !strings.Contains(ep.path, "/s1") {
			continue
		}
		res := h.admin(ep.method, ep.path, ep.body)
		assertError(t, res, http.StatusNotFound, "not_found", "not_found")
	}
}

func TestAdminListAndSearchUsers(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken))
	ids := map[string]string{}
	for _, sub := range []string{"ann", "bob", "cat"} {
		ids[sub] = h.exchangeOK("corp", h.idToken(sub, nil)).User.ID
	}
	h.exchangeOK("google", h.idToken("dan", map[string]any{"iss": h.iss.URL()}))

	page1 := h.adminOK("GET", "/admin/v1/users?limit=2", nil)
	users1 := page1["users"].([]any)
	if len(users1) != 2 || page1["next_after"] == nil {
		t.Fatalf("page 1: %v", page1)
	}
	page2 := h.adminOK("GET", "/admin/v1/users?limit=2&after="+url.QueryEscape(page1["next_after"].(string)), nil)
	users2 := page2["users"].([]any)
	if len(users2) != 2 {
		t.Fatalf("page 2: %v", page2)
	}
	seen := map[string]bool{}
	for _, u := range append(users1, users2...) {
		seen[u.(map[string]any)["id"].(string)] = true
	}
	if len(seen) != 4 {
		t.Fatalf("paging lost or repeated users: %v", seen)
	}
	page3 := h.adminOK("GET", "/admin/v1/users?limit=2&after="+url.QueryEscape(page2["next_after"].(string)), nil)
	if len(page3["users"].([]any)) != 0 {
		t.Fatalf("page 3: %v", page3)
	}

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"email=BOB@example.com", []string{ids["bob"]}},
		{"provider=corp&subject=cat", []string{ids["cat"]}},
		{"subject=ann", []string{ids["ann"]}},
		{"provider=google", nil},
		{"email=nobody@example.com", []string{}},
	} {
		res := h.adminOK("GET", "/admin/v1/users?"+tc.query, nil)
		var got []string
		for _, u := range res["users"].([]any) {
			got = append(got, u.(map[string]any)["id"].(string))
		}
		if tc.want == nil {
			if len(got) != 1 {
				t.Errorf("%s: %v", tc.query, got)
			}
			continue
		}
		if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
			t.Errorf("%s: got %v want %v", tc.query, got, tc.want)
		}
	}
	for _, q := range []string{"limit=0x", "limit=-1", "limit=1001"} {
		assertError(t, h.admin("GET", "/admin/v1/users?"+q, nil), http.StatusBadRequest, "invalid_request", "invalid_limit")
	}

	u := h.adminOK("GET", "/admin/v1/users/"+ids["ann"], nil)
	idents := u["identities"].([]any)
	if u["email"] != "ann@example.com" || len(idents) != 1 || idents[0].(map[string]any)["subject"] != "ann" ||
		idents[0].(map[string]any)["issuer"] != h.iss.URL() || u["disabled"] != false {
		t.Fatalf("get user: %v", u)
	}
}

func TestAdminDisableRevokesEverySessionAtOnce(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken))
	a := h.exchangeOK("corp", h.idToken("eve", nil))
	b := h.exchangeOK("corp", h.idToken("eve", nil))
	other := h.exchangeOK("corp", h.idToken("frank", nil))

	res := h.adminOK("POST", "/admin/v1/users/"+a.User.ID+"/disable", nil)
	if res["revoked_sessions"] != float64(2) || res["user"].(map[string]any)["disabled"] != true {
		t.Fatalf("disable: %v", res)
	}
	// Revoked at once: neither the refresh token nor the access token works.
	for _, tk := range []tokens{a, b} {
		assertError(t, h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": tk.RefreshToken}),
			http.StatusBadRequest, "invalid_grant", "revoked")
		assertError(t, h.get("/v1/me", tk.AccessToken), http.StatusUnauthorized, "invalid_token", "revoked")
	}
	sessions, _ := h.store.ListSessions(context.Background(), a.User.ID)
	for _, s := range sessions {
		if !s.Revoked() || s.RevokedReason != "user_disabled" {
			t.Fatalf("session not revoked by disable: %+v", s)
		}
	}
	res2 := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("eve", nil)})
	assertError(t, res2, http.StatusForbidden, "access_denied", "user_disabled")
	// The other user is untouched.
	if r := h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": other.RefreshToken}); r.status != http.StatusOK {
		t.Fatalf("another user's session suffered: %d %s", r.status, r.body)
	}

	res = h.adminOK("POST", "/admin/v1/users/"+a.User.ID+"/enable", nil)
	if res["user"].(map[string]any)["disabled"] != false {
		t.Fatalf("enable: %v", res)
	}
	h.exchangeOK("corp", h.idToken("eve", nil))
	// Revoked sessions stay revoked after enabling.
	assertError(t, h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": a.RefreshToken}),
		http.StatusBadRequest, "invalid_grant", "revoked")

	events := h.adminOK("GET", "/admin/v1/audit?user_id="+a.User.ID, nil)["events"].([]any)
	var types []string
	for _, e := range events {
		types = append(types, e.(map[string]any)["type"].(string))
	}
	if !slices.Contains(types, "user.disabled") || !slices.Contains(types, "user.enabled") {
		t.Fatalf("audit lacks disable/enable: %v", types)
	}
	for _, e := range events {
		if d := e.(map[string]any)["detail"]; d != nil && strings.Contains(d.(string), adminToken) {
			t.Fatal("audit detail carries the admin token")
		}
	}
}

func claimsOf(t testing.TB, token string) map[string]any {
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

func TestAdminRolesReachTheAccessToken(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken))
	tk := h.exchangeOK("corp", h.idToken("gina", nil))
	if r := claimsOf(t, tk.AccessToken)["roles"].([]any); len(r) != 0 {
		t.Fatalf("roles before: %v", r)
	}
	before := h.snapshot()
	for _, bad := range []any{
		map[string]any{"roles": []string{"has space"}},
		map[string]any{"roles": []string{""}},
		map[string]any{"roles": []string{strings.Repeat("r", 65)}},
		map[string]any{"roles": "admin"},
	} {
		res := h.admin("PUT", "/admin/v1/users/"+tk.User.ID+"/roles", bad)
		if res.status != http.StatusBadRequest {
			t.Fatalf("bad roles %v: %d %s", bad, res.status, res.body)
		}
	}
	assertError(t, h.admin("PUT", "/admin/v1/users/"+tk.User.ID+"/roles", map[string]any{}), http.StatusBadRequest, "invalid_request", "missing_roles")
	assertError(t, h.admin("PUT", "/admin/v1/users/"+tk.User.ID+"/roles", map[string]any{"roles": []string{"a b"}}), http.StatusBadRequest, "invalid_request", "invalid_roles")
	h.assertUnchanged(before)

	u := h.adminOK("PUT", "/admin/v1/users/"+tk.User.ID+"/roles", map[string]any{"roles": []string{"staff", "admin", "staff"}})
	if fmt.Sprint(u["roles"]) != "[admin staff]" {
		t.Fatalf("roles: %v", u["roles"])
	}
	h.clock.Advance(time.Second) // a new generation at a new second: a new token
	r := decodeTokens(t, h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": tk.RefreshToken}))
	if got := fmt.Sprint(claimsOf(t, r.AccessToken)["roles"]); got != "[admin staff]" {
		t.Fatalf("roles claim after refresh: %s", got)
	}
	if fmt.Sprint(r.User.Roles) != "[admin staff]" {
		t.Fatalf("user.roles in answer: %v", r.User.Roles)
	}
	h.adminOK("PUT", "/admin/v1/users/"+tk.User.ID+"/roles", map[string]any{"roles": []string{}})
	if u, _ := h.store.GetUser(context.Background(), tk.User.ID); len(u.Roles) != 0 {
		t.Fatalf("roles not cleared: %v", u.Roles)
	}
}

func TestAdminDeleteUserErasesEverything(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken))
	tk := h.exchangeOK("corp", h.idToken("hank", nil))
	h.adminOK("DELETE", "/admin/v1/users/"+tk.User.ID, nil)
	ctx := context.Background()
	if _, err := h.store.GetUser(ctx, tk.User.ID); err == nil {
		t.Fatal("user still there")
	}
	if _, err := h.store.GetUserByVerifiedEmail(ctx, "hank@example.com"); err == nil {
		t.Fatal("email index still there")
	}
	if _, err := h.store.GetIdentity(ctx, h.iss.URL(), "hank"); err == nil {
		t.Fatal("identity still there")
	}
	if _, err := h.store.GetSession(ctx, tk.SessionID); err == nil {
		t.Fatal("session still there")
	}
	assertError(t, h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": tk.RefreshToken}),
		http.StatusBadRequest, "invalid_grant", "revoked")
	again := h.exchangeOK("corp", h.idToken("hank", nil))
	if again.Created == nil || !*again.Created || again.User.ID == tk.User.ID {
		t.Fatalf("sign-in after delete did not create a new user: %+v", again)
	}
	ev := h.adminOK("GET", "/admin/v1/audit?type=user.deleted", nil)["events"].([]any)
	if len(ev) != 1 || ev[0].(map[string]any)["user_id"] != tk.User.ID {
		t.Fatalf("audit: %v", ev)
	}
}

func TestAdminSessions(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken))
	a := h.exchangeOK("corp", h.idToken("ivy", nil))
	b := h.exchangeOK("corp", h.idToken("ivy", nil))
	c := h.exchangeOK("corp", h.idToken("ivy", nil))
	list := h.adminOK("GET", "/admin/v1/users/"+a.User.ID+"/sessions", nil)["sessions"].([]any)
	if len(list) != 3 {
		t.Fatalf("sessions: %v", list)
	}
	for _, s := range list {
		if s.(map[string]any)["active"] != true || s.(map[string]any)["ip"] != "127.0.0.1" {
			t.Fatalf("session: %v", s)
		}
	}
	h.adminOK("DELETE", "/admin/v1/sessions/"+a.SessionID, nil)
	assertError(t, h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": a.RefreshToken}),
		http.StatusBadRequest, "invalid_grant", "revoked")
	if r := h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": b.RefreshToken}); r.status != http.StatusOK {
		t.Fatalf("revoking one session hit another: %d %s", r.status, r.body)
	}
	res := h.adminOK("DELETE", "/admin/v1/users/"+a.User.ID+"/sessions", nil)
	if res["revoked"] != float64(2) {
		t.Fatalf("revoke all: %v", res)
	}
	assertError(t, h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": c.RefreshToken}),
		http.StatusBadRequest, "invalid_grant", "revoked")
	list = h.adminOK("GET", "/admin/v1/users/"+a.User.ID+"/sessions", nil)["sessions"].([]any)
	for _, s := range list {
		if s.(map[string]any)["active"] != false || s.(map[string]any)["revoked_reason"] != "admin" {
			t.Fatalf("after revoke all: %v", s)
		}
	}
	ev := h.adminOK("GET", "/admin/v1/audit?user_id="+a.User.ID, nil)["events"].([]any)
	var types []string
	for _, e := range ev {
		types = append(types, e.(map[string]any)["type"].(string))
	}
	if !slices.Contains(types, "session.revoked") || !slices.Contains(types, "session.revoked_all") {
		t.Fatalf("audit: %v", types)
	}
}

func TestAdminAuditFilters(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken))
	a := h.exchangeOK("corp", h.idToken("jon", nil))
	h.exchangeOK("corp", h.idToken("kim", nil))
	all := h.adminOK("GET", "/admin/v1/audit", nil)["events"].([]any)
	if len(all) != 2 {
		t.Fatalf("events: %v", all)
	}
	byUser := h.adminOK("GET", "/admin/v1/audit?user_id="+a.User.ID, nil)["events"].([]any)
	if len(byUser) != 1 || byUser[0].(map[string]any)["type"] != "user.created" {
		t.Fatalf("by user: %v", byUser)
	}
	future := url.QueryEscape(h.clock.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	past := url.QueryEscape(h.clock.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	if ev := h.adminOK("GET", "/admin/v1/audit?since="+future, nil)["events"].([]any); len(ev) != 0 {
		t.Fatalf("since future: %v", ev)
	}
	if ev := h.adminOK("GET", "/admin/v1/audit?since="+past+"&until="+future+"&type=user.created", nil)["events"].([]any); len(ev) != 2 {
		t.Fatalf("window: %v", ev)
	}
	if ev := h.adminOK("GET", "/admin/v1/audit?limit=1", nil)["events"].([]any); len(ev) != 1 {
		t.Fatalf("limit: %v", ev)
	}
	assertError(t, h.admin("GET", "/admin/v1/audit?since=yesterday", nil), http.StatusBadRequest, "invalid_request", "invalid_time")
	assertError(t, h.admin("GET", "/admin/v1/audit?since="+future+"&until="+past, nil), http.StatusBadRequest, "invalid_request", "invalid_range")
}

// TestKeyRotationSignsNobodyOut walks a rotation on the harness clock: the
// new key is published at once and signs only after the publish delay; a
// token signed before verifies throughout; the old key leaves the JWKS
// when its last token has expired; the session refreshes all along.
func TestKeyRotationSignsNobodyOut(t *testing.T) {
	const delay = time.Minute
	h := newHarness(t, withAdmin(adminToken), func(c *harnessConfig) {
		c.exchange.KeyPublishDelay = delay
		c.exchange.AccessTTL = 5 * time.Minute
	})
	tk := h.exchangeOK("corp", h.idToken("lea", nil))
	oldKid := kidOf(t, tk.AccessToken)
	if kids := jwksKids(t, h); !slices.Equal(kids, []string{oldKid}) {
		t.Fatalf("JWKS before: %v", kids)
	}

	rotated := h.adminOK("POST", "/admin/v1/keys/rotate", nil)["key"].(map[string]any)
	newKid := rotated["id"].(string)
	if rotated["state"] != "pending" || newKid == oldKid {
		t.Fatalf("rotated key: %v", rotated)
	}
	// Published at once, before it signs.
	if kids := jwksKids(t, h); !slices.Contains(kids, newKid) || !slices.Contains(kids, oldKid) {
		t.Fatalf("JWKS right after rotation: %v", kids)
	}
	verifyAgainstJWKS(t, h, tk.AccessToken)
	h.clock.Advance(delay / 2)
	r1 := h.refreshOK(tk.RefreshToken)
	if kidOf(t, r1.AccessToken) != oldKid {
		t.Fatal("the new key signed before its publish delay")
	}
	keys := h.adminOK("GET", "/admin/v1/keys", nil)["keys"].([]any)
	states := map[string]string{}
	for _, k := range keys {
		states[k.(map[string]any)["id"].(string)] = k.(map[string]any)["state"].(string)
	}
	if states[oldKid] != "active" || states[newKid] != "pending" {
		t.Fatalf("states during the delay: %v", states)
	}

	h.clock.Advance(delay/2 + time.Second)
	r2 := h.refreshOK(r1.RefreshToken)
	if kidOf(t, r2.AccessToken) != newKid {
		t.Fatal("the new key does not sign after the delay")
	}
	verifyAgainstJWKS(t, h, r1.AccessToken) // signed by the old key, still valid
	verifyAgainstJWKS(t, h, r2.AccessToken)
	if r := h.get("/v1/me", r1.AccessToken); r.status != http.StatusOK {
		t.Fatalf("old-key token refused during the overlap: %d %s", r.status, r.body)
	}

	// The old key's last token (r1, issued at delay/2) expires at
	// delay/2+5m; the key stays until retirement + access_ttl + leeway.
	h.clock.Advance(5*time.Minute + 10*time.Second)
	if kids := jwksKids(t, h); slices.Contains(kids, oldKid) || !slices.Contains(kids, newKid) {
		t.Fatalf("JWKS after expiry: %v", kids)
	}
	r3 := h.refreshOK(r2.RefreshToken)
	if kidOf(t, r3.AccessToken) != newKid {
		t.Fatal("wrong key after expiry")
	}
	if r := h.get("/v1/me", r3.AccessToken); r.status != http.StatusOK {
		t.Fatalf("signed out after rotation: %d %s", r.status, r.body)
	}
	if ev := h.adminOK("GET", "/admin/v1/audit?type=key.rotated", nil)["events"].([]any); len(ev) != 1 {
		t.Fatalf("audit: %v", ev)
	}
}

func (h *harness) refreshOK(rt string) tokens {
	h.t.Helper()
	res := h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": rt})
	if res.status != http.StatusOK {
		h.t.Fatalf("refresh: %d %s", res.status, res.body)
	}
	return decodeTokens(h.t, res)
}

func kidOf(t testing.TB, token string) string {
	t.Helper()
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	var hdr struct{ Kid string }
	if err := json.Unmarshal(raw, &hdr); err != nil {
		t.Fatal(err)
	}
	return hdr.Kid
}

func jwksKids(t testing.TB, h *harness) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(h.get("/.well-known/jwks.json", "").body, &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	return kids
}

// verifyAgainstJWKS checks a token's signature the way an API would: against
// the published JWKS, by kid.
func verifyAgainstJWKS(t testing.TB, h *harness, token string) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(h.get("/.well-known/jwks.json", "").body, &set); err != nil {
		t.Fatal(err)
	}
	sig, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(sig.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %s not in the JWKS", sig.Signatures[0].Header.KeyID)
	}
	if _, err := sig.Verify(keys[0].Key); err != nil {
		t.Fatalf("signature does not verify against the JWKS: %v", err)
	}
}

func TestAdminBackupStreamsAConsistentCopy(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken))
	tk := h.exchangeOK("corp", h.idToken("max", nil))
	res := h.admin("GET", "/admin/v1/backup", nil)
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/octet-stream" ||
		!strings.Contains(res.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("backup: %d %v", res.status, res.header)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, res.body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := bolt.Verify(path); err != nil {
		t.Fatal(err)
	}
	copyStore, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer copyStore.Close()
	if _, err := copyStore.GetSession(context.Background(), tk.SessionID); err != nil {
		t.Fatalf("session missing from the copy: %v", err)
	}
	if ev := h.adminOK("GET", "/admin/v1/audit?type=store.backup", nil)["events"].([]any); len(ev) != 1 {
		t.Fatalf("audit: %v", ev)
	}
}

// bareStore hides the backend's capabilities, as a store without a hot
// backup (PostgreSQL) has none.
type bareStore struct{ storage.Store }

func TestAdminBackupUnsupported(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken), func(c *harnessConfig) {
		c.wrap = func(s storage.Store) storage.Store { return bareStore{s} }
	})
	res := h.admin("GET", "/admin/v1/backup", nil)
	assertError(t, res, http.StatusNotImplemented, "not_implemented", "backup_unsupported")
	if !strings.Contains(string(res.body), "pg_dump") {
		t.Fatalf("no pg_dump hint: %s", res.body)
	}
}

func TestAdminSeparateListener(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken), func(c *harnessConfig) { c.web.AdminSeparate = true; c.metrics = true })
	for _, p := range []string{"/admin/v1/users", "/metrics"} {
		res := h.do("GET", p, "", nil, "Authorization", "Bearer "+adminToken)
		if res.status != http.StatusNotFound {
			t.Fatalf("%s on the public listener with admin_listen set: %d", p, res.status)
		}
	}
}

// TestAutomaticKeyRotation runs the key maintenance loop on the harness
// clock: when the newest key is older than tokens.key_rotation, it rotates;
// a day after a key left the JWKS, it deletes it.
func TestAutomaticKeyRotation(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken), func(c *harnessConfig) {
		c.exchange.KeyRotation = time.Hour
		c.exchange.KeyPublishDelay = time.Minute
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.svc.MaintainKeys(ctx, 5*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()

	waitKeys := func(what string, ok func([]storage.SigningKey) bool) []storage.SigningKey {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			keys, err := h.store.ListSigningKeys(ctx)
			if err == nil && ok(keys) {
				return keys
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d keys", what, len(keys))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(50 * time.Millisecond)
	first := waitKeys("start", func(k []storage.SigningKey) bool { return len(k) == 1 })[0]
	h.clock.Advance(time.Hour)
	keys := waitKeys("automatic rotation", func(k []storage.SigningKey) bool { return len(k) == 2 && !k[0].RetiredAt.IsZero() })
	if !keys[0].RetiredAt.Equal(keys[1].NotBefore) || !keys[0].ExpiresAt.Equal(keys[1].NotBefore.Add(h.cfg.AccessTTL+5*time.Second)) {
		t.Fatalf("old key's times: %+v", keys[0])
	}
	time.Sleep(50 * time.Millisecond) // further ticks: the new key is young, no more rotations
	if keys, _ := h.store.ListSigningKeys(ctx); len(keys) != 2 {
		t.Fatalf("rotated again: %d keys", len(keys))
	}
	ev := h.adminOK("GET", "/admin/v1/audit?type=key.rotated", nil)["events"].([]any)
	if len(ev) != 1 || !strings.Contains(ev[0].(map[string]any)["detail"].(string), "automatic") {
		t.Fatalf("audit: %v", ev)
	}
	// A day after the first key left the JWKS it is deleted (and, the
	// newest key being 25h old by then, another rotation happens).
	h.clock.Advance(25 * time.Hour)
	waitKeys("pruning", func(k []storage.SigningKey) bool {
		for _, x := range k {
			if x.ID == first.ID {
				return false
			}
		}
		return len(k) == 2
	})
}

// TestLinkTokenSurvivesKeyRotation: a link_token outlives the access tokens
// of the key that signed it; a rotation in between must not send the user
// back to sign in again, yet the retired key leaves the JWKS on time.
func TestLinkTokenSurvivesKeyRotation(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken), func(c *harnessConfig) {
		c.exchange.AccessTTL = time.Minute
	})
	owner := h.exchangeOK("google", h.idToken("rot-owner", map[string]any{"email": "rot@example.com"}))
	lt := h.linkTokenFor("rot-new", "rot@example.com")
	oldKid := kidOf(t, owner.AccessToken)

	h.adminOK("POST", "/admin/v1/keys/rotate", nil)
	h.clock.Advance(time.Minute + 10*time.Second)
	if kids := jwksKids(t, h); slices.Contains(kids, oldKid) {
		t.Fatalf("retired key still published: %v", kids)
	}
	fresh := h.refreshOK(owner.RefreshToken)
	res := h.postJSON("/v1/me/identities", map[string]any{"link_token": lt}, bearer(fresh.AccessToken)...)
	if res.status != http.StatusCreated {
		t.Fatalf("link_token signed before the rotation: %d %s", res.status, res.body)
	}
}

// TestAccessTokenOfUnpublishedKeyRefused: once a key has left the JWKS, an
// API verifying offline refuses its tokens; /v1/me and introspection must
// refuse them too, even a token this process verified (and cached) before,
// although the key still verifies our own link_tokens for a while.
func TestAccessTokenOfUnpublishedKeyRefused(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) { c.exchange.AccessTTL = time.Hour })
	tk := h.exchangeOK("corp", h.idToken("unpub", nil))
	if res := h.get("/v1/me", tk.AccessToken); res.status != http.StatusOK {
		t.Fatalf("/v1/me: %d %s", res.status, res.body)
	}
	ctx := context.Background()
	kid := kidOf(t, tk.AccessToken)
	if _, err := h.svc.Keys().Create(ctx, 0); err != nil {
		t.Fatal(err)
	}
	keys, err := h.store.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.ID == kid {
			k.RetiredAt, k.ExpiresAt = h.clock.Now().Add(-time.Minute), h.clock.Now().Add(-time.Second)
			if err := h.store.UpdateSigningKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := h.svc.Keys().Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if kids := jwksKids(t, h); slices.Contains(kids, kid) {
		t.Fatalf("key still published: %v", kids)
	}
	assertError(t, h.get("/v1/me", tk.AccessToken), 401, "invalid_token", "malformed")
}
