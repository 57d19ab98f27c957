package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/providers/providertest"
	"github.com/authex/authex/storage"
)

func TestExchangeHappyPath(t *testing.T) {
	h := newHarness(t)
	tk := h.exchangeOK("corp", h.idToken("alice", nil))
	if tk.Created == nil || !*tk.Created || tk.TokenType != "Bearer" || tk.User.Email != "alice@example.com" ||
		!tk.User.EmailVerified || tk.User.Name != "User alice" || len(tk.User.Identities) != 1 ||
		tk.User.Identities[0].Provider != "corp" || tk.User.Identities[0].Subject != "alice" {
		t.Fatalf("unexpected answer: %+v", tk)
	}
	if tk.ExpiresIn < 890 || tk.ExpiresIn > 900 || tk.RefreshToken == "" || tk.SessionID == "" {
		t.Fatalf("unexpected token lifetimes: %+v", tk)
	}

	// The access token verifies against our JWKS with a standard JWT library.
	claims := verifyWithJWKS(t, h, tk.AccessToken)
	if claims["sub"] != tk.User.ID || claims["iss"] != h.cfg.Issuer || claims["sid"] != tk.SessionID ||
		claims["email"] != "alice@example.com" || claims["idp"] != "corp" || claims["jti"] == "" {
		t.Fatalf("unexpected claims: %v", claims)
	}
	if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != "api" {
		if claims["aud"] != "api" {
			t.Fatalf("aud = %v", claims["aud"])
		}
	}

	// A second sign-in finds the same user.
	again := h.exchangeOK("corp", h.idToken("alice", nil))
	if *again.Created || again.User.ID != tk.User.ID || again.SessionID == tk.SessionID {
		t.Fatalf("returning user: %+v", again)
	}

	// /v1/me returns the user with identities.
	res := h.get("/v1/me", tk.AccessToken)
	if res.status != http.StatusOK {
		t.Fatalf("/v1/me: %d %s", res.status, res.body)
	}
	me := res.json(t)
	if me["id"] != tk.User.ID || me["email"] != "alice@example.com" || len(me["identities"].([]any)) != 1 {
		t.Fatalf("/v1/me: %s", res.body)
	}
	assertError(t, h.get("/v1/me", ""), 401, "invalid_token", "missing_token")
	assertError(t, h.get("/v1/me", tk.AccessToken+"x"), 401, "invalid_token", "signature")
	if got := h.get("/v1/me", "garbage").header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Fatalf("WWW-Authenticate = %q", got)
	}

	// Refresh rotates.
	res = h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": tk.RefreshToken})
	if res.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", res.status, res.body)
	}
	rotated := decodeTokens(t, res)
	if rotated.RefreshToken == tk.RefreshToken || rotated.SessionID != tk.SessionID || rotated.User.ID != tk.User.ID {
		t.Fatalf("refresh did not rotate: %+v", rotated)
	}
	verifyWithJWKS(t, h, rotated.AccessToken)

	// Logout revokes: the refresh token is refused, the access token no longer reads /v1/me.
	res = h.postJSON("/v1/logout", map[string]string{"refresh_token": rotated.RefreshToken})
	if res.status != http.StatusOK || res.json(t)["revoked"] != float64(1) {
		t.Fatalf("logout: %d %s", res.status, res.body)
	}
	assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": rotated.RefreshToken}), 400, "invalid_grant", "revoked")
	assertError(t, h.get("/v1/me", rotated.AccessToken), 401, "invalid_token", "revoked")
	// The other session of the same user is untouched by a local logout.
	if res := h.get("/v1/me", again.AccessToken); res.status != http.StatusOK {
		t.Fatalf("other session: %d %s", res.status, res.body)
	}
}

func verifyWithJWKS(t *testing.T, h *harness, token string) map[string]any {
	t.Helper()
	res := h.get("/.well-known/jwks.json", "")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(res.body, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks: %v %s", err, res.body)
	}
	parsed, err := josejwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	hdr := parsed.Headers[0]
	if hdr.ExtraHeaders["typ"] != "at+jwt" {
		t.Fatalf("typ = %v", hdr.ExtraHeaders["typ"])
	}
	keys := set.Key(hdr.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in JWKS", hdr.KeyID)
	}
	var claims map[string]any
	if err := parsed.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("signature does not verify with the JWKS key: %v", err)
	}
	var std josejwt.Claims
	_ = parsed.Claims(keys[0].Key, &std)
	if err := std.ValidateWithLeeway(josejwt.Expected{Issuer: h.cfg.Issuer, AnyAudience: []string{"api"}, Time: time.Now()}, time.Second); err != nil {
		t.Fatalf("claims do not validate: %v", err)
	}
	return claims
}

