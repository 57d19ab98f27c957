package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/providers"
	"github.com/authex/authex/providers/providertest"
	"github.com/authex/authex/storage"
)

const backendSecret = "backend-secret-0123456789"

// nonceHarness registers nextjs as verifying nonces, a confidential client
// without the flag (backend), and a public one (ios-app).
func nonceHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	return newHarness(t, append([]harnessOption{withClients(
		exchange.ClientConfig{ID: "nextjs", Secret: nextjsSecret, VerifiesNonce: true},
		exchange.ClientConfig{ID: "backend", Secret: backendSecret},
		exchange.ClientConfig{ID: "ios-app", Public: true},
	)}, opts...)...)
}

// attestedEvents are the nonce.attested audit records.
func (h *harness) attestedEvents() []storage.AuditEvent {
	h.t.Helper()
	events, err := h.store.ListAudit(context.Background(), storage.AuditFilter{Type: exchange.EventNonceAttested, Limit: 1000})
	if err != nil {
		h.t.Fatal(err)
	}
	return events
}

// TestNonceAttestedByClient: a nonce-bearing id_token without its nonce is
// refused for every caller but the authenticated client registered with
// verifies_nonce; each refusal writes nothing and leaves the token
// unspent, so the client's own request still succeeds once.
func TestNonceAttestedByClient(t *testing.T) {
	h := nonceHarness(t)
	idToken := h.idToken("nonce-user", map[string]any{"nonce": "auth-js-nonce"})
	body := func(extra ...string) map[string]any {
		return withFields(map[string]any{"provider": "corp", "id_token": idToken}, extra...)
	}
	refusals := []refusal{
		{"no client authentication", body(), nil, 401, "invalid_client", "missing_client"},
		{"public client", body("client_id", "ios-app"), nil, 401, "invalid_token", "nonce_mismatch"},
		{"confidential client without verifies_nonce", body(), basic("backend", backendSecret), 401, "invalid_token", "nonce_mismatch"},
		{"verifying client with a wrong secret", body(), basic("nextjs", nextjsSecret+"x"), 401, "invalid_client", "invalid_secret"},
		{"verifying client named without its secret", body("client_id", "nextjs"), nil, 401, "invalid_client", "missing_secret"},
		{"verifying client sending a wrong nonce", body("nonce", "other-nonce"), basic("nextjs", nextjsSecret), 401, "invalid_token", "nonce_mismatch"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot()
			assertError(t, h.postJSON("/v1/exchange", tc.body, tc.headers...), tc.status, tc.code, tc.reason)
			h.assertUnchanged(before)
		})
	}

	res := h.postJSON("/v1/exchange", body(), basic("nextjs", nextjsSecret)...)
	if res.status != http.StatusOK {
		t.Fatalf("verifying client: %d %s", res.status, res.body)
	}
	tk := decodeTokens(t, res)
	if got := verifyWithJWKS(t, h, tk.AccessToken)["client_id"]; got != "nextjs" {
		t.Fatalf("client_id claim %v", got)
	}
	events := h.attestedEvents()
	if len(events) != 1 || events[0].UserID != tk.User.ID || events[0].Provider != "corp" ||
		!strings.Contains(events[0].Detail, "client nextjs") {
		t.Fatalf("nonce.attested audit: %+v", events)
	}

	// The same user signing in again takes the returning user's one-write
	// path: the attestation is audited there too.
	again := h.postJSON("/v1/exchange", map[string]any{"provider": "corp",
		"id_token": h.idToken("nonce-user", map[string]any{"nonce": "second-nonce"})}, basic("nextjs", nextjsSecret)...)
	if again.status != http.StatusOK || decodeTokens(t, again).User.ID != tk.User.ID {
		t.Fatalf("returning user: %d %s", again.status, again.body)
	}
	if events := h.attestedEvents(); len(events) != 2 || events[0].UserID != tk.User.ID || events[1].UserID != tk.User.ID {
		t.Fatalf("nonce.attested audit after a returning sign-in: %+v", events)
	}
}

