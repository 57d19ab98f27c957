package mail_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authex/authex/mail"
	"github.com/authex/authex/mail/mailtest"
)

func message() mail.Message {
	return mail.Message{To: "pat@example.com", Subject: "Reset your password",
		Text: "open https://app.example.com/reset?token=pr.abc", HTML: `<a href="https://app.example.com/reset?token=pr.abc">reset</a>`}
}

// Each TLS mode delivers to a real SMTP server; AUTH is used when set.
func TestSMTPModes(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode mailtest.Mode
		tls  string
		auth bool
	}{
		{"plain", mailtest.Plain, mail.TLSNone, false},
		{"starttls+auth", mailtest.StartTLS, mail.TLSStartTLS, true},
		{"implicit+auth", mailtest.Implicit, mail.TLSImplicit, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := mailtest.Start(t, tc.mode)
			cfg := mail.SMTPConfig{Host: srv.Host, Port: srv.Port, TLS: tc.tls, From: "Authex <no-reply@example.com>", Timeout: 5 * time.Second}
			if tc.mode != mailtest.Plain {
				cfg.TLSConfig = srv.ClientTLS()
			}
			if tc.auth {
				srv.Username, srv.Password = "relay", "s3cret"
				cfg.Username, cfg.Password = "relay", "s3cret"
			}
			s, err := mail.NewSMTP(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send(t.Context(), message()); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := srv.WaitFor(t, "pat@example.com", 0)
			if got.From != "no-reply@example.com" || got.Header.Get("Subject") != "Reset your password" ||
				!strings.Contains(got.Text, "token=pr.abc") || !strings.Contains(got.HTML, `href="https://app.example.com/reset?token=pr.abc"`) {
				t.Fatalf("delivered %+v", got)
			}
		})
	}
}

// STARTTLS is required when configured: a server without it is refused
// rather than sent to in clear.
func TestSMTPStartTLSRequired(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Plain)
	s, err := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, TLS: mail.TLSStartTLS, From: "no-reply@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(t.Context(), message()); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send without STARTTLS = %v", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages delivered in clear", n)
	}
}

// A header cannot be injected through the recipient or the subject.
func TestSMTPRefusesHeaderInjection(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Plain)
	s, _ := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, TLS: mail.TLSNone, From: "no-reply@example.com"})
	for _, m := range []mail.Message{
		{To: "pat@example.com\r\nBcc: eve@example.com", Subject: "x"},
		{To: "Pat <pat@example.com>", Subject: "x"},
		{To: "pat@example.com", Subject: "x\r\nBcc: eve@example.com"},
	} {
		if err := s.Send(t.Context(), m); err == nil {
			t.Fatalf("Send(%q, %q) accepted", m.To, m.Subject)
		}
	}
	if srv.Attempts() != 0 {
		t.Fatal("a refused message reached the server")
	}
}

// The queue retries a failing relay with backoff until it accepts, and
// reports every attempt.
func TestQueueRetries(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Plain)
	srv.FailNext(2)
	s, _ := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, TLS: mail.TLSNone, From: "no-reply@example.com"})
	var mu sync.Mutex
	var outcomes []mail.Outcome
	q := mail.NewQueue(s, 4, 1, mail.Retry{Attempts: 5, Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond}, func(o mail.Outcome) {
		mu.Lock()
		outcomes = append(outcomes, o)
		mu.Unlock()
	})
	if err := q.Enqueue(mail.Job{Message: message(), Meta: "m1"}); err != nil {
		t.Fatal(err)
	}
	srv.WaitFor(t, "pat@example.com", 0)
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(outcomes) != 3 || outcomes[0].Err == nil || outcomes[1].Err == nil || outcomes[2].Err != nil ||
		!outcomes[2].Final || outcomes[0].Final || outcomes[2].Attempt != 3 || outcomes[2].Job.Meta != "m1" {
		t.Fatalf("outcomes = %+v", outcomes)
	}
	if err := q.Enqueue(mail.Job{Message: message()}); err != mail.ErrClosed {
		t.Fatalf("Enqueue after Close = %v", err)
	}
}

// A relay that stays down: the queue gives up after Attempts, reporting a
// final failure.
func TestQueueGivesUp(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Plain)
	srv.FailNext(100)
	s, _ := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, TLS: mail.TLSNone, From: "no-reply@example.com"})
	final := make(chan mail.Outcome, 1)
	q := mail.NewQueue(s, 4, 1, mail.Retry{Attempts: 3, Initial: time.Millisecond, Max: 5 * time.Millisecond}, func(o mail.Outcome) {
		if o.Final {
			final <- o
		}
	})
	defer q.Close(context.Background())
	if err := q.Enqueue(mail.Job{Message: message()}); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-final:
		if o.Err == nil || o.Attempt != 3 || srv.Attempts() != 3 {
			t.Fatalf("final = %+v after %d attempts", o, srv.Attempts())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no final outcome")
	}
}

// An operator's template replaces the default of the same name; the rest
// stay; a broken one is refused with its file name.
func TestTemplatesOverride(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "reset_password.subject.tmpl"), []byte("Example: new password for {{.Email}}"), 0o600)
	os.WriteFile(filepath.Join(dir, "reset_password.html.tmpl"), []byte(`<a href="{{.Link}}">go</a> {{.Name}}`), 0o600)
	tp, err := mail.LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tp.Render(mail.KindResetPassword, "pat@example.com", mail.Data{Email: "pat@example.com", Name: "<b>Pat</b>", Link: "https://a.example/r?token=x&y=1", Expires: "30m0s"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Example: new password for pat@example.com" || !strings.Contains(m.Text, "https://a.example/r?token=x&y=1") ||
		m.HTML != `<a href="https://a.example/r?token=x&amp;y=1">go</a> &lt;b&gt;Pat&lt;/b&gt;` {
		t.Fatalf("rendered %+v", m)
	}
	os.WriteFile(filepath.Join(dir, "verify_email.txt.tmpl"), []byte("{{.Nope}}"), 0o600)
	if _, err := mail.LoadTemplates(dir); err == nil || !strings.Contains(err.Error(), "verify_email.txt.tmpl") {
		t.Fatalf("broken template: %v", err)
	}
}
