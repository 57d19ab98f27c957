package web_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/mail"
	"github.com/authex/authex/mail/mailtest"
	"github.com/authex/authex/storage"
)

// withEmail sends mail through a real SMTP server the test started.
func withEmail(cfg exchange.EmailConfig) harnessOption {
	return func(c *harnessConfig) { c.email = &cfg }
}

// emailHarness is a harness with password accounts and mail sent to an
// in-process SMTP server (plain SMTP on loopback).
func emailHarness(t *testing.T, mod ...func(*exchange.EmailConfig)) (*harness, *mailtest.Server) {
	t.Helper()
	srv := mailtest.Start(t, mailtest.Plain)
	sender, err := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, TLS: mail.TLSNone,
		From: "Authex <no-reply@example.com>", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := mail.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	cfg := exchange.EmailConfig{Sender: sender, Templates: tmpl,
		VerifyURL:    "https://app.example.com/verify-email?token={token}",
		ResetURL:     "https://app.example.com/reset-password/{uid}/{token}",
		AddressBurst: 20, IPBurst: 50, Window: time.Hour,
		Retry: mail.Retry{Attempts: 4, Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}}
	for _, m := range mod {
		m(&cfg)
	}
	h := newHarness(t, withPassword(passwordConfig()), withEmail(cfg), withCompat("djrestauth"))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.svc.CloseEmail(ctx)
	})
	return h, srv
}

