package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authex/authex/envelope"
	"github.com/authex/authex/exchange"
	"github.com/authex/authex/providers"
	"github.com/authex/authex/providers/providertest"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/web"
)

// roundTrips counts what a connection sends the server and waits for: a
// statement (Exec, Query, QueryRow, and so BEGIN and COMMIT) or a batch
// (one trip for all its statements). It also counts the statements, those
// of a batch one by one: each costs the server its own executor start-up,
// in a batch or not. Prepares are counted apart: pgx prepares a statement
// once per connection and caches it, so a warm server pays none.
type roundTrips struct {
	trips, statements, prepares atomic.Int64
}

func (c *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.trips.Add(1)
	c.statements.Add(1)
	return ctx
}

func (c *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.trips.Add(1)
	return ctx
}

func (c *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	c.statements.Add(1)
}
func (c *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (c *roundTrips) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	c.prepares.Add(1)
	return ctx
}

func (c *roundTrips) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

// cost is what one request asks of PostgreSQL.
type cost struct {
	trips, statements int64
}

// wantCosts pins how many round trips, and statements, each hot path
// makes on a warm PostgreSQL store (docs/storage.md has the table, before
// and after). A change that adds one fails here: say why in the commit
// and the table.
var wantCosts = map[string]cost{
	"exchange, returning user": {2, 3},  // trips were 7; statements 6
	"exchange, new user":       {9, 11}, // trips were 15; statements 13
	"refresh":                  {1, 1},  // trips were 3
	"refresh, client":          {1, 1},  // trips were 4
	"refresh, claims hook":     {2, 2},  // trips were 3
	"logout":                   {2, 2},  // trips were 3
	"introspect":               {1, 1},  // trips were 2
	"me":                       {2, 2},  // trips were 3
}

// rtServer is the real HTTP API on a real PostgreSQL schema, with a
// local OpenID provider ("corp") and one confidential client.
type rtServer struct {
	t       *testing.T
	url     string
	iss     *providertest.Issuer
	counts  *roundTrips
	clients bool
}

const (
	rtClient = "nextjs"
	rtSecret = "nextjs-secret-0123456789abcdef"
)

// newRTServer starts the API; with clients, one confidential client
// authenticates every request (introspection needs one).
func newRTServer(t *testing.T, clients bool, hook ...exchange.ClaimsHookConfig) *rtServer {
	t.Helper()
	counts := &roundTrips{}
	store := open(t, postgres.Options{Tracer: counts, MaxConns: 4})
	iss := providertest.NewIssuer(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := providers.New(ctx, providers.Config{Name: "corp", Type: "oidc", Issuer: iss.URL(), ClientIDs: []string{"web"},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); v.Ready() != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("provider never became ready: %v", v.Ready())
		}
	}
	sealer, err := envelope.New(bytes.Repeat([]byte{0x4b}, envelope.KEKSize))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	cfg := exchange.Config{
		Issuer: "http://" + srv.Listener.Addr().String(), Audience: []string{"api"}, Algorithm: exchange.AlgES256,
		AccessTTL: 15 * time.Minute, RefreshTTL: 14 * 24 * time.Hour, SessionMax: 90 * 24 * time.Hour, ReuseGrace: 10 * time.Second,
		MaxSessionsPerUser: 100, // the production default
	}
	if clients {
		cfg.Clients = []exchange.ClientConfig{{ID: rtClient, Secret: rtSecret}}
	}
	provs := map[string]exchange.Provider{"corp": {Verifier: v, LinkByEmail: exchange.LinkAuto, AllowSignup: true, Issuer: iss.URL()}}
	opts := exchange.Options{Sealer: sealer, Logger: slog.New(slog.DiscardHandler)}
	if len(hook) > 0 {
		opts.ClaimsHook = &hook[0]
	}
	svc, err := exchange.New(ctx, cfg, store, provs, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = web.NewServer(web.Deps{Exchange: svc, Logger: slog.New(slog.DiscardHandler)})
	srv.Start()
	t.Cleanup(srv.Close)
	return &rtServer{t: t, url: srv.URL, iss: iss, counts: counts, clients: clients}
}

// call sends one request and returns its status and JSON body, with what
// it asked of the database.
func (s *rtServer) call(method, path, contentType string, body []byte, bearer string) (int, map[string]any, cost) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	} else if s.clients {
		req.SetBasicAuth(rtClient, rtSecret)
	}
	trips, statements := s.counts.trips.Load(), s.counts.statements.Load()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	n := cost{s.counts.trips.Load() - trips, s.counts.statements.Load() - statements}
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			s.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
		}
	}
	return res.StatusCode, m, n
}

