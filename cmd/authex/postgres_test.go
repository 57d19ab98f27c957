package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authex/authex/providers/providertest"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/storage/postgres/pgtest"
)

// The tests here run the real binary on a real PostgreSQL: they skip unless
// AUTHEX_TEST_POSTGRES_DSN is set, and each uses a schema of its own.

// publicURL is what a load balancer in front of the instances would be:
// every instance signs tokens with it as `iss`.
const publicURL = "http://authex.lb.test"

const apiSecret = "api-secret-0123456789abcdef"

// pgConfig writes a config for one instance on the test schema. The DSN
// comes from the environment, as in production.
func pgConfig(t *testing.T, dir, name string, port int, schema, issuerURL string, extra ...string) string {
	t.Helper()
	return pgConfigWith(t, dir, name, port, schema,
		fmt.Sprintf(`  corp: { type: oidc, issuer: %q, client_ids: [ "web" ] }`, issuerURL), extra...)
}

// pgConfigWith is pgConfig with its own providers block (lines indented
// under providers:) and extra top-level keys.
func pgConfigWith(t *testing.T, dir, name string, port int, schema, providers string, extra ...string) string {
	t.Helper()
	path := filepath.Join(dir, name+".yaml")
	writeFile(t, path, fmt.Sprintf(`
server: { listen: "127.0.0.1:%d", public_url: %q }
storage:
  driver: postgres
  postgres: { dsn: "${AUTHEX_PG_DSN}", schema: %q, max_conns: 4, connect_timeout: 1s }
providers:
%s
log: { format: json }
secrets: { kek: %q }
`+strings.Join(extra, "\n"), port, publicURL, schema, providers, testKEK))
	return path
}

// testKEK is the key-encryption key of the test configs (PostgreSQL
// requires one): 32 bytes, base64.
const testKEK = "dGVzdC1rZWstdGVzdC1rZWstdGVzdC1rZWstMzJieXQ="

// startAll starts every config's process before waiting for any, so the
// instances race through startup (migrations, first signing key) together.
func startAll(t *testing.T, bin string, cfgs, bases []string) []*process {
	t.Helper()
	var ps []*process
	for _, cfg := range cfgs {
		p := launch(t, bin, nil, "serve", "-config", cfg)
		t.Cleanup(func() {
			if !p.exited() {
				p.kill()
			}
		})
		ps = append(ps, p)
	}
	for i, p := range ps {
		if !waitReady(bases[i], 15*time.Second) {
			for _, q := range ps {
				q.kill()
			}
			t.Fatalf("instance %d did not become ready:\n%s", i, p.logs.String())
		}
	}
	return ps
}

func waitReady(base string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		res, err := http.Get(base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return false
}

// call sends a request and returns the status and the JSON body.
func call(t *testing.T, method, url, bearer string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	m := map[string]any{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: %d %s", method, url, res.StatusCode, raw)
		}
	}
	return res.StatusCode, m
}

// wantError checks an error answer's status, error and reason.
func wantError(t *testing.T, what string, status int, body map[string]any, wantStatus int, wantErr, wantReason string) {
	t.Helper()
	if status != wantStatus || body["error"] != wantErr || body["reason"] != wantReason {
		t.Fatalf("%s: %d %v; want %d %s/%s", what, status, body, wantStatus, wantErr, wantReason)
	}
}