// waitMail waits for the message as waitFor does, then until every
// delivered message's send is audited (the worker audits after the
// relay's answer), so a snapshot taken next is stable.
func waitMail(t *testing.T, h *harness, srv *mailtest.Server, to string, skip int) mailtest.Delivered {
	t.Helper()
	m := srv.WaitFor(t, to, skip)
	deadline := time.Now().Add(5 * time.Second)
	for len(auditOf(t, h, exchange.EventEmailSent)) < len(srv.Messages()) {
		if time.Now().After(deadline) {
			t.Fatal("a delivered message's send was never audited")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return m
}

var tokenInLink = regexp.MustCompile(`(?:token=|/)((?:ve|pr)\.[A-Za-z0-9_-]{43})`)

// linkToken reads the token out of a delivered message's text part, and
// checks the HTML part carries the same link.
func linkToken(t *testing.T, m mailtest.Delivered) string {
	t.Helper()
	got := tokenInLink.FindStringSubmatch(m.Text)
	if got == nil {
		t.Fatalf("no token in the message text:\n%s", m.Text)
	}
	tok, err := url.QueryUnescape(got[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.HTML, got[1]) {
		t.Fatalf("the HTML part lacks the link:\n%s", m.HTML)
	}
	return tok
}

// register -> verification mail -> verify -> the email is in the
// verified-email index, vouched for by "password"; the token is single-use.
func TestEmailVerification(t *testing.T) {
	h, srv := emailHarness(t)
	tk := h.register("Pat@Example.com", goodPassword, "Pat")
	if tk.User.EmailVerified {
		t.Fatal("a new password account is verified")
	}
	m := waitMail(t, h, srv, "Pat@Example.com", 0)
	if m.Header.Get("Subject") != "Confirm your email address" || m.From != "no-reply@example.com" {
		t.Fatalf("message %v from %s", m.Header, m.From)
	}
	token := linkToken(t, m)
	if !strings.HasPrefix(token, "ve.") {
		t.Fatalf("token %q", token)
	}
	if _, err := h.store.GetUserByVerifiedEmail(t.Context(), "pat@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("verified index before verification: %v", err)
	}
	res := h.postJSON("/v1/email/verify", map[string]string{"token": token})
	if res.status != http.StatusOK || res.json(t)["email_verified"] != true {
		t.Fatalf("verify: %d %s", res.status, res.body)
	}
	u, err := h.store.GetUserByVerifiedEmail(t.Context(), "pat@example.com")
	if err != nil || u.ID != tk.User.ID || u.EmailVerifiedBy != exchange.PasswordProvider {
		t.Fatalf("verified index: %+v %v", u, err)
	}
	me := h.get("/v1/me", tk.AccessToken).json(t)
	if me["email_verified"] != true {
		t.Fatalf("/v1/me after verification: %v", me)
	}
	// Spent: a second use writes nothing.
	before := h.snapshot()
	assertError(t, h.postJSON("/v1/email/verify", map[string]string{"token": token}), 400, "invalid_request", exchange.ReasonInvalidEmailToken)
	h.assertUnchanged(before)
	// Asking again once verified is refused.
	assertError(t, h.postJSON("/v1/email/verify/send", map[string]string{}, "Authorization", "Bearer "+tk.AccessToken),
		409, "conflict", exchange.ReasonEmailAlreadyVerified)
	if ev := auditOf(t, h, exchange.EventUserEmailVerified); len(ev) != 1 {
		t.Fatalf("%d %s events", len(ev), exchange.EventUserEmailVerified)
	}
}

// On request: POST /v1/email/verify/send mails a new link; an earlier one
// still works until used or expired.
func TestEmailVerificationOnRequest(t *testing.T) {
	h, srv := emailHarness(t)
	tk := h.register("kim@example.com", goodPassword, "")
	waitMail(t, h, srv, "kim@example.com", 0)
	res := h.postJSON("/v1/email/verify/send", map[string]string{}, "Authorization", "Bearer "+tk.AccessToken)
	if res.status != http.StatusAccepted {
		t.Fatalf("send: %d %s", res.status, res.body)
	}
	token := linkToken(t, waitMail(t, h, srv, "kim@example.com", 1))
	// Expired: refused, nothing written.
	h.clock.Advance(exchange.DefaultVerifyTTL + time.Second)
	before := h.snapshot()
	assertError(t, h.postJSON("/v1/email/verify", map[string]string{"token": token}), 400, "invalid_request", exchange.ReasonInvalidEmailToken)
	h.assertUnchanged(before)
	assertError(t, h.postJSON("/v1/email/verify/send", map[string]string{}), 401, "invalid_token", exchange.ReasonMissingToken)
}

// A verified password account is vouched for by "password", which is
// never trusted for email: an auto-linking provider's identity with the
// same address is not joined to it.
func TestVerifiedPasswordEmailNeverAutoLinks(t *testing.T) {
	h, srv := emailHarness(t)
	tk := h.register("sam@example.com", goodPassword, "")
	token := linkToken(t, waitMail(t, h, srv, "sam@example.com", 0))
	if res := h.postJSON("/v1/email/verify", map[string]string{"token": token}); res.status != http.StatusOK {
		t.Fatalf("verify: %d %s", res.status, res.body)
	}
	res := h.postJSON("/v1/exchange", map[string]any{"provider": "google", "id_token": h.idToken("sam", nil)})
	if res.status == http.StatusOK && decodeTokens(t, res).User.ID == tk.User.ID {
		t.Fatal("a google identity was linked automatically into the password account")
	}
	ids, err := h.store.ListIdentities(t.Context(), tk.User.ID)
	if err != nil || len(ids) != 1 || ids[0].Provider != exchange.PasswordProvider {
		t.Fatalf("password account identities: %+v %v", ids, err)
	}
	u, _ := h.store.GetUser(t.Context(), tk.User.ID)
	if u.PasswordHash == "" {
		t.Fatal("the password account was claimed")
	}
}

// forgot -> mail -> reset: the old password and every old session are
// refused; the new password works; the link works once.
func TestPasswordResetFlow(t *testing.T) {
	h, srv := emailHarness(t)
	first := h.register("lee@example.com", goodPassword, "Lee")
	second := h.loginOK("lee@example.com", goodPassword)
	res := h.postJSON("/v1/password/forgot", map[string]string{"email": "LEE@example.com"})
	if res.status != http.StatusAccepted {
		t.Fatalf("forgot: %d %s", res.status, res.body)
	}
	m := waitMail(t, h, srv, "lee@example.com", 1) // 0 is the verification mail
	if m.Header.Get("Subject") != "Reset your password" {
		t.Fatalf("subject %q", m.Header.Get("Subject"))
	}
	token := linkToken(t, m)
	if !strings.Contains(m.Text, "/reset-password/"+exchange.UIDOf(first.User.ID)+"/") {
		t.Fatalf("link lacks the uid:\n%s", m.Text)
	}
	// A refused new password writes nothing and leaves the token usable.
	before := h.snapshot()
	assertError(t, h.postJSON("/v1/password/reset", map[string]string{"token": token, "password": "short"}),
		400, "invalid_request", exchange.ReasonPasswordTooShort)
	h.assertUnchanged(before)

	const newPassword = "a brand new passphrase"
	res = h.postJSON("/v1/password/reset", map[string]string{"token": token, "password": newPassword})
	if res.status != http.StatusOK || res.json(t)["revoked"] != float64(2) {
		t.Fatalf("reset: %d %s", res.status, res.body)
	}
	assertError(t, h.login("lee@example.com", goodPassword), 401, "invalid_credentials", exchange.ReasonInvalidCredentials)
	for _, old := range []tokens{first, second} {
		assertError(t, h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": old.RefreshToken}), 400, "invalid_grant", "revoked")
		if r := h.get("/v1/me", old.AccessToken); r.status != http.StatusUnauthorized {
			t.Fatalf("old access token after reset: %d %s", r.status, r.body)
		}
	}
	h.loginOK("lee@example.com", newPassword)
	// Reused: refused, nothing written.
	before = h.snapshot()
	assertError(t, h.postJSON("/v1/password/reset", map[string]string{"token": token, "password": "yet another passphrase"}),
		400, "invalid_request", exchange.ReasonInvalidEmailToken)
	h.assertUnchanged(before)
	if ev := auditOf(t, h, exchange.EventUserPasswordReset); len(ev) != 1 {
		t.Fatalf("%d reset events", len(ev))
	}
}

// Forged, malformed, wrong-purpose, expired tokens, and a token issued
// before any password change: all refused alike, nothing written.
func TestPasswordResetTokenRefusals(t *testing.T) {
	h, srv := emailHarness(t)
	tk := h.register("ann@example.com", goodPassword, "")
	verifyTok := linkToken(t, waitMail(t, h, srv, "ann@example.com", 0))
	h.postJSON("/v1/password/forgot", map[string]string{"email": "ann@example.com"})
	resetTok := linkToken(t, waitMail(t, h, srv, "ann@example.com", 1))
	h.postJSON("/v1/password/forgot", map[string]string{"email": "ann@example.com"})
	changedTok := linkToken(t, waitMail(t, h, srv, "ann@example.com", 2))

	forged := "pr." + strings.Repeat("A", 42) + "E"
	for name, tok := range map[string]string{
		"forged": forged, "malformed": "pr.not-a-token", "verify token": verifyTok,
		"reset token flipped": resetTok[:len(resetTok)-2] + "AA", "empty prefix": "." + resetTok[3:],
	} {
		before := h.snapshot()
		assertError(t, h.postJSON("/v1/password/reset", map[string]string{"token": tok, "password": "a brand new passphrase"}),
			400, "invalid_request", exchange.ReasonInvalidEmailToken)
		h.assertUnchanged(before)
		_ = name
	}
	assertError(t, h.postJSON("/v1/password/reset", map[string]string{"password": "a brand new passphrase"}), 400, "invalid_request", exchange.ReasonMissingToken)

	// Any password change makes an outstanding reset token useless.
	res := h.postJSON("/v1/me/password", map[string]string{"current_password": goodPassword, "new_password": "changed it myself"},
		"Authorization", "Bearer "+tk.AccessToken)
	if res.status != http.StatusOK {
		t.Fatalf("change: %d %s", res.status, res.body)
	}
	before := h.snapshot()
	assertError(t, h.postJSON("/v1/password/reset", map[string]string{"token": changedTok, "password": "a brand new passphrase"}),
		400, "invalid_request", exchange.ReasonInvalidEmailToken)
	h.assertUnchanged(before)

	// Expired.
	h.clock.Advance(exchange.DefaultResetTTL + time.Second)
	before = h.snapshot()
	assertError(t, h.postJSON("/v1/password/reset", map[string]string{"token": resetTok, "password": "a brand new passphrase"}),
		400, "invalid_request", exchange.ReasonInvalidEmailToken)
	h.assertUnchanged(before)
	h.loginOK("ann@example.com", "changed it myself")
}

// An unknown email answers exactly as a known one, and gets no mail.
func TestForgotPasswordNoEnumeration(t *testing.T) {
	h, srv := emailHarness(t)
	h.register("bo@example.com", goodPassword, "")
	waitMail(t, h, srv, "bo@example.com", 0)
	known := h.postJSON("/v1/password/forgot", map[string]string{"email": "bo@example.com"})
	unknown := h.postJSON("/v1/password/forgot", map[string]string{"email": "nobody@example.com"})
	if known.status != http.StatusAccepted || known.status != unknown.status || string(known.body) != string(unknown.body) {
		t.Fatalf("known %d %s, unknown %d %s", known.status, known.body, unknown.status, unknown.body)
	}
	for _, k := range []string{"Content-Type", "Content-Length"} {
		if known.header.Get(k) != unknown.header.Get(k) {
			t.Fatalf("header %s differs: %q vs %q", k, known.header.Get(k), unknown.header.Get(k))
		}
	}
	waitMail(t, h, srv, "bo@example.com", 1)
	time.Sleep(100 * time.Millisecond)
	for _, m := range srv.Messages() {
		if m.To == "nobody@example.com" {
			t.Fatal("mail sent to an unknown address")
		}
	}
	// A bad address is refused the same for everyone (syntax only).
	assertError(t, h.postJSON("/v1/password/forgot", map[string]string{"email": "not an email"}), 400, "invalid_request", exchange.ReasonInvalidEmail)
}

// The relay is down for a while: the request still answers at once, the
// send is retried with backoff, and every attempt is audited without the
// token.
func TestEmailRetriedWhenSMTPDown(t *testing.T) {
	h, srv := emailHarness(t)
	srv.FailNext(2)
	tk := h.register("dee@example.com", goodPassword, "")
	token := linkToken(t, waitMail(t, h, srv, "dee@example.com", 0))
	if srv.Attempts() != 3 {
		t.Fatalf("%d attempts, want 3", srv.Attempts())
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(auditOf(t, h, exchange.EventEmailSent)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	retries, sent := auditOf(t, h, exchange.EventEmailRetrying), auditOf(t, h, exchange.EventEmailSent)
	if len(retries) != 2 || len(sent) != 1 || sent[0].UserID != tk.User.ID {
		t.Fatalf("audit: %+v %+v", retries, sent)
	}
	all, _ := h.store.ListAudit(t.Context(), storage.AuditFilter{})
	for _, e := range all {
		if strings.Contains(e.Detail, token) || strings.Contains(e.Detail, token[3:]) {
			t.Fatalf("audit event %s holds the token", e.Type)
		}
	}
}

// A relay that never comes back: the sign-up still succeeds and the final
// failure is audited.
func TestEmailGivenUpIsAudited(t *testing.T) {
	h, srv := emailHarness(t)
	srv.FailNext(1000)
	h.register("eve@example.com", goodPassword, "")
	deadline := time.Now().Add(5 * time.Second)
	for len(auditOf(t, h, exchange.EventEmailFailed)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f := auditOf(t, h, exchange.EventEmailFailed); len(f) != 1 || !strings.Contains(f[0].Detail, "attempt 4") {
		t.Fatalf("failed events: %+v", f)
	}
}

// Mail is throttled per recipient (silently: forgot answers the same) and
// per client IP (429).
func TestEmailThrottles(t *testing.T) {
	h, srv := emailHarness(t, func(c *exchange.EmailConfig) { c.AddressBurst = 2; c.IPBurst = 4 })
	h.register("fay@example.com", goodPassword, "") // mail 1 of fay's 2
	waitMail(t, h, srv, "fay@example.com", 0)
	for range 3 {
		if res := h.postJSON("/v1/password/forgot", map[string]string{"email": "fay@example.com"}); res.status != http.StatusAccepted {
			t.Fatalf("forgot: %d %s", res.status, res.body)
		}
	}
	waitMail(t, h, srv, "fay@example.com", 1)
	deadline := time.Now().Add(5 * time.Second)
	for len(auditOf(t, h, exchange.EventEmailThrottled)) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(auditOf(t, h, exchange.EventEmailThrottled)); n != 2 {
		t.Fatalf("%d throttled events, want 2", n)
	}
	h.postJSON("/v1/password/forgot", map[string]string{"email": "x@example.com"})
	res := h.postJSON("/v1/password/forgot", map[string]string{"email": "y@example.com"})
	assertError(t, res, 429, "rate_limited", exchange.ReasonRateLimited)
}

// Without the email section every feature that needs mail says so.
func TestEmailNotConfigured(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()))
	tk := h.register("gus@example.com", goodPassword, "")
	before := h.snapshot()
	for _, r := range []response{
		h.postJSON("/v1/email/verify/send", map[string]string{}, "Authorization", "Bearer "+tk.AccessToken),
		h.postJSON("/v1/email/verify", map[string]string{"token": "ve." + strings.Repeat("A", 43)}),
		h.postJSON("/v1/password/forgot", map[string]string{"email": "gus@example.com"}),
		h.postJSON("/v1/password/reset", map[string]string{"token": "pr." + strings.Repeat("A", 43), "password": "a brand new passphrase"}),
	} {
		assertError(t, r, 501, "not_implemented", exchange.ReasonEmailNotConfigured)
	}
	h.assertUnchanged(before)
}

func auditOf(t *testing.T, h *harness, typ string) []storage.AuditEvent {
	t.Helper()
	ev, err := h.store.ListAudit(t.Context(), storage.AuditFilter{Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}
