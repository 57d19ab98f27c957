package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/authex/authex/envelope"
	"github.com/authex/authex/exchange"
	"github.com/authex/authex/providers"
	"github.com/authex/authex/providers/providertest"
	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
	"github.com/authex/authex/storage/observed"
	"github.com/authex/authex/web"
)

const (
	webClientID = "web-client"
	iosClientID = "ios-client"
)

// clock is a movable clock for the exchange service; it starts at the real
// time so provider tokens minted with real timestamps verify.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

type harness struct {
	t       testing.TB
	url     string
	store   *bolt.Store
	svc     *exchange.Service
	iss     *providertest.Issuer // provider "corp" (oidc) and "google" (google preset)
	clock   *clock
	cfg     exchange.Config
	metrics *web.Metrics
}

type harnessOption func(*harnessConfig)

type harnessConfig struct {
	exchange  exchange.Config
	providers map[string]providerSpec
	password  *exchange.PasswordConfig
	compat    []string
	web       web.Deps                          // Exchange and Metrics are filled in
	wrap      func(storage.Store) storage.Store // decorates the store the service uses
	metrics   bool
	email     *exchange.EmailConfig // email_test.go
	// signals builds the upstream security event transmitters.
	signals func(iss *providertest.Issuer) []exchange.SignalReceiver
	// claimsHook, when set, configures the claims hook.
	claimsHook *exchange.ClaimsHookConfig
	// anonymous, when set, turns anonymous users on.
	anonymous *exchange.AnonymousConfig
	// webhooks, when set, are the endpoints events are written to the
	// outbox for (nothing delivers them here: tests read the outbox).
	webhooks []exchange.WebhookTarget
}

type providerSpec struct {
	typ            string
	issuer         string // "" = the harness issuer
	allowedDomains []string
	link           string
	allowSignup    bool
	trustEmail     bool // exchange.Provider.TrustEmail
	// setup, when set, adjusts the provider's config (and may add
	// endpoints to the harness issuer) before the provider starts.
	setup func(iss *providertest.Issuer, cfg *providers.Config)
}

func withProvider(name string, spec providerSpec) harnessOption {
	return func(c *harnessConfig) { c.providers[name] = spec }
}

// withPassword enables password accounts.
func withPassword(cfg exchange.PasswordConfig) harnessOption {
	return func(c *harnessConfig) { c.password = &cfg }
}

// withCompat serves compatibility profiles.
func withCompat(names ...string) harnessOption {
	return func(c *harnessConfig) { c.compat = names }
}

// withoutProvider drops one of the default providers.
func withoutProvider(name string) harnessOption {
	return func(c *harnessConfig) { delete(c.providers, name) }
}

// withClients turns client authentication on.
func withClients(clients ...exchange.ClientConfig) harnessOption {
	return func(c *harnessConfig) { c.exchange.Clients = clients }
}