// TestNonceAttestedByClientReplay: an attested id_token is still one-time.
// Sent again by the verifying client, or by anyone else even with the
// right nonce, it is 401 replayed and the store is unchanged; an
// unauthenticated caller is refused before that (invalid_client).
func TestNonceAttestedByClientReplay(t *testing.T) {
	h := nonceHarness(t)
	idToken := h.idToken("replay-user", map[string]any{"nonce": "auth-js-nonce"})
	res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": idToken}, basic("nextjs", nextjsSecret)...)
	if res.status != http.StatusOK {
		t.Fatalf("first use: %d %s", res.status, res.body)
	}
	replays := []struct {
		name         string
		body         map[string]any
		headers      []string
		code, reason string
	}{
		{"by the verifying client", map[string]any{"provider": "corp", "id_token": idToken}, basic("nextjs", nextjsSecret), "invalid_token", "replayed"},
		{"by the verifying client, with the nonce", map[string]any{"provider": "corp", "id_token": idToken, "nonce": "auth-js-nonce"}, basic("nextjs", nextjsSecret), "invalid_token", "replayed"},
		{"by a public client with the nonce", map[string]any{"provider": "corp", "id_token": idToken, "nonce": "auth-js-nonce", "client_id": "ios-app"}, nil, "invalid_token", "replayed"},
		{"unauthenticated", map[string]any{"provider": "corp", "id_token": idToken}, nil, "invalid_client", "missing_client"},
	}
	for _, tc := range replays {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot()
			assertError(t, h.postJSON("/v1/exchange", tc.body, tc.headers...), 401, tc.code, tc.reason)
			h.assertUnchanged(before)
		})
	}
}

// TestNonceAttestedByClientBodyAuth: client_id and client_secret in the
// body authenticate as well as HTTP Basic; a nonce that is sent and right
// is compared as always, and then nothing is attested.
func TestNonceAttestedByClientBodyAuth(t *testing.T) {
	h := nonceHarness(t)
	res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "client_id": "nextjs", "client_secret": nextjsSecret,
		"id_token": h.idToken("body-auth", map[string]any{"nonce": "n-body"})})
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.body)
	}
	res = h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "nonce": "n-sent",
		"id_token": h.idToken("sent-nonce", map[string]any{"nonce": "n-sent"})}, basic("nextjs", nextjsSecret)...)
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.body)
	}
	if n := len(h.attestedEvents()); n != 1 {
		t.Fatalf("%d nonce.attested events, want 1 (a sent nonce is checked here, not attested)", n)
	}
}

// TestNonceAttestedWithoutClients: with no clients configured nobody can
// attest: today's nonce_mismatch, whatever client credentials are sent.
func TestNonceAttestedWithoutClients(t *testing.T) {
	h := newHarness(t)
	idToken := h.idToken("open", map[string]any{"nonce": "n-open"})
	for _, headers := range [][]string{nil, basic("nextjs", nextjsSecret)} {
		before := h.snapshot()
		assertError(t, h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": idToken}, headers...),
			401, "invalid_token", "nonce_mismatch")
		h.assertUnchanged(before)
	}
}

// TestNonceAttestedRequireNonce: require_nonce still needs the id_token to
// carry a nonce when the client attests it.
func TestNonceAttestedRequireNonce(t *testing.T) {
	h := nonceHarness(t, withProvider("strict", providerSpec{typ: "oidc", link: exchange.LinkNever, allowSignup: true,
		setup: func(_ *providertest.Issuer, cfg *providers.Config) { cfg.RequireNonce = true }}))
	before := h.snapshot()
	assertError(t, h.postJSON("/v1/exchange", map[string]any{"provider": "strict", "id_token": h.idToken("strict-a", nil)},
		basic("nextjs", nextjsSecret)...), 401, "invalid_token", "nonce_required")
	h.assertUnchanged(before)
	res := h.postJSON("/v1/exchange", map[string]any{"provider": "strict", "id_token": h.idToken("strict-b", map[string]any{"nonce": "n-s"})},
		basic("nextjs", nextjsSecret)...)
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.body)
	}
}