// TestTwoInstancesShareOnePostgres: two real `authex serve` processes on
// one database, as behind a load balancer. They start together on an empty
// schema and agree on one signing key; a session started on one is
// refreshed, reused, revoked and logged out across both.
func TestTwoInstancesShareOnePostgres(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	t.Setenv("AUTHEX_PG_DSN", dsn)
	bin := buildBinary(t)
	iss := providertest.NewIssuer(t)
	dir := t.TempDir()
	portA, portB := freePort(t), freePort(t)
	a, b := fmt.Sprintf("http://127.0.0.1:%d", portA), fmt.Sprintf("http://127.0.0.1:%d", portB)
	// An app that signs users in, and an API that introspects their tokens.
	t.Setenv("AUTHEX_API_SECRET", apiSecret)
	clients := `clients: [ { id: app, public: true }, { id: api, secret: "${AUTHEX_API_SECRET}" } ]`
	ps := startAll(t, bin, []string{
		pgConfig(t, dir, "a", portA, schema, iss.URL(), clients),
		pgConfig(t, dir, "b", portB, schema, iss.URL(), clients),
	}, []string{a, b})
	introspect := func(base, token string) bool {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/oauth/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("api", apiSecret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var in struct {
			Active bool `json:"active"`
		}
		if err := json.NewDecoder(res.Body).Decode(&in); err != nil || res.StatusCode != 200 {
			t.Fatalf("introspect on %s: %d %v", base, res.StatusCode, err)
		}
		return in.Active
	}
	defer ps[1].stop(t)
	defer ps[0].stop(t)

	// One key, the same on both, although both started on an empty store.
	jwksA, jwksB := getBody(t, a+"/.well-known/jwks.json", ""), getBody(t, b+"/.well-known/jwks.json", "")
	if jwksA != jwksB {
		t.Fatalf("JWKS differ:\nA %s\nB %s", jwksA, jwksB)
	}
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal([]byte(jwksA), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS after a simultaneous first start = %s, want exactly one key", jwksA)
	}

	// Exchange on A; the access token reads /v1/me on B.
	idToken := iss.Mint(t, map[string]any{"sub": "two", "aud": "web", "email": "two@example.com", "email_verified": true})
	ex := postJSON(t, a+"/v1/exchange", map[string]any{"provider": "corp", "id_token": idToken, "client_id": "app"})
	user := ex["user"].(map[string]any)["id"].(string)
	rt1 := ex["refresh_token"].(string)
	if status, me := call(t, "GET", b+"/v1/me", ex["access_token"].(string), nil); status != 200 || me["id"] != user {
		t.Fatalf("A's access token on B: %d %v", status, me)
	}
	// The same id_token on B is a replay, refused across instances.
	status, body := call(t, "POST", b+"/v1/exchange", "", map[string]any{"provider": "corp", "id_token": idToken, "client_id": "app"})
	wantError(t, "A's id_token replayed on B", status, body, 401, "invalid_token", "replayed")
	// The same identity on B, with a fresh token, signs in to the same user.
	idToken = iss.Mint(t, map[string]any{"sub": "two", "aud": "web", "email": "two@example.com", "email_verified": true})
	again := postJSON(t, b+"/v1/exchange", map[string]any{"provider": "corp", "id_token": idToken, "client_id": "app"})
	if again["user"].(map[string]any)["id"] != user || again["created"] != false {
		t.Fatalf("second sign-in on B: %v", again)
	}

	// Refresh on B; the same token on A within the grace gets the same pair.
	onB := postJSON(t, b+"/v1/token/refresh", map[string]any{"refresh_token": rt1, "client_id": "app"})
	onA := postJSON(t, a+"/v1/token/refresh", map[string]any{"refresh_token": rt1, "client_id": "app"})
	if onA["refresh_token"] != onB["refresh_token"] || onA["access_token"] != onB["access_token"] {
		t.Fatalf("grace answers differ across instances:\nB %v\nA %v", onB, onA)
	}
	rt2 := onB["refresh_token"].(string)
	rt3 := postJSON(t, a+"/v1/token/refresh", map[string]any{"refresh_token": rt2, "client_id": "app"})["refresh_token"].(string)

	if !introspect(a, onB["access_token"].(string)) {
		t.Fatal("introspect on A: B's fresh access token is not active")
	}

	// Reuse of generation 1 on A revokes the session on both.
	status, body = call(t, "POST", a+"/v1/token/refresh", "", map[string]any{"refresh_token": rt1, "client_id": "app"})
	wantError(t, "reused refresh token on A", status, body, 400, "invalid_grant", "reused")
	status, body = call(t, "POST", b+"/v1/token/refresh", "", map[string]any{"refresh_token": rt3, "client_id": "app"})
	wantError(t, "newest refresh token on B after reuse", status, body, 400, "invalid_grant", "revoked")
	status, body = call(t, "GET", b+"/v1/me", onB["access_token"].(string), nil)
	wantError(t, "the revoked session's access token on B", status, body, 401, "invalid_token", "revoked")
	if introspect(a, onB["access_token"].(string)) {
		t.Fatal("introspect on A: an access token of the session revoked for reuse is still active")
	}

	// Logout on B ends the other session on A too.
	status, body = call(t, "POST", b+"/v1/logout", "", map[string]any{"refresh_token": again["refresh_token"], "client_id": "app"})
	if status != 200 && status != 204 {
		t.Fatalf("logout on B: %d %v", status, body)
	}
	status, body = call(t, "POST", a+"/v1/token/refresh", "", map[string]any{"refresh_token": again["refresh_token"], "client_id": "app"})
	wantError(t, "refresh on A after logout on B", status, body, 400, "invalid_grant", "revoked")
	status, body = call(t, "GET", a+"/v1/me", again["access_token"].(string), nil)
	wantError(t, "access token on A after logout on B", status, body, 401, "invalid_token", "revoked")
	if introspect(a, again["access_token"].(string)) {
		t.Fatal("introspect on A: an access token of the session logged out on B is still active")
	}

	// One new identity signing in on both instances at once (a token of
	// its own for each sign-in): one user.
	const n = 10
	answers := race(t, n, func(i int) (string, any) {
		racer := iss.Mint(t, map[string]any{"sub": "racer", "aud": "web", "email": "racer@example.com", "email_verified": true})
		return []string{a, b}[i%2] + "/v1/exchange", map[string]any{"provider": "corp", "id_token": racer, "client_id": "app"}
	})
	created, users := 0, map[any]bool{}
	for _, ans := range answers {
		users[ans["user"].(map[string]any)["id"]] = true
		if ans["created"] == true {
			created++
		}
	}
	if created != 1 || len(users) != 1 {
		t.Fatalf("%d simultaneous first sign-ins on two instances: %d created, %d users; want 1 and 1", n, created, len(users))
	}
	// One refresh token refreshed on both instances at once: every answer
	// is the same pair (one rotation, the rest within the grace).
	rt := answers[0]["refresh_token"].(string)
	refreshed := race(t, n, func(i int) (string, any) {
		return []string{a, b}[i%2] + "/v1/token/refresh", map[string]any{"refresh_token": rt, "client_id": "app"}
	})
	for i, ans := range refreshed {
		if ans["refresh_token"] != refreshed[0]["refresh_token"] || ans["access_token"] != refreshed[0]["access_token"] {
			t.Fatalf("simultaneous refresh %d got another pair than refresh 0:\n%v\n%v", i, ans, refreshed[0])
		}
	}

	if jwks := getBody(t, b+"/.well-known/jwks.json", ""); jwks != jwksA {
		t.Fatalf("B's JWKS changed:\n%s\n%s", jwksA, jwks)
	}
}

// race sends n POSTs at once and returns their bodies; each must be 200.
func race(t *testing.T, n int, req func(i int) (url string, body any)) []map[string]any {
	t.Helper()
	out := make([]map[string]any, n)
	errs := make([]string, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		url, body := req(i)
		b, _ := json.Marshal(body)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := http.Post(url, "application/json", bytes.NewReader(b))
			if err != nil {
				errs[i] = err.Error()
				return
			}
			defer res.Body.Close()
			raw, _ := io.ReadAll(res.Body)
			if res.StatusCode != 200 || json.Unmarshal(raw, &out[i]) != nil {
				errs[i] = fmt.Sprintf("%d %s", res.StatusCode, raw)
			}
		}()
	}
	close(start)
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Fatalf("request %d of %d: %s", i, n, e)
		}
	}
	return out
}