func TestExchangeNonceAndAtHash(t *testing.T) {
	h := newHarness(t)
	raw := "n-0S6_WzA2Mj"
	sum := sha256.Sum256([]byte(raw))
	for name, tokenNonce := range map[string]string{"raw": raw, "sha256 hex": hex.EncodeToString(sum[:])} {
		t.Run(name, func(t *testing.T) {
			tok := h.idToken("nonce-"+strings.ReplaceAll(name, " ", ""), map[string]any{"nonce": tokenNonce})
			res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": tok, "nonce": raw})
			if res.status != http.StatusOK {
				t.Fatalf("%d %s", res.status, res.body)
			}
		})
	}
	t.Run("at_hash", func(t *testing.T) {
		tok := h.idToken("hash", map[string]any{"at_hash": h.iss.AtHash("access-1")})
		res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": tok, "access_token": "access-1"})
		if res.status != http.StatusOK {
			t.Fatalf("%d %s", res.status, res.body)
		}
	})
	t.Run("google scheme-less issuer", func(t *testing.T) {
		bare := strings.TrimPrefix(h.iss.URL(), "http://")
		tok := h.idToken("g-bare", map[string]any{"iss": bare})
		if res := h.postJSON("/v1/exchange", map[string]any{"provider": "google", "id_token": tok}); res.status != http.StatusOK {
			t.Fatalf("%d %s", res.status, res.body)
		}
	})
	t.Run("second client id and azp", func(t *testing.T) {
		tok := h.idToken("ios", map[string]any{"aud": []string{iosClientID, "other"}, "azp": iosClientID})
		if res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": tok}); res.status != http.StatusOK {
			t.Fatalf("%d %s", res.status, res.body)
		}
	})
}

