package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckEmail: config check refuses a bad email section with a
// key path for each problem, never printing the SMTP password.
func TestConfigCheckEmail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "email.yaml")
	tmplDir := filepath.Join(dir, "tmpl")
	if err := os.Mkdir(tmplDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(tmplDir, "reset_password.txt.tmpl"), "{{.Link")
	writeFile(t, path, `
server: { listen: ":8080", public_url: "https://auth.example.com" }
email:
  transport: smtp
  from: "not an address"
  smtp: { host: "smtp.example.com", tls: none, password: "hunter2-very-secret" }
  links: { verify_email: "https://app.example.com/verify", reset_password: "/reset?token={token}" }
  templates_dir: `+tmplDir+`
  reset_ttl: 48h
  retry: { attempts: 50 }
`)
	out, err := checkConfigFile(t, path, noEnv)
	if err == nil {
		t.Fatalf("accepted:\n%s", out)
	}
	outputHas(t, out,
		"email.from: must be an address",
		"email.smtp.tls: none sends mail",
		"email.smtp.username: is required with a password",
		"email.links.verify_email: must contain {token}",
		"email.links.reset_password: must be an absolute http(s) URL",
		"email.templates_dir: mail template reset_password.txt.tmpl",
		"email.reset_ttl: must be between 1m and 24h",
		"email.retry.attempts: must be between 1 and 20",
		"email: sends only password accounts' mail",
	)
	if strings.Contains(out, "hunter2") {
		t.Errorf("config check printed the SMTP password:\n%s", out)
	}

	// A good section, the password from a file; the log transport off
	// loopback is a warning.
	pwFile := filepath.Join(dir, "smtp-pass")
	writeFile(t, pwFile, "s3cret\n")
	writeFile(t, path, `
server: { listen: ":8080", public_url: "https://auth.example.com" }
providers: { password: { type: password } }
email:
  transport: smtp
  from: "Example <no-reply@example.com>"
  smtp: { host: "smtp.example.com", username: "relay", password_file: `+pwFile+` }
  links: { verify_email: "https://app.example.com/verify-email?token={token}", reset_password: "https://app.example.com/reset/{uid}/{token}" }
`)
	if out, err := checkConfigFile(t, path, noEnv); err != nil {
		t.Fatalf("refused:\n%s", out)
	}
	cfg, err := loadConfig(path, noEnv)
	if err != nil || cfg.Email.SMTP.Password != "s3cret" || cfg.Email.SMTP.Port != 587 || cfg.Email.SMTP.TLS != "starttls" {
		t.Fatalf("loaded %+v %v", cfg.Email, err)
	}
	writeFile(t, path, strings.Replace(strings.Replace(mustRead(t, path), "transport: smtp", "transport: log", 1), "  smtp: { host: \"smtp.example.com\", username: \"relay\", password_file: "+pwFile+" }\n", "", 1))
	out, err = checkConfigFile(t, path, noEnv)
	if err != nil || !strings.Contains(out, "warning: email.transport: log") {
		t.Fatalf("log transport off loopback: %v\n%s", err, out)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// config check -production refuses the log transport, a clear-text relay
// and http links (the example config, a development one, has all three
// but the relay).
func TestConfigCheckProductionEmail(t *testing.T) {
	_, out, err := checkProduction(t, readFile(t, "../../config.example.yaml"), noEnv)
	if err == nil {
		t.Fatal("config.example.yaml passed -production")
	}
	outputHas(t, out, "email.transport: log writes live", "email.links.verify_email: must be https", "email.links.reset_password: must be https")
	_, out, _ = checkProduction(t, `
server: { listen: ":8080", public_url: "https://auth.example.com" }
providers: { password: { type: password } }
email:
  transport: smtp
  from: "no-reply@example.com"
  smtp: { host: 127.0.0.1, port: 25, tls: none }
  links: { verify_email: "https://app.example.com/v?token={token}", reset_password: "https://app.example.com/r?token={token}" }
`, noEnv)
	outputHas(t, out, "email.smtp.tls: none: mail")
	if strings.Contains(out, "email.links") || strings.Contains(out, "email.transport") {
		t.Fatalf("a good email section refused:\n%s", out)
	}
}
