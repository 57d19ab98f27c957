package main

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/authex/authex/mail/mailtest"
	"github.com/authex/authex/storage/postgres/pgtest"
)

var mailedToken = regexp.MustCompile(`token=((?:ve|pr)\.[A-Za-z0-9_-]{43})`)

func mailedTokenIn(t *testing.T, m mailtest.Delivered) string {
	t.Helper()
	got := mailedToken.FindStringSubmatch(m.Text)
	if got == nil {
		t.Fatalf("no token in:\n%s", m.Text)
	}
	return got[1]
}

// The real binary, two instances on one PostgreSQL schema, mailing through
// a real SMTP server: a link mailed by A is spent on B, once; the token
// storage, the throttles and the session revocation are the database's.
func TestPostgresEmailVerificationAndReset(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	t.Setenv("AUTHEX_PG_DSN", dsn)
	smtp := mailtest.Start(t, mailtest.Plain)
	dir := t.TempDir()
	var cfgs, bases []string
	for _, name := range []string{"a", "b"} {
		port := freePort(t)
		path := pgConfigWith(t, dir, name, port, schema, `  password: { type: password, memory: 4096, iterations: 1 }`, fmt.Sprintf(`email:
  transport: smtp
  from: "authex <no-reply@example.com>"
  smtp: { host: 127.0.0.1, port: %d, tls: none }
  links: { verify_email: "http://app.test/verify?token={token}", reset_password: "http://app.test/reset?token={token}" }
  retry: { attempts: 3, initial: 50ms, max: 200ms }`, smtp.Port))
		cfgs, bases = append(cfgs, path), append(bases, fmt.Sprintf("http://127.0.0.1:%d", port))
	}
	ps := startAll(t, "", cfgs, bases)
	t.Cleanup(func() {
		ps[1].stop(t)
		ps[0].stop(t)
	})
	a, b := bases[0], bases[1]

	reg := postJSON(t, a+"/v1/register", map[string]any{"email": "pg@example.com", "password": "the first passphrase"})
	access := reg["access_token"].(string)
	verify := mailedTokenIn(t, smtp.WaitFor(t, "pg@example.com", 0))
	status, body := call(t, "POST", b+"/v1/email/verify", "", map[string]any{"token": verify})
	if status != 200 || body["email_verified"] != true {
		t.Fatalf("verify on B: %d %v", status, body)
	}
	status, body = call(t, "POST", a+"/v1/email/verify", "", map[string]any{"token": verify})
	wantError(t, "verify token reused on A", status, body, 400, "invalid_request", "invalid_email_token")
	status, body = call(t, "GET", a+"/v1/me", access, nil)
	if status != 200 || body["email_verified"] != true {
		t.Fatalf("/v1/me on A: %d %v", status, body)
	}

	status, body = call(t, "POST", a+"/v1/password/forgot", "", map[string]any{"email": "pg@example.com"})
	if status != 202 {
		t.Fatalf("forgot: %d %v", status, body)
	}
	reset := mailedTokenIn(t, smtp.WaitFor(t, "pg@example.com", 1))
	status, body = call(t, "POST", b+"/v1/password/reset", "", map[string]any{"token": reset, "password": "the second passphrase"})
	if status != 200 || body["revoked"] != float64(1) {
		t.Fatalf("reset on B: %d %v", status, body)
	}
	status, body = call(t, "POST", a+"/v1/password/reset", "", map[string]any{"token": reset, "password": "a third passphrase"})
	wantError(t, "reset token reused on A", status, body, 400, "invalid_request", "invalid_email_token")
	status, body = call(t, "POST", a+"/v1/login", "", map[string]any{"email": "pg@example.com", "password": "the first passphrase"})
	wantError(t, "old password on A", status, body, 401, "invalid_credentials", "invalid_credentials")
	status, _ = call(t, "GET", a+"/v1/me", access, nil)
	if status != 401 {
		t.Fatalf("old session after reset: %d", status)
	}
	postJSON(t, b+"/v1/login", map[string]any{"email": "pg@example.com", "password": "the second passphrase"})
}
