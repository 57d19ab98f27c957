package web_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/authex/authex/exchange"
)

// TestFastAPISessionRenewsOnlyCompatSessions: POST /users/session/ renews
// only sessions of the compat client. An access token of a session that a
// confidential client made on /v1/exchange is refused (401
// client_mismatch), nothing is written, and that client's refresh chain
// is untouched: its next refresh, after the reuse grace, still works.
func TestFastAPISessionRenewsOnlyCompatSessions(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()), withCompat("fastapi"), withCompatClient("spa"), withClients(
		exchange.ClientConfig{ID: "spa", Public: true},
		exchange.ClientConfig{ID: "nextjs", Secret: nextjsSecret},
	))
	ex := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("renew-victim", nil)},
		basic("nextjs", nextjsSecret)...)
	if ex.status != http.StatusOK {
		t.Fatalf("exchange: %d %s", ex.status, ex.body)
	}
	victim := decodeTokens(t, ex)
	session := func(token string) response {
		return h.do(http.MethodPost, "/users/session/", "application/json", nil, "Authorization", "Bearer "+token)
	}

	// Fresh, and within the renewal window: refused both times.
	before := h.snapshot()
	m := wantStatus(t, session(victim.AccessToken), 401, "client_mismatch")
	if m["detail"] != "Could not validate credentials" {
		t.Fatalf("refusal shape: %v", m)
	}
	h.clock.Advance(11 * time.Minute)
	wantStatus(t, session(victim.AccessToken), 401, "client_mismatch")
	h.assertUnchanged(before)

	// The real client refreshes well after the reuse grace: still its
	// current generation, so no reuse and no sign-out.
	h.clock.Advance(time.Minute)
	res := h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": victim.RefreshToken}, basic("nextjs", nextjsSecret)...)
	if res.status != http.StatusOK {
		t.Fatalf("the victim's refresh after the attack: %d %s", res.status, res.body)
	}

	// The compat client's own session still renews.
	reg := h.postJSON("/v1/register", map[string]any{"email": "fa@example.com", "password": goodPassword, "client_id": "spa"})
	if reg.status != http.StatusOK {
		t.Fatalf("register: %d %s", reg.status, reg.body)
	}
	login := h.postJSON("/users/login/", map[string]string{"username": "fa@example.com", "password": goodPassword})
	if login.status != http.StatusOK {
		t.Fatalf("compat login: %d %s", login.status, login.body)
	}
	token := str(login.json(t), "access_token")
	h.clock.Advance(11 * time.Minute)
	res = session(token)
	if res.status != http.StatusOK || str(res.json(t), "access_token") == token {
		t.Fatalf("compat session renewal: %d %s", res.status, res.body)
	}
}

// TestLogoutBindsTheClient: with clients configured, a stolen refresh
// token of a confidential client cannot sign the user out (scope global)
// without that client's authentication: no client is 401 missing_client,
// another client is 400 client_mismatch, and nothing is revoked.
// /oauth/revoke had the binding already; it is held here too.
func TestLogoutBindsTheClient(t *testing.T) {
	h := clientHarness(t)
	exchangeAs := func() tokens {
		res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("logout-victim", nil)},
			basic("nextjs", nextjsSecret)...)
		if res.status != http.StatusOK {
			t.Fatalf("exchange: %d %s", res.status, res.body)
		}
		return decodeTokens(t, res)
	}
	stolen, other := exchangeAs(), exchangeAs()

	before := h.snapshot()
	body := map[string]string{"refresh_token": stolen.RefreshToken, "scope": "global"}
	assertError(t, h.postJSON("/v1/logout", body), 401, "invalid_client", "missing_client")
	assertError(t, h.postJSON("/v1/logout", map[string]string{"refresh_token": stolen.RefreshToken, "scope": "global", "client_id": "ios-app"}),
		400, "invalid_grant", "client_mismatch")
	assertError(t, h.postJSON("/v1/logout", body, basic("nextjs", "wrong-secret-0123456789")...), 401, "invalid_client", "invalid_secret")
	assertError(t, h.do(http.MethodPost, "/oauth/revoke", "application/x-www-form-urlencoded", []byte("token="+stolen.RefreshToken)),
		401, "invalid_client", "missing_client")
	if res := h.do(http.MethodPost, "/oauth/revoke", "application/x-www-form-urlencoded",
		[]byte("client_id=ios-app&token="+stolen.RefreshToken)); res.status != http.StatusOK {
		t.Fatalf("revoke by another client: %d %s", res.status, res.body)
	}
	h.assertUnchanged(before)
	if res := h.get("/v1/me", other.AccessToken); res.status != http.StatusOK {
		t.Fatalf("the other session after the attack: %d %s", res.status, res.body)
	}

	// The client itself signs the user out everywhere.
	res := h.postJSON("/v1/logout", body, basic("nextjs", nextjsSecret)...)
	if res.status != http.StatusOK || res.json(t)["revoked"] != float64(2) {
		t.Fatalf("logout by its client: %d %s", res.status, res.body)
	}
}

