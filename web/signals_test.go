package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/providers"
	"github.com/authex/authex/providers/providertest"
	"github.com/authex/authex/storage"
)

// withSignals makes the harness issuer a SET transmitter for provider
// "corp", with our web client id as its audience.
func withSignals() harnessOption {
	return func(c *harnessConfig) {
		c.signals = func(iss *providertest.Issuer) []exchange.SignalReceiver {
			v, err := providers.NewSETVerifier(providers.SETConfig{Issuer: iss.URL(), JWKSURI: iss.URL() + "/keys",
				Audiences: []string{webClientID}})
			if err != nil {
				panic(err)
			}
			return []exchange.SignalReceiver{{Provider: "corp", IdentityIssuer: iss.URL(), Verifier: v}}
		}
	}
}

// set mints a SET with one event about sub; extra adjusts the claims.
func (h *harness) set(opts providertest.MintOptions, eventType, sub string, extra map[string]any) string {
	h.t.Helper()
	if opts.Header == nil {
		opts.Header = map[string]any{"typ": "secevent+jwt"}
	}
	claims := map[string]any{
		"aud": webClientID, "exp": nil,
		"events": map[string]any{eventType: map[string]any{
			"subject": map[string]any{"subject_type": "iss-sub", "iss": h.iss.URL(), "sub": sub},
		}},
	}
	for k, v := range extra {
		claims[k] = v
	}
	return h.iss.MintWith(h.t, opts, claims)
}

func (h *harness) postSET(set string) response {
	h.t.Helper()
	return h.do(http.MethodPost, "/v1/signals", "application/secevent+jwt", []byte(set))
}

func assertSETError(t *testing.T, res response, code string) {
	t.Helper()
	if res.status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: %s", res.status, res.body)
	}
	var body map[string]any
	if err := json.Unmarshal(res.body, &body); err != nil || body["err"] != code || body["description"] == "" {
		t.Fatalf("body %s, want err %q with a description", res.body, code)
	}
}

func TestSignalSessionsRevoked(t *testing.T) {
	h := newHarness(t, withSignals())
	alice := h.exchangeOK("corp", h.idToken("alice", nil))
	bob := h.exchangeOK("corp", h.idToken("bob", nil))

	set := h.set(providertest.MintOptions{}, exchange.SETSessionsRevoked, "alice", nil)
	if res := h.postSET(set); res.status != http.StatusAccepted {
		t.Fatalf("SET: %d %s", res.status, res.body)
	}
	res := h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": alice.RefreshToken})
	assertError(t, res, http.StatusBadRequest, "invalid_grant", exchange.ReasonRevoked)
	h.refreshOK(bob.RefreshToken) // another user is untouched

	sess, err := h.store.ListSessions(context.Background(), alice.User.ID)
	if err != nil || len(sess) != 1 || sess[0].RevokedReason != exchange.RevokeReasonUpstreamSignal {
		t.Fatalf("alice's sessions: %+v %v", sess, err)
	}
	ev, _ := h.store.ListAudit(context.Background(), storage.AuditFilter{UserID: alice.User.ID, Type: exchange.EventSessionRevokedAll})
	if len(ev) != 1 || !strings.Contains(ev[0].Detail, "sessions-revoked") {
		t.Fatalf("audit: %+v", ev)
	}

	// The same SET again: refused, nothing written, even for a session
	// alice started since.
	h.exchangeOK("corp", h.idToken("alice", nil))
	before := h.snapshot()
	assertSETError(t, h.postSET(set), exchange.ReasonSETInvalidRequest)
	h.assertUnchanged(before)
}

