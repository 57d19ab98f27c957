package web_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/mail"
)

// aiosmtpd starts Debian's python3-aiosmtpd, a real SMTP server from
// outside this project, delivering into a maildir, and returns its port
// and the maildir. .ci/run installs it and sets AUTHEX_TEST_AIOSMTPD=1,
// which makes its absence a failure; elsewhere the test is skipped when it
// is missing (make test needs only Go and gcc).
func aiosmtpd(t *testing.T) (port int, maildir string) {
	t.Helper()
	python := ""
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import aiosmtpd").Run() == nil {
			python = p
			break
		}
	}
	if python == "" {
		if os.Getenv("AUTHEX_TEST_AIOSMTPD") != "" {
			t.Fatal("AUTHEX_TEST_AIOSMTPD is set but python3 cannot import aiosmtpd (apt-get install python3-aiosmtpd)")
		}
		t.Skip("python3-aiosmtpd is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	maildir = filepath.Join(t.TempDir(), "maildir")
	cmd := exec.Command(python, "-m", "aiosmtpd", "-n", "-l", fmt.Sprintf("127.0.0.1:%d", port),
		"-c", "aiosmtpd.handlers.Mailbox", maildir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return port, maildir
		}
		if time.Now().After(deadline) {
			t.Fatalf("aiosmtpd did not listen: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// maildirToken waits for the n-th message in maildir (counting from 1)
// and returns the link token in it. The n-th message is the newest one:
// Maildir file names are not ordered by delivery (their microsecond part
// is not zero-padded), so messages are ordered by modification time, and
// the caller asks for one message at a time.
func maildirToken(t *testing.T, maildir string, n int) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		files, _ := filepath.Glob(filepath.Join(maildir, "new", "*"))
		if len(files) < n {
			continue
		}
		if len(files) > n {
			t.Fatalf("%d messages in %s, expected %d", len(files), maildir, n)
		}
		newest, newestTime := "", time.Time{}
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil && !fi.ModTime().Before(newestTime) {
				newest, newestTime = f, fi.ModTime()
			}
		}
		raw, err := os.ReadFile(newest)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		if err != nil {
			body = raw
		}
		got := tokenInLink.FindStringSubmatch(string(body))
		if got == nil {
			t.Fatalf("no link token in the delivered message:\n%s", raw)
		}
		return got[1]
	}
	t.Fatalf("fewer than %d messages in %s", n, maildir)
	return ""
}

// TestEmailThroughAiosmtpd runs verification and password reset against
// Debian's aiosmtpd: register -> mail -> verify; forgot -> mail -> reset ->
// the old password and the old session refused.
func TestEmailThroughAiosmtpd(t *testing.T) {
	port, maildir := aiosmtpd(t)
	sender, err := mail.NewSMTP(mail.SMTPConfig{Host: "127.0.0.1", Port: port, TLS: mail.TLSNone,
		From: "Authex <no-reply@example.com>", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := mail.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, withPassword(passwordConfig()), withEmail(exchange.EmailConfig{Sender: sender, Templates: tmpl,
		VerifyURL:    "https://app.example.com/verify-email?token={token}",
		ResetURL:     "https://app.example.com/reset-password?token={token}",
		AddressBurst: 20, IPBurst: 50, Window: time.Hour,
		Retry: mail.Retry{Attempts: 4, Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.svc.CloseEmail(ctx)
	})

	tk := h.register("sam@example.com", goodPassword, "Sam")
	verify := maildirToken(t, maildir, 1)
	if !strings.HasPrefix(verify, "ve.") {
		t.Fatalf("verification token %q", verify)
	}
	if res := h.postJSON("/v1/email/verify", map[string]string{"token": verify}); res.status != http.StatusOK {
		t.Fatalf("verify: %d %s", res.status, res.body)
	}
	if res := h.postJSON("/v1/password/forgot", map[string]string{"email": "sam@example.com"}); res.status != http.StatusOK && res.status != http.StatusAccepted {
		t.Fatalf("forgot: %d %s", res.status, res.body)
	}
	reset := maildirToken(t, maildir, 2)
	const newPassword = "a brand new passphrase 42"
	if res := h.postJSON("/v1/password/reset", map[string]string{"token": reset, "password": newPassword}); res.status != http.StatusOK {
		t.Fatalf("reset: %d %s", res.status, res.body)
	}
	assertError(t, h.postJSON("/v1/login", map[string]string{"email": "sam@example.com", "password": goodPassword}),
		http.StatusUnauthorized, "invalid_credentials", "invalid_credentials")
	if res := h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": tk.RefreshToken}); res.status != http.StatusBadRequest {
		t.Fatalf("an old session refreshed after the reset: %d %s", res.status, res.body)
	}
	if res := h.postJSON("/v1/login", map[string]string{"email": "sam@example.com", "password": newPassword}); res.status != http.StatusOK {
		t.Fatalf("login with the new password: %d %s", res.status, res.body)
	}
}