// TestPostgresOutage: the database goes away under a running instance.
// Requests answer 503 server_error/store_unavailable, /readyz fails, the
// process stays up and writes nothing half way; when the database returns,
// service resumes by itself.
func TestPostgresOutage(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	proxy, viaProxy := pgtest.NewProxy(t, dsn)
	t.Setenv("AUTHEX_PG_DSN", viaProxy)
	iss := providertest.NewIssuer(t)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := startServe(t, pgConfig(t, t.TempDir(), "a", port, schema, iss.URL()), base, nil)
	defer p.stop(t)

	before := postJSON(t, base+"/v1/exchange", map[string]any{"provider": "corp",
		"id_token": iss.Mint(t, map[string]any{"sub": "before", "aud": "web", "email": "before@example.com", "email_verified": true})})
	newcomer := iss.Mint(t, map[string]any{"sub": "newcomer", "aud": "web", "email": "new@example.com", "email_verified": true})

	proxy.Cut()
	status, body := call(t, "POST", base+"/v1/exchange", "", map[string]any{"provider": "corp", "id_token": newcomer})
	wantError(t, "exchange while the database is away", status, body, 503, "server_error", "store_unavailable")
	status, body = call(t, "POST", base+"/v1/token/refresh", "", map[string]any{"refresh_token": before["refresh_token"]})
	wantError(t, "refresh while the database is away", status, body, 503, "server_error", "store_unavailable")
	status, body = call(t, "GET", base+"/v1/me", before["access_token"].(string), nil)
	wantError(t, "/v1/me while the database is away", status, body, 503, "server_error", "store_unavailable")
	if status, body := call(t, "GET", base+"/readyz", "", nil); status != 503 {
		t.Fatalf("/readyz while the database is away: %d %v", status, body)
	}
	// Offline verification needs no database: the JWKS still serves.
	getBody(t, base+"/.well-known/jwks.json", "")
	if p.exited() {
		t.Fatalf("authex exited during the outage:\n%s", p.logs.String())
	}

	proxy.Restore()
	if !waitReady(base, 10*time.Second) {
		t.Fatal("/readyz did not recover after the database returned")
	}
	// The refused sign-in left nothing: the newcomer is created now.
	ex := postJSON(t, base+"/v1/exchange", map[string]any{"provider": "corp", "id_token": newcomer})
	if ex["created"] != true {
		t.Fatalf("newcomer after recovery: created = %v, want true", ex["created"])
	}
	// The session from before the outage refreshes.
	postJSON(t, base+"/v1/token/refresh", map[string]any{"refresh_token": before["refresh_token"]})
}