func TestSignalRefusedChangesNothing(t *testing.T) {
	h := newHarness(t, withSignals())
	h.exchangeOK("corp", h.idToken("alice", nil))
	before := h.snapshot()
	ev := exchange.SETSessionsRevoked
	cases := []struct {
		name, set, code, contentType string
	}{
		{"forged with a foreign key under our kid", h.set(providertest.MintOptions{Key: providertest.ForeignKey(), KeyID: h.iss.KeyID()}, ev, "alice", nil), exchange.ReasonSETInvalidKey, ""},
		{"foreign key, unknown kid", h.set(providertest.MintOptions{Key: providertest.ForeignKey()}, ev, "alice", nil), exchange.ReasonSETInvalidKey, ""},
		{"alg none", h.set(providertest.MintOptions{Alg: "none"}, ev, "alice", nil), exchange.ReasonSETInvalidKey, ""},
		{"HMAC with the public key", h.set(providertest.MintOptions{Alg: "HS256"}, ev, "alice", nil), exchange.ReasonSETInvalidKey, ""},
		{"wrong audience", h.set(providertest.MintOptions{}, ev, "alice", map[string]any{"aud": "someone-else"}), exchange.ReasonSETInvalidAudience, ""},
		{"no audience", h.set(providertest.MintOptions{}, ev, "alice", map[string]any{"aud": nil}), exchange.ReasonSETInvalidAudience, ""},
		{"unknown issuer", h.set(providertest.MintOptions{}, ev, "alice", map[string]any{"iss": "https://evil.example"}), exchange.ReasonSETInvalidIssuer, ""},
		{"no events", h.set(providertest.MintOptions{}, ev, "alice", map[string]any{"events": nil}), exchange.ReasonSETInvalidRequest, ""},
		{"event not an object", h.set(providertest.MintOptions{}, ev, "alice", map[string]any{"events": map[string]any{ev: "x"}}), exchange.ReasonSETInvalidRequest, ""},
		{"no jti", h.set(providertest.MintOptions{}, ev, "alice", map[string]any{"jti": nil}), exchange.ReasonSETInvalidRequest, ""},
		{"too old", h.set(providertest.MintOptions{}, ev, "alice", map[string]any{"iat": 1000}), exchange.ReasonSETInvalidRequest, ""},
		{"an id_token", h.idToken("alice", nil), exchange.ReasonSETInvalidRequest, ""},
		{"access token typ", h.set(providertest.MintOptions{Header: map[string]any{"typ": "at+jwt"}}, ev, "alice", nil), exchange.ReasonSETInvalidRequest, ""},
		{"not a JWT", "hello", exchange.ReasonSETInvalidRequest, ""},
		{"wrong content type", h.set(providertest.MintOptions{}, ev, "alice", nil), exchange.ReasonSETInvalidRequest, "application/jwt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentType
			if ct == "" {
				ct = "application/secevent+jwt"
			}
			assertSETError(t, h.do(http.MethodPost, "/v1/signals", ct, []byte(tc.set)), tc.code)
			h.assertUnchanged(before)
		})
	}
	// A duplicate-key payload, signed: strict decoding refuses it.
	dup := h.iss.MintRaw(t, []byte(`{"iss":"`+h.iss.URL()+`","aud":"`+webClientID+`","iat":`+
		jsonNow()+`,"jti":"d1","events":{"`+ev+`":{"subject":{"subject_type":"iss-sub","iss":"`+h.iss.URL()+`","sub":"bob","sub":"alice"}}}}`))
	assertSETError(t, h.postSET(dup), exchange.ReasonSETInvalidRequest)
	h.assertUnchanged(before)
}

func TestSignalUnknownSubjectAccepted(t *testing.T) {
	h := newHarness(t, withSignals())
	h.exchangeOK("corp", h.idToken("alice", nil))
	before := h.snapshot()
	for _, set := range []string{
		h.set(providertest.MintOptions{}, exchange.SETSessionsRevoked, "nobody", nil),
		// A subject naming another issuer is not mapped to our identity.
		h.set(providertest.MintOptions{}, exchange.SETSessionsRevoked, "alice", map[string]any{"events": map[string]any{
			exchange.SETSessionsRevoked: map[string]any{"subject": map[string]any{"subject_type": "iss-sub", "iss": "https://other.example", "sub": "alice"}}}}),
		h.set(providertest.MintOptions{}, exchange.SETVerification, "alice", nil),
		h.set(providertest.MintOptions{}, "https://example.com/unknown-event", "alice", nil),
	} {
		if res := h.postSET(set); res.status != http.StatusAccepted {
			t.Fatalf("SET: %d %s", res.status, res.body)
		}
	}
	h.assertUnchanged(before)
}

func TestSignalAccountDisabledEnabled(t *testing.T) {
	h := newHarness(t, withSignals())
	alice := h.exchangeOK("corp", h.idToken("alice", nil))
	if res := h.postSET(h.set(providertest.MintOptions{}, exchange.SETAccountDisabled, "alice", nil)); res.status != http.StatusAccepted {
		t.Fatalf("SET: %d %s", res.status, res.body)
	}
	res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("alice", nil)})
	assertError(t, res, http.StatusForbidden, "access_denied", exchange.ReasonUserDisabled)
	res = h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": alice.RefreshToken})
	if res.status == http.StatusOK {
		t.Fatal("refresh of a disabled user's session succeeded")
	}

	if res := h.postSET(h.set(providertest.MintOptions{}, exchange.SETAccountEnabled, "alice", nil)); res.status != http.StatusAccepted {
		t.Fatalf("SET: %d %s", res.status, res.body)
	}
	h.exchangeOK("corp", h.idToken("alice", nil))

	// A user the operator disabled stays disabled whatever the upstream says.
	if _, _, err := h.svc.Admin().SetDisabled(context.Background(), alice.User.ID, true, "test"); err != nil {
		t.Fatal(err)
	}
	if res := h.postSET(h.set(providertest.MintOptions{}, exchange.SETAccountEnabled, "alice", nil)); res.status != http.StatusAccepted {
		t.Fatalf("SET: %d %s", res.status, res.body)
	}
	res = h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("alice", nil)})
	assertError(t, res, http.StatusForbidden, "access_denied", exchange.ReasonUserDisabled)
}