// TestNonceAttestedTokenExchange: RFC 8693 at /oauth/token shares the
// path; its refusals are invalid_request (400) with the same reason.
func TestNonceAttestedTokenExchange(t *testing.T) {
	h := nonceHarness(t)
	idToken := h.idToken("rfc8693", map[string]any{"nonce": "n-te"})
	form := url.Values{"grant_type": {grantTokenExchange}, "subject_token": {idToken},
		"subject_token_type": {typeIDToken}, "subject_issuer": {"corp"}}
	for _, tc := range []struct {
		name    string
		extra   url.Values
		headers []string
	}{
		{"public client", url.Values{"client_id": {"ios-app"}}, nil},
		{"confidential client without verifies_nonce", nil, basic("backend", backendSecret)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := url.Values{}
			for k, vals := range form {
				v[k] = vals
			}
			for k, vals := range tc.extra {
				v[k] = vals
			}
			before := h.snapshot()
			assertError(t, h.postForm("/oauth/token", v, tc.headers...), 400, "invalid_request", "nonce_mismatch")
			h.assertUnchanged(before)
		})
	}
	res := h.postForm("/oauth/token", form, basic("nextjs", nextjsSecret)...)
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.body)
	}
	before := h.snapshot()
	assertError(t, h.postForm("/oauth/token", form, basic("nextjs", nextjsSecret)...), 400, "invalid_request", "replayed")
	h.assertUnchanged(before)
}

// TestNonceAttestedLink: POST /v1/me/identities takes the client's
// credentials in the body (Authorization holds the Bearer token); without
// them a nonce-bearing id_token needs its nonce.
func TestNonceAttestedLink(t *testing.T) {
	h := nonceHarness(t)
	signedIn := decodeTokens(t, h.postJSON("/v1/exchange", map[string]any{"provider": "corp",
		"id_token": h.idToken("linker", nil)}, basic("nextjs", nextjsSecret)...))
	second := h.idToken("linker-google", map[string]any{"nonce": "n-link", "email": "linker2@example.com"})
	link := func(extra ...string) map[string]any {
		return withFields(map[string]any{"provider": "google", "id_token": second}, extra...)
	}
	refusals := []struct {
		name   string
		body   map[string]any
		status int
		code   string
		reason string
	}{
		{"no client credentials", link(), 401, "invalid_token", "nonce_mismatch"},
		{"public client", link("client_id", "ios-app"), 401, "invalid_token", "nonce_mismatch"},
		{"confidential client without verifies_nonce", link("client_id", "backend", "client_secret", backendSecret), 401, "invalid_token", "nonce_mismatch"},
		{"verifying client named without its secret", link("client_id", "nextjs"), 401, "invalid_client", "missing_secret"},
		{"wrong secret", link("client_id", "nextjs", "client_secret", "wrong-secret-0123456789"), 401, "invalid_client", "invalid_secret"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot()
			assertError(t, h.postJSON("/v1/me/identities", tc.body, bearer(signedIn.AccessToken)...), tc.status, tc.code, tc.reason)
			h.assertUnchanged(before)
		})
	}
	res := h.postJSON("/v1/me/identities", link("client_id", "nextjs", "client_secret", nextjsSecret), bearer(signedIn.AccessToken)...)
	if res.status != http.StatusCreated {
		t.Fatalf("%d %s", res.status, res.body)
	}
	events := h.attestedEvents()
	if len(events) != 1 || events[0].UserID != signedIn.User.ID || !strings.Contains(events[0].Detail, "client nextjs (link)") {
		t.Fatalf("nonce.attested audit: %+v", events)
	}
	before := h.snapshot()
	assertError(t, h.postJSON("/v1/me/identities", link("client_id", "nextjs", "client_secret", nextjsSecret), bearer(signedIn.AccessToken)...),
		401, "invalid_token", "replayed")
	h.assertUnchanged(before)
}
