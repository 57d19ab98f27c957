package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/authex/authex/exchange"
)

func drfBody(t *testing.T, res response, status int, field, want, reason string) {
	t.Helper()
	if res.status != status {
		t.Fatalf("status %d, want %d: %s", res.status, status, res.body)
	}
	m := res.json(t)
	list, _ := m[field].([]any)
	if len(list) != 1 || !strings.Contains(list[0].(string), want) || m["reason"] != reason {
		t.Fatalf("%s = %v, reason %v; want %q %q: %s", field, m[field], m["reason"], want, reason, res.body)
	}
}

// dj-rest-auth's password/reset/ -> mail -> password/reset/confirm/ with
// its field names, answers and error shapes; then password/change/.
func TestDjRestAuthPasswordRoutes(t *testing.T) {
	h, srv := emailHarness(t)
	tk := h.register("joy@example.com", goodPassword, "Joy")
	waitMail(t, h, srv, "joy@example.com", 0)

	res := h.postJSON("/api/auth/password/reset/", map[string]string{"email": "joy@example.com"})
	unknown := h.postJSON("/api/auth/password/reset/", map[string]string{"email": "nobody@example.com"})
	if res.status != http.StatusOK || string(res.body) != string(unknown.body) || res.json(t)["detail"] != "Password reset e-mail has been sent." {
		t.Fatalf("reset: %d %s / %s", res.status, res.body, unknown.body)
	}
	drfBody(t, h.postJSON("/api/auth/password/reset/", map[string]string{}), 400, "email", "This field is required.", exchange.ReasonMissingField)
	drfBody(t, h.postJSON("/api/auth/password/reset/", map[string]string{"email": "nope"}), 400, "email", "valid", exchange.ReasonInvalidEmail)

	token := linkToken(t, waitMail(t, h, srv, "joy@example.com", 1))
	uid := exchange.UIDOf(tk.User.ID)
	confirm := func(uid, token, p1, p2 string) response {
		return h.postJSON("/api/auth/password/reset/confirm/", map[string]string{"uid": uid, "token": token, "new_password1": p1, "new_password2": p2})
	}
	before := h.snapshot()
	drfBody(t, confirm(uid, token, "a brand new passphrase", "another passphrase"), 400, "new_password2", "didn’t match", exchange.ReasonPasswordMismatch)
	drfBody(t, confirm(uid, token, "short", "short"), 400, "new_password2", "at least", exchange.ReasonPasswordTooShort)
	drfBody(t, confirm(uid, "pr."+strings.Repeat("A", 43), "a brand new passphrase", "a brand new passphrase"), 400, "token", "Invalid value", exchange.ReasonInvalidEmailToken)
	drfBody(t, confirm(exchange.UIDOf("someone-else"), token, "a brand new passphrase", "a brand new passphrase"), 400, "token", "Invalid value", exchange.ReasonInvalidEmailToken)
	drfBody(t, confirm("", token, "", "x"), 400, "uid", "This field is required.", exchange.ReasonMissingField)
	h.assertUnchanged(before)
	res = confirm(uid, token, "a brand new passphrase", "a brand new passphrase")
	if res.status != http.StatusOK || res.json(t)["detail"] != "Password has been reset with the new password." {
		t.Fatalf("confirm: %d %s", res.status, res.body)
	}
	if r := h.get("/api/auth/user/", tk.AccessToken); r.status != http.StatusUnauthorized {
		t.Fatalf("old session after reset: %d %s", r.status, r.body)
	}

	in := h.loginOK("joy@example.com", "a brand new passphrase")
	change := func(old, p1, p2 string) response {
		return h.postJSON("/api/auth/password/change/", map[string]string{"old_password": old, "new_password1": p1, "new_password2": p2},
			"Authorization", "Bearer "+in.AccessToken)
	}
	before = h.snapshot()
	drfBody(t, change("a brand new passphrase", "x1 passphrase long", "x2 passphrase long"), 400, "new_password2", "didn’t match", exchange.ReasonPasswordMismatch)
	drfBody(t, change("", "third passphrase here", "third passphrase here"), 400, "old_password", "", exchange.ReasonMissingCurrentPassword)
	drfBody(t, change("wrong wrong wrong", "third passphrase here", "third passphrase here"), 400, "old_password", "entered incorrectly", exchange.ReasonInvalidCredentials)
	if r := h.postJSON("/api/auth/password/change/", map[string]string{"new_password1": "a", "new_password2": "a"}); r.status != http.StatusUnauthorized {
		t.Fatalf("change without a token: %d %s", r.status, r.body)
	}
	// The wrong old password counts against the login throttle (an audit
	// of nothing else): only the budgets moved, nothing in the snapshot.
	h.assertUnchanged(before)
	res = change("a brand new passphrase", "third passphrase here", "third passphrase here")
	if res.status != http.StatusOK || res.json(t)["detail"] != "New password has been saved." {
		t.Fatalf("change: %d %s", res.status, res.body)
	}
	h.loginOK("joy@example.com", "third passphrase here")
}
