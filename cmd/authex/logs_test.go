package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authex/authex/providers/providertest"
)

// TestLogsCarryNoSecrets runs a whole client life and an admin session
// against the real binary, refused requests included, then searches the
// captured log for every token and secret and each of their parts.
func TestLogsCarryNoSecrets(t *testing.T) {
	iss := providertest.NewIssuer(t)
	dir := t.TempDir()
	s := startOps(t, iss, dir, opsOptions{})

	var secrets []string
	jwtParts := func(tok string) {
		secrets = append(secrets, tok)
		secrets = append(secrets, strings.Split(tok, ".")...)
	}
	refreshParts := func(tok string) {
		// session_id.generation.MAC: the session id is an identifier the
		// log may name; the token and its MAC are secrets.
		parts := strings.Split(tok, ".")
		secrets = append(secrets, tok, parts[len(parts)-1])
	}

	ex, idToken := signIn(t, iss, s.base, "quiet")
	jwtParts(idToken)
	jwtParts(ex.AccessToken)
	refreshParts(ex.RefreshToken)
	r1, st := refresh(t, s.base, ex.RefreshToken)
	if st != http.StatusOK {
		t.Fatal(st)
	}
	jwtParts(r1.AccessToken)
	refreshParts(r1.RefreshToken)
	if st, _ := request(t, "GET", s.base+"/v1/me", r1.AccessToken); st != http.StatusOK {
		t.Fatal(st)
	}

	// Refusals, whose internals go to the log.
	tampered := idToken[:len(idToken)-8] + "AAAAAAAA"
	jwtParts(tampered)
	if st, _ := post(t, s.base+"/v1/exchange", map[string]any{"provider": "corp", "id_token": tampered}); st != http.StatusUnauthorized {
		t.Fatalf("tampered id_token: %d", st)
	}
	wrongAud := iss.Mint(t, map[string]any{"sub": "quiet", "aud": "not-us", "email": "quiet@example.com", "email_verified": true})
	jwtParts(wrongAud)
	post(t, s.base+"/v1/exchange", map[string]any{"provider": "corp", "id_token": wrongAud})
	badRefresh := r1.RefreshToken + "tampered"
	secrets = append(secrets, badRefresh)
	if st, _ := post(t, s.base+"/v1/token/refresh", map[string]any{"refresh_token": badRefresh}); st != http.StatusBadRequest {
		t.Fatalf("tampered refresh token: %d", st)
	}
	garbage := "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzbmVha3kifQ.c2VjcmV0LXNpZ25hdHVyZS1wYXJ0"
	jwtParts(garbage)
	request(t, "GET", s.base+"/v1/me", garbage)

	// Admin, right and wrong token, over HTTP and through the CLI.
	secrets = append(secrets, testAdminToken)
	wrongAdmin := "wrong-admin-token-7c2b9e41d0"
	secrets = append(secrets, wrongAdmin)
	if st, _ := request(t, "GET", s.admin+"/admin/v1/users", wrongAdmin); st != http.StatusUnauthorized {
		t.Fatal(st)
	}
	s.cliOK(t, "users", "list")
	s.cliOK(t, "users", "disable", ex.User.ID)
	s.cliOK(t, "users", "enable", ex.User.ID)
	s.cliOK(t, "keys", "rotate")
	s.cliOK(t, "audit")
	s.cliOK(t, "backup", filepath.Join(dir, "b.db"))

	// Password accounts: the passwords, right and wrong, are secrets too.
	const password, wrongPassword = "quiet-horse-battery-staple-42", "not-the-password-9f3e"
	secrets = append(secrets, password, wrongPassword)
	if st, raw := post(t, s.base+"/v1/register", map[string]any{"email": "pw@example.com", "password": password}); st != http.StatusOK {
		t.Fatalf("register: %d %s", st, raw)
	}
	if st, _ := post(t, s.base+"/v1/login", map[string]any{"email": "pw@example.com", "password": wrongPassword}); st != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", st)
	}
	st, raw := post(t, s.base+"/v1/login", map[string]any{"email": "pw@example.com", "password": password})
	if st != http.StatusOK {
		t.Fatalf("login: %d %s", st, raw)
	}
	var pw exchanged
	json.Unmarshal(raw, &pw)
	jwtParts(pw.AccessToken)
	refreshParts(pw.RefreshToken)

	// Logout, by refresh token and by bearer.
	ex2, _ := signIn(t, iss, s.base, "quiet")
	jwtParts(ex2.AccessToken)
	refreshParts(ex2.RefreshToken)
	if st, _ := post(t, s.base+"/v1/logout", map[string]any{"refresh_token": ex2.RefreshToken}); st != http.StatusOK {
		t.Fatal(st)
	}
	ex3, _ := signIn(t, iss, s.base, "quiet")
	jwtParts(ex3.AccessToken)
	refreshParts(ex3.RefreshToken)
	if st, _ := request(t, "POST", s.base+"/v1/logout", ex3.AccessToken); st != http.StatusOK {
		t.Fatal(st)
	}
	s.stop(t)

	logs := s.logs.String()
	requests := 0
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] != "request" {
			continue
		}
		requests++
		for _, k := range []string{"request_id", "method", "route", "status", "latency", "ip"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("request line lacks %s: %s", k, line)
			}
		}
	}
	if requests < 15 {
		t.Fatalf("only %d request lines logged", requests)
	}
	for _, sec := range secrets {
		if len(sec) < 12 {
			continue // a JWT header or generation number is not a secret
		}
		if strings.Contains(logs, sec) {
			t.Errorf("the log contains a secret (%d chars, starting %.6s...)", len(sec), sec)
		}
	}
	t.Logf("%d log lines (%d requests) searched for %d secrets and parts", strings.Count(logs, "\n"), requests, len(secrets))
}