// TestExchangeRefusals sends every bad credential through HTTP and checks
// the status, the reason, and that the store holds what it held before.
func TestExchangeRefusals(t *testing.T) {
	h := newHarness(t,
		withProvider("workspace", providerSpec{typ: "google", link: exchange.LinkAuto, allowSignup: true, allowedDomains: []string{"example.com"}}),
		withProvider("closed", providerSpec{typ: "oidc", link: exchange.LinkConfirm, allowSignup: false}),
	)
	// Something in the store, so "unchanged" means something.
	existing := h.exchangeOK("corp", h.idToken("existing", nil))
	now := time.Now()

	cases := []struct {
		name     string
		body     map[string]any
		status   int
		code     string
		reason   string
		setup    func()
		rawBody  string
		ctype    string
		bodySize int
	}{
		{name: "malformed", body: map[string]any{"provider": "corp", "id_token": "not-a-jwt"}, status: 401, code: "invalid_token", reason: "malformed"},
		{name: "malformed base64", body: map[string]any{"provider": "corp", "id_token": "a.b.c"}, status: 401, code: "invalid_token", reason: "malformed"},
		{name: "signature", body: map[string]any{"provider": "corp", "id_token": h.iss.MintWith(t, providertest.MintOptions{Key: providertest.ForeignKey(), KeyID: h.iss.KeyID()},
			map[string]any{"sub": "mallory", "aud": webClientID})}, status: 401, code: "invalid_token", reason: "signature"},
		{name: "unknown_key", body: map[string]any{"provider": "corp", "id_token": h.iss.MintWith(t, providertest.MintOptions{Key: providertest.ForeignKey()},
			map[string]any{"sub": "mallory", "aud": webClientID})}, status: 401, code: "invalid_token", reason: "unknown_key"},
		{name: "algorithm none", body: map[string]any{"provider": "corp", "id_token": h.iss.MintWith(t, providertest.MintOptions{Alg: "none"},
			map[string]any{"sub": "mallory", "aud": webClientID})}, status: 401, code: "invalid_token", reason: "algorithm"},
		{name: "algorithm HS256 with the public key", body: map[string]any{"provider": "corp", "id_token": h.iss.MintWith(t, providertest.MintOptions{Alg: "HS256"},
			map[string]any{"sub": "mallory", "aud": webClientID})}, status: 401, code: "invalid_token", reason: "algorithm"},
		{name: "issuer", body: map[string]any{"provider": "corp", "id_token": h.idToken("mallory", map[string]any{"iss": "https://evil.example"})}, status: 401, code: "invalid_token", reason: "issuer"},
		{name: "audience_mismatch", body: map[string]any{"provider": "corp", "id_token": h.idToken("mallory", map[string]any{"aud": "someone-elses-app"})}, status: 401, code: "invalid_token", reason: "audience_mismatch"},
		{name: "azp not ours", body: map[string]any{"provider": "corp", "id_token": h.idToken("mallory", map[string]any{"aud": []string{webClientID, "other"}, "azp": "other"})}, status: 401, code: "invalid_token", reason: "audience_mismatch"},
		{name: "expired", body: map[string]any{"provider": "corp", "id_token": h.idToken("mallory", map[string]any{"iat": now.Add(-3 * time.Hour).Unix(), "exp": now.Add(-2 * time.Hour).Unix()})}, status: 401, code: "invalid_token", reason: "expired"},
		{name: "not_yet_valid nbf", body: map[string]any{"provider": "corp", "id_token": h.idToken("mallory", map[string]any{"nbf": now.Add(time.Hour).Unix()})}, status: 401, code: "invalid_token", reason: "not_yet_valid"},
		{name: "not_yet_valid iat", body: map[string]any{"provider": "corp", "id_token": h.idToken("mallory", map[string]any{"iat": now.Add(time.Hour).Unix(), "exp": now.Add(2 * time.Hour).Unix()})}, status: 401, code: "invalid_token", reason: "not_yet_valid"},
		{name: "nonce_mismatch", body: map[string]any{"provider": "corp", "nonce": "xyz", "id_token": h.idToken("mallory", map[string]any{"nonce": "abc"})}, status: 401, code: "invalid_token", reason: "nonce_mismatch"},
		{name: "nonce in token, none in request", body: map[string]any{"provider": "corp", "id_token": h.idToken("mallory", map[string]any{"nonce": "abc"})}, status: 401, code: "invalid_token", reason: "nonce_mismatch"},
		{name: "at_hash_mismatch", body: map[string]any{"provider": "corp", "access_token": "access-B", "id_token": h.idToken("mallory", map[string]any{"at_hash": h.iss.AtHash("access-A")})}, status: 401, code: "invalid_token", reason: "at_hash_mismatch"},
		{name: "domain_not_allowed", body: map[string]any{"provider": "workspace", "id_token": h.idToken("mallory", map[string]any{"hd": "evil.example"})}, status: 401, code: "invalid_token", reason: "domain_not_allowed"},
		{name: "domain missing", body: map[string]any{"provider": "workspace", "id_token": h.idToken("mallory", nil)}, status: 401, code: "invalid_token", reason: "domain_not_allowed"},
		{name: "signup_disabled", body: map[string]any{"provider": "closed", "id_token": h.idToken("mallory", nil)}, status: 403, code: "access_denied", reason: "signup_disabled"},
		{name: "unsupported_provider", body: map[string]any{"provider": "myspace", "id_token": h.idToken("mallory", nil)}, status: 400, code: "unsupported_provider", reason: "unknown_provider"},
		{name: "no credential", body: map[string]any{"provider": "corp"}, status: 400, code: "invalid_request", reason: "missing_credential"},
		{name: "no provider", body: map[string]any{"id_token": h.idToken("mallory", nil)}, status: 400, code: "invalid_request", reason: "missing_provider"},
		{name: "malformed JSON", rawBody: `{"provider": "corp",`, ctype: "application/json", status: 400, code: "invalid_request", reason: "malformed_json"},
		{name: "wrong content type", rawBody: `provider=corp`, ctype: "application/x-www-form-urlencoded", status: 400, code: "invalid_request", reason: "content_type"},
		{name: "body over 64 KiB", bodySize: 65*1024 + 1, ctype: "application/json", status: 413, code: "invalid_request", reason: "body_too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot()
			var res response
			switch {
			case tc.bodySize > 0:
				big := `{"provider":"corp","id_token":"` + strings.Repeat("a", tc.bodySize) + `"}`
				res = h.do(http.MethodPost, "/v1/exchange", tc.ctype, []byte(big))
			case tc.rawBody != "":
				res = h.do(http.MethodPost, "/v1/exchange", tc.ctype, []byte(tc.rawBody))
			default:
				res = h.postJSON("/v1/exchange", tc.body)
			}
			assertError(t, res, tc.status, tc.code, tc.reason)
			h.assertUnchanged(before)
		})
	}

	t.Run("user_disabled", func(t *testing.T) {
		u, err := h.store.GetUser(context.Background(), existing.User.ID)
		if err != nil {
			t.Fatal(err)
		}
		u.Disabled = true
		if err := h.store.UpdateUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		before := h.snapshot()
		assertError(t, h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("existing", nil)}), 403, "access_denied", "user_disabled")
		assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": existing.RefreshToken}), 403, "access_denied", "user_disabled")
		assertError(t, h.get("/v1/me", existing.AccessToken), 403, "access_denied", "user_disabled")
		h.assertUnchanged(before)
	})
}