// assertSealed fails when a link_token reveals any of secrets, in clear or
// in the base64 of any of its parts.
func assertSealed(t testing.TB, token string, secrets ...string) {
	t.Helper()
	views := []string{token}
	for _, part := range strings.Split(token, ".") {
		for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
			if b, err := enc.DecodeString(part); err == nil {
				views = append(views, string(b))
			}
		}
	}
	for _, v := range views {
		for _, secret := range secrets {
			if secret != "" && bytes.Contains(bytes.ToLower([]byte(v)), bytes.ToLower([]byte(secret))) {
				t.Fatalf("link_token reveals %q", secret)
			}
		}
	}
}

// TestLinkTokenIsSealed: a link_token is neither a JWT that our JWKS keys
// verify (an API that skips typ/aud checks cannot take it for an access
// token) nor readable: no email, subject or user id, in clear or base64.
// It is refused as a Bearer token, and the former JWT form is refused on
// redemption.
func TestLinkTokenIsSealed(t *testing.T) {
	h := newHarness(t)
	owner := h.exchangeOK("google", h.idToken("seal-owner", map[string]any{"email": "sealed.victim@example.com"}))
	lt := h.linkTokenFor("seal-new", "sealed.victim@example.com")
	assertSealed(t, lt, "sealed.victim@example.com", "sealed.victim", "seal-new", owner.User.ID, h.iss.URL(), "corp")

	var set jose.JSONWebKeySet
	if err := json.Unmarshal(h.get("/.well-known/jwks.json", "").body, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks: %v", err)
	}
	algs := []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.HS256}
	if parsed, err := josejwt.ParseSigned(lt, algs); err == nil {
		for _, k := range set.Keys {
			var claims map[string]any
			if parsed.Claims(k.Key, &claims) == nil {
				t.Fatalf("the link_token verifies with JWKS key %s: %v", k.KeyID, claims)
			}
		}
	}

	before := h.snapshot()
	assertError(t, h.get("/v1/me", lt), 401, "invalid_token", "malformed")
	h.assertUnchanged(before)

	// The former form (a JWT signed with the access-token key) is refused.
	old := h.idToken("not-a-link-token", nil)
	assertError(t, h.postJSON("/v1/me/identities", map[string]any{"link_token": old}, bearer(owner.AccessToken)...),
		400, "invalid_grant", "malformed")
	h.assertUnchanged(before)

	// And it still links.
	if res := h.postJSON("/v1/me/identities", map[string]any{"link_token": lt}, bearer(owner.AccessToken)...); res.status != http.StatusCreated {
		t.Fatalf("link: %d %s", res.status, res.body)
	}
}