func jsonNow() string { return strconv.FormatInt(time.Now().Unix(), 10) }

func TestSignalIdentifierChanged(t *testing.T) {
	h := newHarness(t, withSignals())
	alice := h.exchangeOK("corp", h.idToken("alice", nil))
	set := h.set(providertest.MintOptions{}, exchange.SETIdentifierChanged, "alice", map[string]any{"events": map[string]any{
		exchange.SETIdentifierChanged: map[string]any{
			"subject":   map[string]any{"subject_type": "iss-sub", "iss": h.iss.URL(), "sub": "alice"},
			"new-value": "alice.new@example.com",
		}}})
	if res := h.postSET(set); res.status != http.StatusAccepted {
		t.Fatalf("SET: %d %s", res.status, res.body)
	}
	ident, err := h.store.GetIdentity(context.Background(), h.iss.URL(), "alice")
	if err != nil || ident.Email != "alice.new@example.com" || ident.EmailVerified {
		t.Fatalf("identity %+v %v", ident, err)
	}
	u, _ := h.store.GetUser(context.Background(), alice.User.ID)
	if u.Email != "alice@example.com" {
		t.Fatalf("the user's email changed: %q", u.Email)
	}
	ev, _ := h.store.ListAudit(context.Background(), storage.AuditFilter{UserID: alice.User.ID, Type: exchange.EventSignalIdentifierChanged})
	if len(ev) != 1 {
		t.Fatalf("audit: %+v", ev)
	}
	// Its sessions live on.
	h.refreshOK(alice.RefreshToken)
}

// An SSF transmitter names the subject in the top-level sub_id (CAEP
// session-revoked): the same mapping applies.
func TestSignalSSFSubID(t *testing.T) {
	h := newHarness(t, withSignals())
	alice := h.exchangeOK("corp", h.idToken("alice", nil))
	set := h.set(providertest.MintOptions{}, exchange.SETCAEPSessionRevoked, "alice", map[string]any{
		"sub_id": map[string]any{"format": "iss_sub", "iss": h.iss.URL(), "sub": "alice"},
		"events": map[string]any{exchange.SETCAEPSessionRevoked: map[string]any{"event_timestamp": time.Now().Unix()}},
	})
	if res := h.postSET(set); res.status != http.StatusAccepted {
		t.Fatalf("SET: %d %s", res.status, res.body)
	}
	res := h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": alice.RefreshToken})
	assertError(t, res, http.StatusBadRequest, "invalid_grant", exchange.ReasonRevoked)
}

// TestSignalEmitsWebhooks: what a signal changes reaches the app as
// webhooks, written to the outbox in the transaction of the change:
// session.revoked (reason upstream_signal) for sessions-revoked, and
// user.disabled then session.revoked for account-disabled.
func TestSignalEmitsWebhooks(t *testing.T) {
	h := newHarness(t, withSignals(), func(c *harnessConfig) {
		c.webhooks = []exchange.WebhookTarget{{Name: "app"}}
	})
	alice := h.exchangeOK("corp", h.idToken("alice", nil))
	bob := h.exchangeOK("corp", h.idToken("bob", nil))
	outbox := func(userID string) []storage.OutboxRecord {
		t.Helper()
		recs, err := h.store.ListOutbox(context.Background(), storage.OutboxFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var mine []storage.OutboxRecord
		for _, r := range recs {
			if r.UserID == userID {
				mine = append(mine, r)
			}
		}
		return mine
	}
	before := len(outbox(alice.User.ID))
	if res := h.postSET(h.set(providertest.MintOptions{}, exchange.SETSessionsRevoked, "alice", nil)); res.status != http.StatusAccepted {
		t.Fatalf("SET: %d %s", res.status, res.body)
	}
	got := outbox(alice.User.ID)[before:]
	if len(got) != 1 || got[0].Type != exchange.WebhookSessionRevoked || !strings.Contains(string(got[0].Payload), `"reason":"upstream_signal"`) {
		t.Fatalf("after sessions-revoked, alice's new events: %+v", got)
	}

	before = len(outbox(bob.User.ID))
	if res := h.postSET(h.set(providertest.MintOptions{}, exchange.SETAccountDisabled, "bob", nil)); res.status != http.StatusAccepted {
		t.Fatalf("SET: %d %s", res.status, res.body)
	}
	got = outbox(bob.User.ID)[before:]
	if len(got) != 2 || got[0].Type != exchange.WebhookUserDisabled || got[1].Type != exchange.WebhookSessionRevoked {
		t.Fatalf("after account-disabled, bob's new events: %+v", got)
	}
}