func TestProviderUnavailable(t *testing.T) {
	h := newHarness(t, withProvider("down", providerSpec{typ: "oidc", issuer: "http://127.0.0.1:1", link: exchange.LinkConfirm, allowSignup: true}))
	before := h.snapshot()
	assertError(t, h.postJSON("/v1/exchange", map[string]any{"provider": "down", "id_token": h.idToken("x", nil)}), 503, "provider_unavailable", "provider_unavailable")
	h.assertUnchanged(before)
	res := h.get("/readyz", "")
	if res.status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz: %d %s", res.status, res.body)
	}
	provs, _ := res.json(t)["providers"].(map[string]any)
	if _, named := provs["down"]; !named || len(provs) != 1 {
		t.Fatalf("/readyz does not name exactly the failing provider: %s", res.body)
	}
	if res := h.get("/healthz", ""); res.status != http.StatusOK {
		t.Fatalf("/healthz: %d", res.status)
	}
	// The healthy providers still serve.
	h.exchangeOK("corp", h.idToken("still-works", nil))
}

func TestLinkByEmail(t *testing.T) {
	h := newHarness(t, withProvider("separate", providerSpec{typ: "oidc", link: exchange.LinkNever, allowSignup: true}))
	// The google preset links automatically by verified email.
	first := h.exchangeOK("google", h.idToken("g-1", map[string]any{"email": "shared@example.com"}))

	t.Run("confirm answers account_exists with a link token", func(t *testing.T) {
		before := h.snapshot()
		res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("c-1", map[string]any{"email": "shared@example.com"})})
		assertError(t, res, 409, "account_exists", "account_exists")
		lt, _ := res.json(t)["link_token"].(string)
		if !strings.HasPrefix(lt, "lt1.") {
			t.Fatalf("no link_token: %s", res.body)
		}
		h.assertUnchanged(before)
	})
	t.Run("auto links to the owner of the verified email", func(t *testing.T) {
		other := h.iss.Mint(t, map[string]any{"sub": "g-2", "aud": webClientID, "email": "SHARED@example.com", "email_verified": true})
		// A second google identity (another subject) with the same email: auto links.
		tk := h.exchangeOK("google", other)
		if tk.User.ID != first.User.ID || *tk.Created || len(tk.User.Identities) != 2 {
			t.Fatalf("auto link: %+v", tk)
		}
	})
	t.Run("unverified email never links", func(t *testing.T) {
		tk := h.exchangeOK("google", h.idToken("g-3", map[string]any{"email": "shared@example.com", "email_verified": false}))
		if tk.User.ID == first.User.ID || !*tk.Created || tk.User.EmailVerified {
			t.Fatalf("unverified email captured an account: %+v", tk)
		}
	})
	t.Run("never creates a separate user", func(t *testing.T) {
		tk := h.exchangeOK("separate", h.idToken("s-1", map[string]any{"email": "shared@example.com"}))
		if tk.User.ID == first.User.ID || !*tk.Created {
			t.Fatalf("never: %+v", tk)
		}
		// The owner of the address keeps the verified-email index.
		owner, err := h.store.GetUserByVerifiedEmail(context.Background(), "shared@example.com")
		if err != nil || owner.ID != first.User.ID {
			t.Fatalf("email index moved: %v %v", owner.ID, err)
		}
	})
}

func TestConcurrentFirstSignIn(t *testing.T) {
	h := newHarness(t)
	const n = 100
	// One identity, n tokens: each id_token signs in once (a second use is
	// replayed), as n sign-ins at the provider would give.
	toks := make([]string, n)
	for i := range toks {
		toks[i] = h.idToken("rush", nil)
	}
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": toks[i]})
			if res.status != http.StatusOK {
				t.Errorf("exchange %d: %d %s", i, res.status, res.body)
				return
			}
			ids[i] = decodeTokens(t, res).User.ID
		}()
	}
	wg.Wait()
	users, err := h.store.CountUsers(context.Background())
	if err != nil || users != 1 {
		t.Fatalf("%d users after %d concurrent first sign-ins (%v)", users, n, err)
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("different user ids answered: %q and %q", id, ids[0])
		}
	}
	created, _ := h.store.ListAudit(context.Background(), storage.AuditFilter{Type: "user.created"})
	if len(created) != 1 {
		t.Fatalf("%d user.created events", len(created))
	}
}