// TestMetricsNeedTheAdminTokenOnThePublicListener: /metrics on the main
// listener answers only with an admin token (401 without, as the admin
// API does); with an admin listener it is not on the main one at all.
func TestMetricsNeedTheAdminTokenOnThePublicListener(t *testing.T) {
	withMetrics := func(c *harnessConfig) { c.metrics = true }
	h := newHarness(t, withAdmin(adminToken), withMetrics)
	assertError(t, h.get("/metrics", ""), 401, "invalid_token", "missing_token")
	assertError(t, h.get("/metrics", "not-the-admin-token-0123456789abcdef"), 401, "invalid_token", "admin_token")
	assertError(t, h.get("/metrics", h.exchangeOK("corp", h.idToken("metrics-user", nil)).AccessToken), 401, "invalid_token", "admin_token")
	if res := h.get("/metrics", adminToken); res.status != http.StatusOK || !strings.Contains(string(res.body), "authex_") {
		t.Fatalf("/metrics with the admin token: %d", res.status)
	}

	none := newHarness(t, withMetrics)
	assertError(t, none.get("/metrics", ""), 401, "invalid_token", "missing_token")
	assertError(t, none.get("/metrics", adminToken), 401, "invalid_token", "admin_disabled")

	sep := newHarness(t, withAdmin(adminToken), withMetrics, func(c *harnessConfig) { c.web.AdminSeparate = true })
	if res := sep.get("/metrics", adminToken); res.status != http.StatusNotFound {
		t.Fatalf("/metrics on the main listener with an admin listener: %d", res.status)
	}
}

