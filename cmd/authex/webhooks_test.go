package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authex/authex/providers/providertest"
	"github.com/authex/authex/storage/postgres/pgtest"
	"github.com/authex/authex/webhook"
)

const testWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestConfigCheckWebhooks(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	writeFile(t, secretFile, testWebhookSecret+"\n")
	out, err := checkConfig(t, fmt.Sprintf(`
webhooks:
  - { url: "http://app.example.com/hook", secret: %[1]q }
  - { url: "https://app.example.com/hook", secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }
  - { url: "https://app.example.com/hook", secret: "whsec_c2hvcnQ=" }
  - { name: a, url: "ftp://x", secret: %[1]q, events: [ user.created, user.exploded ] }
  - { name: a, url: "https://u:p@app.example.com/", secret_file: %[2]q, secret: %[1]q }
  - { name: b, url: "http://127.0.0.1:9/hook", secret_file: %[2]q, timeout: 2m, max_attempts: -1 }
  - { name: c, url: "https://app.example.com/c" }
  - { name: d, url: "https://app.example.com/d", secret_file: %[3]q }
`, testWebhookSecret, secretFile, filepath.Join(dir, "absent")))
	if err == nil {
		t.Fatal("config check accepted bad webhooks")
	}
	outputHas(t, out,
		"webhooks[0].url: must be https (plain http only to a loopback host)",
		`webhooks[2].name: "https://app.example.com/hook" names two endpoints`,
		`webhooks[1].secret: must start with "whsec_"`,
		"webhooks[2].secret: must decode to 24 to 64 bytes, not 5",
		"webhooks[3].url: must be an absolute http(s) URL",
		`webhooks[3].events[1]: must be one of user.created, user.updated, user.disabled, user.deleted, identity.linked, identity.unlinked, session.revoked, got "user.exploded"`,
		`webhooks[4].name: "a" names two endpoints`,
		"webhooks[4].url: must not carry credentials",
		"webhooks[4].secret_file: set secret or secret_file, not both",
		"webhooks[5].timeout: must be 0 (10s) to 1m, got 2m0s",
		"webhooks[5].max_attempts: must be 0 (20) to 100, got -1",
		"webhooks[6].secret: is required",
		"webhooks[7].secret_file: cannot be read",
	)
	if strings.Contains(out, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") {
		t.Fatalf("a webhook secret is printed:\n%s", out)
	}
}

// hookReceiver is a real HTTP receiver that verifies every delivery with
// the Standard Webhooks algorithm (webhook.Verify: the specification's
// steps) and keeps the verified ones.
type hookReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	events []hookEvent
	down   atomic.Bool
	tries  atomic.Int64
	bad    atomic.Int64
}

type hookEvent struct {
	ID, Type  string
	Timestamp string
	Data      map[string]any
	At        time.Time
}

