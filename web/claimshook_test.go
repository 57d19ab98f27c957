package web_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authex/authex/exchange"
)

// hookServer is a real claims hook: it checks the HMAC signature as an
// app would, records what it was asked, and answers what answer says.
type hookServer struct {
	srv    *httptest.Server
	secret []byte
	calls  atomic.Int32
	answer atomic.Value // string: the body to answer
	delay  atomic.Int64 // nanoseconds to wait before answering
	mu     sync.Mutex
	last   map[string]any
}

func newHookServer(t testing.TB) *hookServer {
	h := &hookServer{secret: []byte("hook-secret-0123456789abcdef")}
	h.answer.Store(`{"claims":{"tenant":"acme","app_roles":["editor"]}}`)
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, h.secret)
		mac.Write([]byte(r.Header.Get("X-Authex-Timestamp") + "."))
		mac.Write(body)
		want := "v1=" + hex.EncodeToString(mac.Sum(nil))
		if !hmac.Equal([]byte(want), []byte(r.Header.Get("X-Authex-Signature"))) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		h.calls.Add(1)
		var req map[string]any
		_ = json.Unmarshal(body, &req)
		h.mu.Lock()
		h.last = req
		h.mu.Unlock()
		if d := h.delay.Load(); d > 0 {
			select {
			case <-time.After(time.Duration(d)):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, h.answer.Load().(string))
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func withHook(hs *hookServer, onFailure string, cacheTTL time.Duration) harnessOption {
	return func(c *harnessConfig) {
		c.metrics = true
		c.claimsHook = &exchange.ClaimsHookConfig{URL: hs.srv.URL, Secret: hs.secret, Timeout: 200 * time.Millisecond,
			CacheTTL: cacheTTL, OnFailure: onFailure}
	}
}

func TestClaimsHookAddsClaims(t *testing.T) {
	hs := newHookServer(t)
	h := newHarness(t, withHook(hs, exchange.HookDeny, time.Minute))
	tk := h.exchangeOK("corp", h.idToken("alice", nil))
	c := claimsOf(t, tk.AccessToken)
	if c["tenant"] != "acme" || len(c["app_roles"].([]any)) != 1 || c["sub"] != tk.User.ID {
		t.Fatalf("claims %v", c)
	}
	hs.mu.Lock()
	user, _ := hs.last["user"].(map[string]any)
	hs.mu.Unlock()
	if user["id"] != tk.User.ID || user["email"] != "alice@example.com" {
		t.Fatalf("the hook was asked %v", hs.last)
	}
	// The refresh answers from the cache: one call in all.
	tk2 := h.refreshOK(tk.RefreshToken)
	if claimsOf(t, tk2.AccessToken)["tenant"] != "acme" || hs.calls.Load() != 1 {
		t.Fatalf("refresh claims %v, hook calls %d", claimsOf(t, tk2.AccessToken), hs.calls.Load())
	}
}

// Concurrent refreshes of one token (the reuse grace) get byte-identical
// answers with the hook on.
func TestClaimsHookConcurrentRefreshIdentical(t *testing.T) {
	hs := newHookServer(t)
	h := newHarness(t, withHook(hs, exchange.HookDeny, time.Minute))
	tk := h.exchangeOK("corp", h.idToken("alice", nil))
	var wg sync.WaitGroup
	answers := make([]response, 8)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": tk.RefreshToken})
		}()
	}
	wg.Wait()
	for _, a := range answers {
		if a.status != http.StatusOK {
			t.Fatalf("refresh: %d %s", a.status, a.body)
		}
		if decodeTokens(t, a).AccessToken != decodeTokens(t, answers[0]).AccessToken {
			t.Fatal("concurrent refreshes answered different access tokens")
		}
	}
}

func TestClaimsHookReservedClaimDenied(t *testing.T) {
	hs := newHookServer(t)
	h := newHarness(t, withHook(hs, exchange.HookDeny, 0))
	tk := h.exchangeOK("corp", h.idToken("alice", nil))
	for _, bad := range []string{
		`{"claims":{"sub":"victim"}}`,
		`{"claims":{"roles":["admin"]}}`,
		`{"claims":{"tenant":"a","tenant":"b"}}`,
		`{"claims":{"Tenant":"a"},"claims":{}}`,
		`{"nope":{}}`,
		`{"claims":{"has space":1}}`,
		`[]`,
	} {
		hs.answer.Store(bad)
		before := h.snapshot()
		res := h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": tk.RefreshToken})
		assertError(t, res, http.StatusServiceUnavailable, "temporarily_unavailable", exchange.ReasonClaimsHookFailed)
		h.assertUnchanged(before)
		res = h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("alice", nil)})
		assertError(t, res, http.StatusServiceUnavailable, "temporarily_unavailable", exchange.ReasonClaimsHookFailed)
	}
	// The refused refresh did not spend the token.
	hs.answer.Store(`{"claims":{}}`)
	h.refreshOK(tk.RefreshToken)
}

func TestClaimsHookOmitOnFailure(t *testing.T) {
	hs := newHookServer(t)
	h := newHarness(t, withHook(hs, exchange.HookOmit, 0))
	hs.answer.Store(`{"claims":{"iss":"https://evil.example"}}`)
	tk := h.exchangeOK("corp", h.idToken("alice", nil))
	if c := claimsOf(t, tk.AccessToken); c["iss"] != h.cfg.Issuer {
		t.Fatalf("claims %v", c)
	}
	// A slow hook: the configured timeout, then the token without extras.
	hs.answer.Store(`{"claims":{"tenant":"acme"}}`)
	hs.delay.Store(int64(2 * time.Second))
	start := time.Now()
	tk = h.refreshOK(tk.RefreshToken)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("refresh waited %s for a hook with a 200ms timeout", took)
	}
	if _, ok := claimsOf(t, tk.AccessToken)["tenant"]; ok {
		t.Fatal("a timed-out hook's claims are in the token")
	}
	if !strings.Contains(scrape(t, h), `authex_claims_hook_total{outcome="failed"} 2`) {
		t.Fatalf("metrics:\n%s", scrape(t, h))
	}
}

func TestClaimsHookTimeoutDenies(t *testing.T) {
	hs := newHookServer(t)
	h := newHarness(t, withHook(hs, exchange.HookDeny, 0))
	hs.delay.Store(int64(2 * time.Second))
	start := time.Now()
	res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("alice", nil)})
	assertError(t, res, http.StatusServiceUnavailable, "temporarily_unavailable", exchange.ReasonClaimsHookFailed)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("exchange waited %s for a hook with a 200ms timeout", took)
	}
}

// scrape reads the harness's metrics.
func scrape(t *testing.T, h *harness) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}