// rawRequest sends bytes the Go client would refuse to send (control
// characters in a header) and returns the answer's headers and body.
func rawRequest(t *testing.T, h *harness, req string) (int, http.Header, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

var ourRequestID = regexp.MustCompile(`^[0-9a-f]{24}$`)

// TestRequestIDIsSanitised: a client's X-Request-ID is echoed (header,
// error body, log) only when it is 1-64 characters of [A-Za-z0-9._-];
// anything else is replaced by an id of ours.
func TestRequestIDIsSanitised(t *testing.T) {
	h := newHarness(t)
	errorWith := func(id string) response {
		return h.do(http.MethodGet, "/v1/me", "", nil, "X-Request-ID", id)
	}
	for _, good := range []string{"a", "trace-01.ABC_x", strings.Repeat("z", 64)} {
		res := errorWith(good)
		if got := res.header.Get("X-Request-Id"); got != good || str(res.json(t), "request_id") != good {
			t.Errorf("safe id %q: echoed %q, body %s", good, got, res.body)
		}
	}
	for _, bad := range []string{`{"level":"ERROR","msg":"forged"}`, strings.Repeat("a", 65), strings.Repeat("b", 8000), "a b", "<script>", "é"} {
		res := errorWith(bad)
		got := res.header.Get("X-Request-Id")
		if !ourRequestID.MatchString(got) || str(res.json(t), "request_id") != got {
			t.Errorf("unsafe id %.40q: echoed %q, body %.200s", bad, got, res.body)
		}
	}
	// Control characters and a folded line (newline + space), which no
	// well-behaved client sends.
	for _, raw := range []string{"x\x01y", "x\ty", "line\r\n injected: 1"} {
		status, hdr, body := rawRequest(t, h, "GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Request-ID: "+raw+"\r\nConnection: close\r\n\r\n")
		if status == http.StatusBadRequest && hdr.Get("X-Request-Id") == "" {
			continue // the HTTP server refused the request before authex saw it
		}
		if got := hdr.Get("X-Request-Id"); !ourRequestID.MatchString(got) || strings.Contains(string(body), "injected") {
			t.Errorf("raw id %q: %d echoed %q body %s", raw, status, got, body)
		}
	}
}

// TestSecurityHeadersOnEveryAnswer: every answer says nosniff; every
// answer that carries a token or user data is no-store with Pragma:
// no-cache; only discovery and the JWKS are publicly cacheable.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()), withCompat("fastapi", "djrestauth"), withCompatClient("spa"),
		withAdmin(adminToken), func(c *harnessConfig) { c.metrics = true }, withClients(
			exchange.ClientConfig{ID: "spa", Public: true},
			exchange.ClientConfig{ID: "nextjs", Secret: nextjsSecret},
		))
	private := func(name string, res response, status int) {
		t.Helper()
		if res.status != status {
			t.Fatalf("%s: %d, want %d: %s", name, res.status, status, res.body)
		}
		if res.header.Get("X-Content-Type-Options") != "nosniff" || res.header.Get("Cache-Control") != "no-store" ||
			res.header.Get("Pragma") != "no-cache" {
			t.Errorf("%s: headers %v", name, res.header)
		}
	}
	nj := basic("nextjs", nextjsSecret)
	private("register", h.postJSON("/v1/register", map[string]any{"email": "hdr@example.com", "password": goodPassword, "client_id": "spa"}), 200)
	private("login", h.postJSON("/v1/login", map[string]any{"email": "hdr@example.com", "password": goodPassword, "client_id": "spa"}), 200)
	ex := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("hdr-user", nil)}, nj...)
	private("exchange", ex, 200)
	tk := decodeTokens(t, ex)
	ref := h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": tk.RefreshToken}, nj...)
	private("refresh", ref, 200)
	tk = decodeTokens(t, ref)
	form := "application/x-www-form-urlencoded"
	ot := h.do(http.MethodPost, "/oauth/token", form, []byte("grant_type=refresh_token&refresh_token="+tk.RefreshToken), nj...)
	private("oauth token", ot, 200)
	access := str(ot.json(t), "access_token")
	private("introspect", h.do(http.MethodPost, "/oauth/introspect", form, []byte("token="+access), nj...), 200)
	private("me", h.get("/v1/me", access), 200)
	private("sessions", h.get("/v1/me/sessions", access), 200)
	private("link", h.postJSON("/v1/me/identities", map[string]any{"provider": "google", "id_token": h.idToken("hdr-google", nil)}, bearer(access)...), 201)
	private("account_exists", h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("hdr-other",
		map[string]any{"email": "hdr-user@example.com"})}, nj...), 409)
	private("bad bearer", h.get("/v1/me", "nope"), 401)

	private("fastapi login", h.postJSON("/users/login/", map[string]string{"username": "hdr@example.com", "password": goodPassword}), 200)
	fa := h.postJSON("/users/login/", map[string]string{"username": "hdr@example.com", "password": goodPassword})
	private("fastapi session", h.do(http.MethodPost, "/users/session/", "application/json", nil, "Authorization", "Bearer "+str(fa.json(t), "access_token")), 200)
	dj := h.postJSON("/api/auth/corp/", map[string]string{"id_token": h.idToken("hdr-dj", nil)})
	private("dj social login", dj, 200)
	pair := dj.json(t)
	private("dj refresh", h.postJSON("/api/auth/token/refresh/", map[string]string{"refresh": str(pair, "refresh")}), 200)
	private("dj user", h.get("/api/auth/user/", str(pair, "access")), 200)

	private("admin", h.get("/admin/v1/users", adminToken), 200)
	private("metrics", h.get("/metrics", adminToken), 200)
	private("revoke", h.do(http.MethodPost, "/oauth/revoke", form, []byte("token="+access), nj...), 200)
	private("logout", h.postJSON("/v1/logout", map[string]any{"refresh_token": tk.RefreshToken}, nj...), 200)

	for _, path := range []string{"/.well-known/jwks.json", "/.well-known/openid-configuration"} {
		res := h.get(path, "")
		if res.status != 200 || res.header.Get("X-Content-Type-Options") != "nosniff" ||
			res.header.Get("Cache-Control") != "public, max-age=300" || res.header.Get("Pragma") != "" {
			t.Errorf("%s: %d %v", path, res.status, res.header)
		}
	}
	if res := h.get("/healthz", ""); res.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("healthz: %v", res.header)
	}
}