func newHarness(t testing.TB, opts ...harnessOption) *harness {
	t.Helper()
	iss := providertest.NewIssuer(t)
	hc := harnessConfig{
		exchange: exchange.Config{
			Audience: []string{"api"}, Algorithm: exchange.AlgES256,
			AccessTTL: 15 * time.Minute, RefreshTTL: 14 * 24 * time.Hour,
			SessionMax: 90 * 24 * time.Hour, ReuseGrace: 10 * time.Second,
		},
		providers: map[string]providerSpec{
			"corp":   {typ: "oidc", link: exchange.LinkConfirm, allowSignup: true},
			"google": {typ: "google", link: exchange.LinkAuto, allowSignup: true, allowedDomains: nil},
		},
	}
	for _, o := range opts {
		o(&hc)
	}
	store, err := bolt.Open(filepath.Join(t.TempDir(), "authex.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var metrics *web.Metrics
	var observer exchange.Observer
	if hc.metrics {
		metrics = web.NewMetrics(store)
		observer = metrics
	}

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	provs := map[string]exchange.Provider{}
	for name, spec := range hc.providers {
		issuer := spec.issuer
		if issuer == "" {
			issuer = iss.URL()
		}
		pc := providers.Config{
			Name: name, Type: spec.typ, Issuer: issuer, ClientIDs: []string{webClientID, iosClientID},
			AllowedDomains: spec.allowedDomains, KeyFetched: keyFetched(metrics, name),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		if spec.setup != nil {
			spec.setup(iss, &pc)
		}
		v, err := providers.New(ctx, pc)
		if err != nil {
			t.Fatal(err)
		}
		provs[name] = exchange.Provider{Verifier: v, LinkByEmail: spec.link, AllowSignup: spec.allowSignup, Issuer: issuer,
			TrustEmail: spec.trustEmail}
	}
	clk := &clock{}
	if metrics != nil {
		metrics.Now = clk.Now
	}
	srv := httptest.NewUnstartedServer(nil)
	hc.exchange.Issuer = "http://" + srv.Listener.Addr().String()
	var svcStore storage.Store = store
	if hc.wrap != nil {
		svcStore = hc.wrap(store)
	}
	if metrics != nil {
		svcStore = observed.Wrap(svcStore, metrics.Committed)
	}
	var signals []exchange.SignalReceiver
	if hc.signals != nil {
		signals = hc.signals(iss)
	}
	svc, err := exchange.New(ctx, hc.exchange, svcStore, provs, exchange.Options{Now: clk.Now, Observer: observer, Password: hc.password, Sealer: testSealer(t), Email: hc.email,
		Signals: signals, ClaimsHook: hc.claimsHook, Anonymous: hc.anonymous, Webhooks: hc.webhooks})
	if err != nil {
		t.Fatal(err)
	}
	hc.web.Exchange, hc.web.Metrics = svc, metrics
	if hc.web.Compat == nil {
		hc.web.Compat = hc.compat
	}
	if hc.web.Logger == nil {
		// Request lines would bury a failure's own output; failures print bodies.
		hc.web.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv.Config.Handler = web.NewServer(hc.web)
	srv.Start()
	t.Cleanup(srv.Close)
	h := &harness{t: t, url: srv.URL, store: store, svc: svc, iss: iss, clock: clk, cfg: hc.exchange, metrics: metrics}
	// Wait until every provider against a live issuer has discovered.
	deadline := time.Now().Add(5 * time.Second)
	for name, p := range provs {
		if hc.providers[name].issuer != "" {
			continue
		}
		for p.Verifier.Ready() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("provider %s never became ready: %v", name, p.Verifier.Ready())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return h
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not JSON (%d): %s", r.status, r.body)
	}
	return m
}

func (h *harness) do(method, path, contentType string, body []byte, headers ...string) response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (h *harness) postJSON(path string, v any, headers ...string) response {
	h.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(http.MethodPost, path, "application/json", b, headers...)
}

func (h *harness) get(path, bearer string) response {
	h.t.Helper()
	if bearer == "" {
		return h.do(http.MethodGet, path, "", nil)
	}
	return h.do(http.MethodGet, path, "", nil, "Authorization", "Bearer "+bearer)
}

// idToken mints a provider token for the harness issuer with sane defaults.
func (h *harness) idToken(sub string, extra map[string]any) string {
	h.t.Helper()
	claims := map[string]any{
		"sub": sub, "aud": webClientID, "email": sub + "@example.com", "email_verified": true, "name": "User " + sub,
	}
	for k, v := range extra {
		claims[k] = v
	}
	return h.iss.Mint(h.t, claims)
}

type tokens struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int64  `json:"expires_in"`
	ExpiresAt        int64  `json:"expires_at"`
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresAt int64  `json:"refresh_expires_at"`
	SessionID        string `json:"session_id"`
	Created          *bool  `json:"created"`
	User             struct {
		ID            string   `json:"id"`
		Email         string   `json:"email"`
		EmailVerified bool     `json:"email_verified"`
		Name          string   `json:"name"`
		Roles         []string `json:"roles"`
		Identities    []struct {
			ID       string `json:"id"`
			Provider string `json:"provider"`
			Subject  string `json:"subject"`
			Email    string `json:"email"`
		} `json:"identities"`
	} `json:"user"`
}

func (h *harness) exchangeOK(provider, idToken string) tokens {
	h.t.Helper()
	res := h.postJSON("/v1/exchange", map[string]any{"provider": provider, "id_token": idToken})
	if res.status != http.StatusOK {
		h.t.Fatalf("exchange: %d %s", res.status, res.body)
	}
	return decodeTokens(h.t, res)
}

func decodeTokens(t testing.TB, res response) tokens {
	t.Helper()
	var tk tokens
	if err := json.Unmarshal(res.body, &tk); err != nil {
		t.Fatal(err)
	}
	return tk
}

// snapshot is everything the store holds that a refused request could
// have written.
type snapshot struct {
	Users      []storage.User
	Identities map[string][]storage.Identity
	Sessions   map[string][]storage.Session
	Audit      []storage.AuditEvent
}

func (h *harness) snapshot() snapshot {
	h.t.Helper()
	ctx := context.Background()
	users, err := h.store.ListUsers(ctx, storage.UserFilter{Limit: 100000})
	if err != nil {
		h.t.Fatal(err)
	}
	s := snapshot{Users: users, Identities: map[string][]storage.Identity{}, Sessions: map[string][]storage.Session{}}
	for _, u := range users {
		ids, err := h.store.ListIdentities(ctx, u.ID)
		if err != nil {
			h.t.Fatal(err)
		}
		sess, err := h.store.ListSessions(ctx, u.ID)
		if err != nil {
			h.t.Fatal(err)
		}
		sort.Slice(sess, func(i, j int) bool { return sess[i].ID < sess[j].ID })
		s.Identities[u.ID], s.Sessions[u.ID] = ids, sess
	}
	s.Audit, err = h.store.ListAudit(ctx, storage.AuditFilter{Limit: 100000})
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) assertUnchanged(before snapshot) {
	h.t.Helper()
	if after := h.snapshot(); !reflect.DeepEqual(before, after) {
		h.t.Fatalf("store changed by a refused request:\nbefore %+v\nafter  %+v", before, after)
	}
}

// refusal is one bad request of a table test: the JSON body and headers
// sent, and the status, error code and reason it must be refused with.
type refusal struct {
	name    string
	body    map[string]any
	headers []string
	status  int
	code    string
	reason  string
}

// withFields copies base and sets each key, value pair of extra in the copy.
func withFields(base map[string]any, extra ...string) map[string]any {
	m := make(map[string]any, len(base)+len(extra)/2)
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func assertError(t testing.TB, res response, status int, code, reason string) {
	t.Helper()
	if res.status != status {
		t.Fatalf("status %d, want %d: %s", res.status, status, res.body)
	}
	var body struct {
		Error, ErrorDescription, Reason, RequestID string
	}
	m := map[string]any{}
	if err := json.Unmarshal(res.body, &m); err != nil {
		t.Fatalf("error body is not JSON: %s", res.body)
	}
	body.Error, _ = m["error"].(string)
	body.ErrorDescription, _ = m["error_description"].(string)
	body.Reason, _ = m["reason"].(string)
	body.RequestID, _ = m["request_id"].(string)
	if body.Error != code || body.Reason != reason {
		t.Fatalf("error %q reason %q, want %q %q: %s", body.Error, body.Reason, code, reason, res.body)
	}
	if body.ErrorDescription == "" || body.RequestID == "" {
		t.Fatalf("error body lacks description or request_id: %s", res.body)
	}
	if got := res.header.Get("X-Request-Id"); got != body.RequestID {
		t.Fatalf("request_id %q does not match X-Request-Id %q", body.RequestID, got)
	}
}

func keyFetched(m *web.Metrics, provider string) func(error) {
	if m == nil {
		return nil
	}
	return m.KeyFetched(provider)
}

// testKEK is the key-encryption key of every harness store: the key
// material in it is sealed, as in production.
var testKEK = bytes.Repeat([]byte{0x4b}, envelope.KEKSize)

func testSealer(tb testing.TB) *envelope.Sealer {
	tb.Helper()
	s, err := envelope.New(testKEK)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
