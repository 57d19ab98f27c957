package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	"github.com/authex/authex/storage/postgres/pgtest"
)

// TestUsernamesOnPostgres runs two instances on one PostgreSQL with the
// simplejwt profile: the tutorial's request sequence with a plain username
// (register on A, login on B, /user/, refresh, /user/), then 50
// registrations of one username at once, split across both instances:
// exactly one account gets it, every other answers username_taken.
func TestUsernamesOnPostgres(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	t.Setenv("AUTHEX_PG_DSN", dsn)
	dir := t.TempDir()
	var bases []string
	for _, name := range []string{"a", "b"} {
		port := freePort(t)
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		path := filepath.Join(dir, name+".yaml")
		writeFile(t, path, fmt.Sprintf(`
server: { listen: "127.0.0.1:%d", public_url: %q }
storage:
  driver: postgres
  postgres: { dsn: "${AUTHEX_PG_DSN}", schema: %q, max_conns: 8, connect_timeout: 2s }
providers:
  password:
    type: password
    memory: 4096
    iterations: 1
    throttle: { per_account: 5, per_ip: 200, register_per_ip: 200, window: 15m }
    hash_wait: 10s
compat: [ simplejwt ]
log: { format: json }
secrets: { kek: %q }
`, port, publicURL, schema, testKEK))
		srv := startServe(t, path, base, nil)
		defer srv.stop(t)
		bases = append(bases, base)
	}
	a, b := bases[0], bases[1]
	const pw = "a passphrase nobody guesses"

	status, reg := call(t, "POST", a+"/api/auth/register/", "", map[string]string{"username": "john", "email": "john@example.com",
		"password": pw, "password2": pw, "first_name": "John", "last_name": "Doe"})
	if status != 201 || reg["username"] != "john" || reg["first_name"] != "John" || reg["last_name"] != "Doe" {
		t.Fatalf("register on A: %d %v", status, reg)
	}
	status, pair := call(t, "POST", b+"/api/auth/login/", "", map[string]string{"username": "John", "password": pw})
	access, _ := pair["access"].(string)
	refresh, _ := pair["refresh"].(string)
	if status != 200 || access == "" || refresh == "" {
		t.Fatalf("login on B: %d %v", status, pair)
	}
	wantUser := func(base, access string) {
		t.Helper()
		status, u := call(t, "GET", base+"/api/auth/user/", access, nil)
		if status != 200 || u["username"] != "john" || u["email"] != "john@example.com" || u["first_name"] != "John" || u["last_name"] != "Doe" {
			t.Fatalf("/user/ on %s: %d %v", base, status, u)
		}
	}
	wantUser(a, access)
	status, next := call(t, "POST", a+"/api/auth/token/refresh/", "", map[string]string{"refresh": refresh})
	if status != 200 || next["access"] == nil {
		t.Fatalf("refresh on A: %d %v", status, next)
	}
	wantUser(b, next["access"].(string))
	status, taken := call(t, "POST", b+"/api/auth/register/", "", map[string]string{"username": "JOHN", "email": "other@example.com",
		"password": pw, "password2": pw})
	if list, _ := taken["username"].([]any); status != 400 || taken["reason"] != "username_taken" || len(list) != 1 {
		t.Fatalf("taken username on B: %d %v", status, taken)
	}

	// 50 registrations of one name through /v1/register, across A and B.
	const n = 50
	codes, reasons := make([]int, n), make([]string, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		body, _ := json.Marshal(map[string]string{"email": fmt.Sprintf("racer%d@example.com", i), "password": pw,
			"username": []string{"racer", "RACER"}[i%2]})
		wg.Go(func() {
			<-start
			res, err := http.Post(bases[i%2]+"/v1/register", "application/json", bytes.NewReader(body))
			if err != nil {
				reasons[i] = err.Error()
				return
			}
			defer res.Body.Close()
			raw, _ := io.ReadAll(res.Body)
			var m map[string]any
			_ = json.Unmarshal(raw, &m)
			codes[i] = res.StatusCode
			reasons[i], _ = m["reason"].(string)
			if res.StatusCode != 200 && reasons[i] == "" {
				reasons[i] = string(raw)
			}
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i := range n {
		switch {
		case codes[i] == 200:
			won++
		case codes[i] == 409 && reasons[i] == "username_taken":
		default:
			t.Fatalf("registration %d: %d %s", i, codes[i], reasons[i])
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent registrations of one username won, want 1", won, n)
	}
	// The winner signs in by the name on either instance.
	for _, base := range bases {
		if status, body := call(t, "POST", base+"/v1/login", "", map[string]string{"identifier": "Racer", "password": pw}); status != 200 {
			t.Fatalf("login by username on %s: %d %v", base, status, body)
		}
	}
}
