package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/authex/authex/providers/providertest"
	"github.com/authex/authex/storage/postgres/pgtest"
)

// twoOnPostgres starts two real instances on one schema, with the password
// provider (throttle: per_account failures per network) and an OIDC one.
func twoOnPostgres(t *testing.T, perAccount int) (a, b string, iss *providertest.Issuer) {
	t.Helper()
	dsn, schema := pgtest.Schema(t)
	t.Setenv("AUTHEX_PG_DSN", dsn)
	iss = providertest.NewIssuer(t)
	dir := t.TempDir()
	var cfgs, bases []string
	for _, name := range []string{"a", "b"} {
		port := freePort(t)
		path := pgConfigWith(t, dir, name, port, schema, fmt.Sprintf(`  corp: { type: oidc, issuer: %q, client_ids: [ "web" ] }
  password: { type: password, memory: 4096, iterations: 1, throttle: { per_account: %d, per_ip: 100 } }`, iss.URL(), perAccount))
		cfgs, bases = append(cfgs, path), append(bases, fmt.Sprintf("http://127.0.0.1:%d", port))
	}
	ps := startAll(t, "", cfgs, bases)
	t.Cleanup(func() {
		ps[1].stop(t)
		ps[0].stop(t)
	})
	return bases[0], bases[1], iss
}

// Issue 11, finding 3 on PostgreSQL: the login throttle's budgets are in
// the database, so N instances do not give an attacker N budgets. Wrong
// passwords split across A and B are refused after the one budget, on
// both, even for the right password.
func TestPostgresInstancesShareTheLoginThrottle(t *testing.T) {
	a, b, _ := twoOnPostgres(t, 3)
	postJSON(t, a+"/v1/register", map[string]any{"email": "shared@example.com", "password": "the right passphrase"})
	for i, base := range []string{a, b, a} {
		status, body := call(t, "POST", base+"/v1/login", "", map[string]any{"email": "shared@example.com", "password": fmt.Sprintf("wrong guess %d", i)})
		wantError(t, fmt.Sprintf("wrong login %d", i), status, body, 401, "invalid_credentials", "invalid_credentials")
	}
	status, body := call(t, "POST", b+"/v1/login", "", map[string]any{"email": "shared@example.com", "password": "wrong guess 3"})
	wantError(t, "fourth wrong login, on B", status, body, 429, "rate_limited", "rate_limited")
	status, body = call(t, "POST", a+"/v1/login", "", map[string]any{"email": "shared@example.com", "password": "the right passphrase"})
	wantError(t, "right password on A after the shared budget", status, body, 429, "rate_limited", "rate_limited")
}

// Issue 11, finding 11 on PostgreSQL: an id_token used on A is replayed on
// B, and one id_token sent to both at once signs in exactly once.
func TestPostgresInstancesRefuseAReplayedIDToken(t *testing.T) {
	a, b, iss := twoOnPostgres(t, 5)
	mint := func(sub string) string {
		return iss.Mint(t, map[string]any{"sub": sub, "aud": "web", "email": sub + "@example.com", "email_verified": true})
	}
	tok := mint("replayer")
	postJSON(t, a+"/v1/exchange", map[string]any{"provider": "corp", "id_token": tok})
	status, body := call(t, "POST", b+"/v1/exchange", "", map[string]any{"provider": "corp", "id_token": tok})
	wantError(t, "replay on B of A's id_token", status, body, 401, "invalid_token", "replayed")

	const n = 10
	double := mint("double")
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		raw, _ := json.Marshal(map[string]any{"provider": "corp", "id_token": double})
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := http.Post([]string{a, b}[i%2]+"/v1/exchange", "application/json", bytes.NewReader(raw))
			if err != nil {
				return
			}
			res.Body.Close()
			statuses[i] = res.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	if counts[200] != 1 || counts[401] != n-1 {
		t.Fatalf("one id_token sent %d times across two instances: %v (status: count), want one 200", n, counts)
	}
}