func (s *rtServer) postJSON(path string, v any) (int, map[string]any, cost) {
	s.t.Helper()
	b, _ := json.Marshal(v)
	return s.call(http.MethodPost, path, "application/json", b, "")
}

func (s *rtServer) idToken(sub string) string {
	return s.iss.Mint(s.t, map[string]any{"sub": sub, "aud": "web", "email": sub + "@example.com", "email_verified": true, "name": "User " + sub})
}

// exchangeOK signs sub in and returns the answer and its cost.
func (s *rtServer) exchangeOK(sub string) (map[string]any, cost) {
	s.t.Helper()
	status, body, n := s.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": s.idToken(sub)})
	if status != http.StatusOK {
		s.t.Fatalf("exchange %s: %d %v", sub, status, body)
	}
	return body, n
}

// measureRoundTrips runs every hot path once to warm the statement caches,
// then again, and returns the costs of the second run.
func measureRoundTrips(t *testing.T) map[string]cost {
	got := map[string]cost{}
	s := newRTServer(t, true)
	user := "rt-user"
	{
		// Warm each of the pool's connections: a statement is prepared once per connection.
		for i := range 6 {
			s.exchangeOK(user)
			body, _ := s.exchangeOK(user + "-warm-" + string(rune('a'+i)))
			s.postJSON("/v1/token/refresh", map[string]any{"refresh_token": body["refresh_token"]})
			s.call(http.MethodGet, "/v1/me", "", nil, body["access_token"].(string))
			form := url.Values{"token": {body["access_token"].(string)}}.Encode()
			s.call(http.MethodPost, "/oauth/introspect", "application/x-www-form-urlencoded", []byte(form), "")
			s.postJSON("/v1/logout", map[string]any{"refresh_token": body["refresh_token"]})
		}
		body, n := s.exchangeOK(user)
		got["exchange, returning user"] = n
		_, got["exchange, new user"] = s.exchangeOK(user + "-new")
		status, rotated, n := s.postJSON("/v1/token/refresh", map[string]any{"refresh_token": body["refresh_token"]})
		if status != http.StatusOK {
			t.Fatalf("refresh: %d %v", status, rotated)
		}
		got["refresh, client"] = n
		access := rotated["access_token"].(string)
		if status, _, n = s.call(http.MethodGet, "/v1/me", "", nil, access); status != http.StatusOK {
			t.Fatalf("me: %d", status)
		}
		got["me"] = n
		form := url.Values{"token": {access}}.Encode()
		status, in, n := s.call(http.MethodPost, "/oauth/introspect", "application/x-www-form-urlencoded", []byte(form), "")
		if status != http.StatusOK || in["active"] != true {
			t.Fatalf("introspect: %d %v", status, in)
		}
		got["introspect"] = n
		if status, _, n = s.postJSON("/v1/logout", map[string]any{"refresh_token": rotated["refresh_token"]}); status/100 != 2 {
			t.Fatalf("logout: %d", status)
		}
		got["logout"] = n
	}

	// Without clients, a refresh needs nothing between read and rotation.
	open := newRTServer(t, false)
	for range 6 {
		body, _ := open.exchangeOK(user)
		open.postJSON("/v1/token/refresh", map[string]any{"refresh_token": body["refresh_token"]})
	}
	body, _ := open.exchangeOK(user)
	status, rotated, n := open.postJSON("/v1/token/refresh", map[string]any{"refresh_token": body["refresh_token"]})
	if status != http.StatusOK {
		t.Fatalf("refresh without clients: %d %v", status, rotated)
	}
	got["refresh"] = n

	// A claims hook answers between reading the session and rotating it.
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"claims": {"tenant": "t1"}}`)
	}))
	t.Cleanup(hookSrv.Close)
	hooked := newRTServer(t, false, exchange.ClaimsHookConfig{URL: hookSrv.URL, Secret: []byte("hook-secret-0123456789abcdef0123"),
		Timeout: time.Second, OnFailure: exchange.HookDeny})
	for range 6 {
		body, _ := hooked.exchangeOK(user)
		hooked.postJSON("/v1/token/refresh", map[string]any{"refresh_token": body["refresh_token"]})
	}
	body, _ = hooked.exchangeOK(user)
	if status, rotated, n = hooked.postJSON("/v1/token/refresh", map[string]any{"refresh_token": body["refresh_token"]}); status != http.StatusOK {
		t.Fatalf("refresh with the claims hook: %d %v", status, rotated)
	}
	got["refresh, claims hook"] = n
	return got
}

// TestHotPathRoundTrips counts the round trips and statements each hot
// path makes to PostgreSQL, through HTTP, and holds them to wantCosts.
func TestHotPathRoundTrips(t *testing.T) {
	got := measureRoundTrips(t)
	for path, n := range got {
		t.Logf("%-26s %d round trips, %d statements", path, n.trips, n.statements)
	}
	for path, want := range wantCosts {
		if g, ok := got[path]; !ok || g != want {
			t.Errorf("%s: %d round trips, %d statements (measured: %v), want %d and %d", path, g.trips, g.statements, ok, want.trips, want.statements)
		}
	}
}

// TestReturningUserReplayOnPostgres: a returning user's id_token, whose
// replay record is written with the session, sent 20 times at once to
// PostgreSQL: one sign-in, 19 × 401 replayed, and those wrote nothing.
func TestReturningUserReplayOnPostgres(t *testing.T) {
	s := newRTServer(t, false)
	first, _ := s.exchangeOK("returning")
	userID := first["user"].(map[string]any)["id"].(string)
	tok := s.idToken("returning")
	body, _ := json.Marshal(map[string]any{"provider": "corp", "id_token": tok})
	statuses := make(chan int, 20)
	reasons := make(chan any, 20)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for range 20 {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			res, err := http.Post(s.url+"/v1/exchange", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			var m map[string]any
			json.NewDecoder(res.Body).Decode(&m)
			statuses <- res.StatusCode
			reasons <- m["reason"]
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	close(statuses)
	close(reasons)
	ok, replayed := 0, 0
	for st := range statuses {
		r := <-reasons
		switch {
		case st == http.StatusOK:
			ok++
		case st == http.StatusUnauthorized && r == "replayed":
			replayed++
		default:
			t.Errorf("answer %d %v, want 200 or 401 replayed", st, r)
		}
	}
	if ok != 1 || replayed != 19 {
		t.Fatalf("20 concurrent uses of one id_token: %d signed in, %d replayed; want 1 and 19", ok, replayed)
	}
	// The user's sessions: the first sign-in's and the one winner's.
	status, me, _ := s.call(http.MethodGet, "/v1/me/sessions", "", nil, first["access_token"].(string))
	if status != http.StatusOK {
		t.Fatalf("sessions: %d %v", status, me)
	}
	if n := len(me["sessions"].([]any)); n != 2 {
		t.Fatalf("user %s has %d sessions, want 2 (the replays wrote none)", userID, n)
	}
}

// TestReturningUserCredentialSpentOnHookFailure: a returning user's
// id_token is recorded with its session; when the claims hook refuses
// (on_failure deny) no session is written, but the token is spent all the
// same, as every verified credential is.
func TestReturningUserCredentialSpentOnHookFailure(t *testing.T) {
	var failing atomic.Bool
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"claims": {}}`)
	}))
	t.Cleanup(hookSrv.Close)
	s := newRTServer(t, false, exchange.ClaimsHookConfig{URL: hookSrv.URL, Secret: []byte("hook-secret-0123456789abcdef0123"),
		Timeout: time.Second, OnFailure: exchange.HookDeny})
	first, _ := s.exchangeOK("hooked")
	tok := s.idToken("hooked")
	failing.Store(true)
	if status, body, _ := s.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": tok}); status != http.StatusServiceUnavailable {
		t.Fatalf("exchange with the hook down: %d %v, want 503", status, body)
	}
	failing.Store(false)
	status, body, _ := s.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": tok})
	if status != http.StatusUnauthorized || body["reason"] != "replayed" {
		t.Fatalf("the same id_token after the hook failed: %d %v, want 401 replayed", status, body)
	}
	_, me, _ := s.call(http.MethodGet, "/v1/me/sessions", "", nil, first["access_token"].(string))
	if n := len(me["sessions"].([]any)); n != 1 {
		t.Fatalf("%d sessions, want only the first sign-in's", n)
	}
}