func newHookReceiver(t *testing.T) *hookReceiver {
	key, err := webhook.ParseSecret(testWebhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	r := &hookReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.tries.Add(1)
		if r.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(req.Body)
		if err := webhook.Verify(key, req.Header, body, time.Now()); err != nil || req.Header.Get("Content-Type") != "application/json" {
			r.bad.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev struct {
			Type      string         `json:"type"`
			Timestamp string         `json:"timestamp"`
			Data      map[string]any `json:"data"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			r.bad.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.events = append(r.events, hookEvent{ID: req.Header.Get("webhook-id"), Type: ev.Type, Timestamp: ev.Timestamp, Data: ev.Data, At: time.Now()})
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) got() []hookEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *hookReceiver) wait(t *testing.T, n int, within time.Duration) []hookEvent {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if g := r.got(); len(g) >= n {
			return g
		}
		time.Sleep(2 * time.Millisecond)
	}
	g := r.got()
	t.Fatalf("%d of %d events after %s (%d tries, %d refused): %v", len(g), n, within, r.tries.Load(), r.bad.Load(), types(g))
	return nil
}

func types(evs []hookEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// webhookConfig writes a bolt config with the receiver as endpoint "app"
// and extra YAML appended to its webhooks list.
func webhookConfig(t *testing.T, dir string, port int, iss *providertest.Issuer, url, more string) (path, base string) {
	base = fmt.Sprintf("http://127.0.0.1:%d", port)
	path = writeBoltConfig(t, dir, "authex", port, base, fmt.Sprintf(`
tokens: { audience: [ "api" ] }
providers:
  corp: { type: oidc, issuer: %q, client_ids: [ "web" ] }
admin:
  tokens: [ "${AUTHEX_ADMIN_TOKEN}" ]
log: { format: json }
webhooks:
  - { name: app, url: %q, secret: "${TEST_WEBHOOK_SECRET}" }
%s`, iss.URL(), url, more))
	return path, base
}

var webhookEnv = []string{"AUTHEX_ADMIN_TOKEN=" + testAdminToken, "TEST_WEBHOOK_SECRET=" + testWebhookSecret}

// TestWebhookEveryEventType drives every event type through the HTTP API
// of a running authex and checks what a verifying receiver gets: each
// type, with its payload, in the order the changes were made. A second
// endpoint that takes only user.deleted and never answers ends failed,
// and the admin CLI lists and replays it.
func TestWebhookEveryEventType(t *testing.T) {
	iss := providertest.NewIssuer(t)
	rcv := newHookReceiver(t)
	dir := t.TempDir()
	cfg, base := webhookConfig(t, dir, freePort(t), iss, rcv.URL,
		fmt.Sprintf(`  - { name: dead, url: "http://127.0.0.1:%d/", secret: "${TEST_WEBHOOK_SECRET}", events: [ user.deleted ], max_attempts: 1 }`, freePort(t)))
	p := startServe(t, cfg, base, webhookEnv)
	defer p.stop(t)

	ex, _ := signIn(t, iss, base, "alice")
	uid := ex.User.ID
	alt := iss.Mint(t, map[string]any{"sub": "alice-alt", "aud": "web", "email": "alt@example.com", "email_verified": true})
	status, linked := call(t, http.MethodPost, base+"/v1/me/identities", ex.AccessToken, map[string]any{"provider": "corp", "id_token": alt})
	if status != http.StatusCreated {
		t.Fatalf("link: %d %v", status, linked)
	}
	identID := linked["identity"].(map[string]any)["id"].(string)
	if status, m := call(t, http.MethodDelete, base+"/v1/me/identities/"+identID, ex.AccessToken, nil); status/100 != 2 {
		t.Fatalf("unlink: %d %v", status, m)
	}
	if status, m := call(t, http.MethodPut, base+"/admin/v1/users/"+uid+"/roles", testAdminToken, map[string]any{"roles": []string{"editor"}}); status != 200 {
		t.Fatalf("roles: %d %v", status, m)
	}
	if status, m := call(t, http.MethodPost, base+"/v1/logout", "", map[string]any{"refresh_token": ex.RefreshToken}); status != 200 {
		t.Fatalf("logout: %d %v", status, m)
	}
	signIn(t, iss, base, "alice")
	if status, m := call(t, http.MethodPost, base+"/admin/v1/users/"+uid+"/disable", testAdminToken, nil); status != 200 {
		t.Fatalf("disable: %d %v", status, m)
	}
	if status, m := call(t, http.MethodDelete, base+"/admin/v1/users/"+uid, testAdminToken, nil); status/100 != 2 {
		t.Fatalf("delete: %d %v", status, m)
	}

	want := []string{"user.created", "identity.linked", "identity.unlinked", "user.updated", "session.revoked",
		"user.disabled", "session.revoked", "user.deleted"}
	rcv.wait(t, len(want), 10*time.Second)
	time.Sleep(100 * time.Millisecond) // anything more would arrive now
	got := rcv.got()
	if fmt.Sprint(types(got)) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", types(got), want)
	}
	ids := map[string]bool{}
	for _, e := range got {
		if ids[e.ID] || !strings.HasPrefix(e.ID, "msg_") {
			t.Errorf("webhook-id %q repeated or malformed", e.ID)
		}
		ids[e.ID] = true
		if _, err := time.Parse(time.RFC3339Nano, e.Timestamp); err != nil {
			t.Errorf("%s: timestamp %q", e.Type, e.Timestamp)
		}
	}
	user := func(e hookEvent) map[string]any { return e.Data["user"].(map[string]any) }
	ident := func(e hookEvent) map[string]any { return e.Data["identity"].(map[string]any) }
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("user.created user.id", user(got[0])["id"], uid)
	check("user.created user.email", user(got[0])["email"], "alice@example.com")
	check("user.created identity.provider", ident(got[0])["provider"], "corp")
	check("user.created identity.subject", ident(got[0])["subject"], "alice")
	check("user.created identity.issuer", ident(got[0])["issuer"], iss.URL())
	check("identity.linked user_id", got[1].Data["user_id"], uid)
	check("identity.linked identity.subject", ident(got[1])["subject"], "alice-alt")
	check("identity.linked identity.id", ident(got[1])["id"], identID)
	check("identity.unlinked identity.id", ident(got[2])["id"], identID)
	check("user.updated roles", user(got[3])["roles"], []any{"editor"})
	check("session.revoked reason", got[4].Data["reason"], "logout")
	check("session.revoked session_id", got[4].Data["session_id"], ex.SessionID)
	check("session.revoked count", got[4].Data["count"], 1.0)
	check("user.disabled disabled", user(got[5])["disabled"], true)
	check("session.revoked (disable) reason", got[6].Data["reason"], "user_disabled")
	check("session.revoked (disable) user_id", got[6].Data["user_id"], uid)
	check("user.deleted user_id", got[7].Data["user_id"], uid)
	if _, ok := user(got[0])["password_hash"]; ok {
		t.Error("an event carries the password hash")
	}
	if rcv.bad.Load() != 0 {
		t.Errorf("%d deliveries failed verification", rcv.bad.Load())
	}

	// The dead endpoint: user.deleted only, given up after one attempt.
	env := append(os.Environ(), "AUTHEX_ADMIN_TOKEN="+testAdminToken, "AUTHEX_SERVER="+base)
	var out string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var code int
		out, _, code = runCLI(t, env, "webhooks", "list", "--failed")
		if code == 0 && strings.Contains(out, "user.deleted") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out, "dead") || !strings.Contains(out, got[7].ID) || strings.Count(out, "\n") != 2 {
		t.Fatalf("webhooks list --failed:\n%s", out)
	}
	out, errOut, code := runCLI(t, env, "webhooks", "replay", "dead", got[7].ID)
	if code != 0 || !strings.Contains(out, "is due again") {
		t.Fatalf("replay: %d %s %s", code, out, errOut)
	}
	if _, errOut, code := runCLI(t, env, "webhooks", "replay", "dead", "msg_nope"); code == 0 || !strings.Contains(errOut, "not_found") {
		t.Fatalf("replay of an unknown delivery: %d %s", code, errOut)
	}
	if status, m := call(t, http.MethodGet, base+"/admin/v1/webhooks/deliveries?state=lost", testAdminToken, nil); status != 400 || m["reason"] != "invalid_state" {
		t.Fatalf("bad state: %d %v", status, m)
	}
	if status, m := call(t, http.MethodGet, base+"/admin/v1/webhooks/deliveries?limit=5000", testAdminToken, nil); status != 400 || m["reason"] != "invalid_limit" {
		t.Fatalf("bad limit: %d %v", status, m)
	}
	if status, m := call(t, http.MethodGet, base+"/admin/v1/webhooks/deliveries", "", nil); status != 401 {
		t.Fatalf("no admin token: %d %v", status, m)
	}
}

// TestWebhookSurvivesSIGKILL: the real binary writes an event, is killed
// with SIGKILL before any delivery succeeds (the receiver is down), and
// delivers it after a restart.
func TestWebhookSurvivesSIGKILL(t *testing.T) {
	bin := buildBinary(t)
	iss := providertest.NewIssuer(t)
	rcv := newHookReceiver(t)
	rcv.down.Store(true)
	dir := t.TempDir()
	cfg, base := webhookConfig(t, dir, freePort(t), iss, rcv.URL, "")
	os.Setenv("TEST_WEBHOOK_SECRET", testWebhookSecret) // the binary inherits this environment
	t.Cleanup(func() { os.Unsetenv("TEST_WEBHOOK_SECRET") })
	t.Setenv("AUTHEX_ADMIN_TOKEN", testAdminToken)
	p := startBinary(t, bin, cfg, base)
	ex, _ := signIn(t, iss, base, "bob")
	for deadline := time.Now().Add(5 * time.Second); rcv.tries.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	p.kill() // SIGKILL: no drain, no goodbye
	if len(rcv.got()) != 0 {
		t.Fatal("delivered while the receiver was down")
	}
	rcv.down.Store(false)
	p = startBinary(t, bin, cfg, base)
	defer p.stop(t)
	// The first retry waits up to 5.5 s; if the kill landed between the
	// receiver's refusal and the worker recording it, the delivery's lease
	// (the endpoint timeout, 10 s, plus 10 s) must run out first.
	got := rcv.wait(t, 1, 45*time.Second)
	if got[0].Type != "user.created" || got[0].Data["user"].(map[string]any)["id"] != ex.User.ID {
		t.Fatalf("after restart: %+v", got[0])
	}
}

// TestWebhookLatency measures change -> receiver on loopback: the time
// from sending a sign-in to the receiver holding its user.created.
func TestWebhookLatency(t *testing.T) {
	iss := providertest.NewIssuer(t)
	rcv := newHookReceiver(t)
	cfg, base := webhookConfig(t, t.TempDir(), freePort(t), iss, rcv.URL, "")
	p := startServe(t, cfg, base, webhookEnv)
	defer p.stop(t)
	const n = 50
	var lat, after, signin, change []time.Duration
	for i := range n {
		start := time.Now()
		signIn(t, iss, base, fmt.Sprint("lat", i))
		answered := time.Now()
		got := rcv.wait(t, i+1, 5*time.Second)
		lat = append(lat, got[i].At.Sub(start))
		after = append(after, got[i].At.Sub(answered))
		signin = append(signin, answered.Sub(start))
		written, err := time.Parse(time.RFC3339Nano, got[i].Timestamp)
		if err != nil {
			t.Fatal(err)
		}
		change = append(change, got[i].At.Sub(written))
	}
	for _, l := range [][]time.Duration{lat, after, signin, change} {
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	}
	t.Logf("webhook latency on loopback (bbolt, %d sign-ins): change written (the event's timestamp) -> receiver p50 %s p90 %s max %s; "+
		"sign-in sent -> receiver p50 %s p90 %s max %s; "+
		"sign-in answered -> receiver p50 %s p90 %s max %s; the sign-in itself p50 %s",
		n, change[n/2], change[n*9/10], change[n-1], lat[n/2], lat[n*9/10], lat[n-1], after[n/2], after[n*9/10], after[n-1], signin[n/2])
	if change[n/2] > 500*time.Millisecond {
		t.Errorf("median latency %s: the worker is not woken by the commit", change[n/2])
	}
}

// TestWebhooksTwoInstancesPostgres: two real instances on one PostgreSQL
// schema, both delivering to the same receiver, changes made on both:
// every event arrives exactly once (by webhook-id), each user's in order.
func TestWebhooksTwoInstancesPostgres(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	t.Setenv("AUTHEX_PG_DSN", dsn)
	t.Setenv("TEST_WEBHOOK_SECRET", testWebhookSecret)
	bin := buildBinary(t)
	iss := providertest.NewIssuer(t)
	rcv := newHookReceiver(t)
	dir := t.TempDir()
	portA, portB := freePort(t), freePort(t)
	a, b := fmt.Sprintf("http://127.0.0.1:%d", portA), fmt.Sprintf("http://127.0.0.1:%d", portB)
	hooks := fmt.Sprintf(`webhooks: [ { name: app, url: %q, secret: "${TEST_WEBHOOK_SECRET}" } ]`, rcv.URL)
	ps := startAll(t, bin, []string{
		pgConfig(t, dir, "a", portA, schema, iss.URL(), hooks),
		pgConfig(t, dir, "b", portB, schema, iss.URL(), hooks),
	}, []string{a, b})
	defer ps[1].stop(t)
	defer ps[0].stop(t)
	bases := []string{a, b}
	const users = 20
	for i := range users {
		ex, _ := signIn(t, iss, bases[i%2], fmt.Sprint("pg", i))
		if status, m := call(t, http.MethodPost, bases[(i+1)%2]+"/v1/logout", "", map[string]any{"refresh_token": ex.RefreshToken}); status != 200 {
			t.Fatalf("logout: %d %v", status, m)
		}
	}
	rcv.wait(t, 2*users, 20*time.Second)
	time.Sleep(1500 * time.Millisecond) // past a poll of each instance: a duplicate would arrive now
	got := rcv.got()
	seen := map[string]bool{}
	created := map[string]bool{}
	for _, e := range got {
		if seen[e.ID] {
			t.Errorf("%s (%s) delivered twice", e.ID, e.Type)
		}
		seen[e.ID] = true
		switch e.Type {
		case "user.created":
			created[e.Data["user"].(map[string]any)["id"].(string)] = true
		case "session.revoked":
			if u := e.Data["user_id"].(string); !created[u] {
				t.Errorf("user %s: session.revoked before user.created", u)
			}
		}
	}
	if len(got) != 2*users {
		t.Fatalf("%d deliveries, want %d: %v", len(got), 2*users, types(got))
	}
}