// TestExportBoltImportPostgres moves a deployment from bbolt to PostgreSQL
// with `authex export` and `authex import`: access and refresh tokens
// issued before the move keep working after it, and the JWKS is unchanged.
func TestExportBoltImportPostgres(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	t.Setenv("AUTHEX_PG_DSN", dsn)
	bin := buildBinary(t)
	iss := providertest.NewIssuer(t)
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	boltCfg := writeBoltConfig(t, dir, "bolt", port, publicURL, fmt.Sprintf(`
providers:
  corp: { type: oidc, issuer: %q, client_ids: [ "web" ] }
log: { format: json }
secrets: { kek: %q }
`, iss.URL(), testKEK))
	pgCfg := pgConfig(t, dir, "pg", port, schema, iss.URL())

	onBolt := startServe(t, boltCfg, base, nil)
	ex := postJSON(t, base+"/v1/exchange", map[string]any{"provider": "corp",
		"id_token": iss.Mint(t, map[string]any{"sub": "mover", "aud": "web", "email": "mover@example.com", "email_verified": true})})
	user := ex["user"].(map[string]any)["id"].(string)
	rotated := postJSON(t, base+"/v1/token/refresh", map[string]any{"refresh_token": ex["refresh_token"]})
	jwks := getBody(t, base+"/.well-known/jwks.json", "")
	onBolt.stop(t)

	dump := filepath.Join(dir, "dump.jsonl")
	out, err := os.Create(dump)
	if err != nil {
		t.Fatal(err)
	}
	export := exec.Command(bin, "export", "-config", boltCfg)
	var stderr bytes.Buffer
	export.Stdout, export.Stderr = out, &stderr
	if err := export.Run(); err != nil {
		t.Fatalf("export: %v\n%s", err, stderr.String())
	}
	out.Close()
	if !strings.Contains(stderr.String(), "exported from bolt: 1 users, 1 identities, 1 sessions, 1 signing keys") {
		t.Fatalf("export summary: %s", stderr.String())
	}

	importFrom := func() (string, error) {
		in, err := os.Open(dump)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		cmd := exec.Command(bin, "import", "-config", pgCfg)
		cmd.Stdin = in
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	if out, err := importFrom(); err != nil || !strings.Contains(out, "imported into postgres: 1 users") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if out, err := importFrom(); err == nil || !strings.Contains(out, "import only into an empty store") {
		t.Fatalf("second import into the same store: %v\n%s", err, out)
	}

	onPG := startServe(t, pgCfg, base, nil)
	defer onPG.stop(t)
	if got := getBody(t, base+"/.well-known/jwks.json", ""); got != jwks {
		t.Fatalf("JWKS changed in the move:\n%s\n%s", jwks, got)
	}
	if status, me := call(t, "GET", base+"/v1/me", rotated["access_token"].(string), nil); status != 200 || me["id"] != user {
		t.Fatalf("access token from before the move: %d %v", status, me)
	}
	next := postJSON(t, base+"/v1/token/refresh", map[string]any{"refresh_token": rotated["refresh_token"]})
	if next["user"].(map[string]any)["id"] != user {
		t.Fatalf("refresh after the move: %v", next)
	}
	// The generation moved too: the first refresh token is now reuse.
	status, body := call(t, "POST", base+"/v1/token/refresh", "", map[string]any{"refresh_token": ex["refresh_token"]})
	wantError(t, "a refresh token rotated before the move", status, body, 400, "invalid_grant", "reused")
}

func TestMigrateCommand(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	env := func(k string) string {
		if k == "AUTHEX_PG_DSN" {
			return dsn
		}
		return ""
	}
	cfg := pgConfig(t, t.TempDir(), "m", freePort(t), schema, "https://issuer.example.com")
	for range 2 { // the second run finds nothing to do
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), []string{"migrate", "-config", cfg}, env, &stdout, &stderr); err != nil {
			t.Fatalf("migrate: %v\n%s", err, stderr.String())
		}
		if want := fmt.Sprintf("postgres: schema at version %d\n", postgres.LatestVersion()); stdout.String() != want {
			t.Fatalf("migrate printed %q, want %q", stdout.String(), want)
		}
		if strings.Contains(stdout.String()+stderr.String(), dsn) {
			t.Fatal("migrate printed the DSN")
		}
	}
}
