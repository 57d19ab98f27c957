package web_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMetricsAfterASmallLoad scrapes /metrics after a known load and checks
// each named series and its count.
func TestMetricsAfterASmallLoad(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken), func(c *harnessConfig) { c.exchange.ReuseGrace = 10 * time.Second; c.metrics = true })
	first := h.exchangeOK("corp", h.idToken("mia", nil))                                                                                // created
	second := h.exchangeOK("corp", h.idToken("mia", nil))                                                                               // ok
	h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("mia", map[string]any{"aud": "someone-else"})}) // audience_mismatch
	h.postJSON("/v1/exchange", map[string]any{"provider": "nope", "id_token": "x"})                                                     // unknown provider
	rotated := h.refreshOK(first.RefreshToken)                                                                                          // rotated
	h.refreshOK(first.RefreshToken)                                                                                                     // grace
	h.clock.Advance(11 * time.Second)
	h.postJSON("/v1/token/refresh", map[string]any{"refresh_token": first.RefreshToken}) // reused: session revoked
	_ = rotated
	_ = second

	res := h.get("/metrics", adminToken)
	if res.status != http.StatusOK {
		t.Fatalf("/metrics: %d", res.status)
	}
	body := string(res.body)
	for _, want := range []string{
		`authex_exchanges_total{outcome="created",provider="corp"} 1`,
		`authex_exchanges_total{outcome="ok",provider="corp"} 1`,
		`authex_exchanges_total{outcome="audience_mismatch",provider="corp"} 1`,
		`authex_exchanges_total{outcome="unknown_provider",provider="unknown"} 1`,
		`authex_refreshes_total{outcome="rotated"} 1`,
		`authex_refreshes_total{outcome="grace"} 1`,
		`authex_refreshes_total{outcome="reused"} 1`,
		`authex_http_requests_total{method="POST",route="/v1/exchange",status="200"} 2`,
		`authex_http_requests_total{method="POST",route="/v1/exchange",status="401"} 1`,
		`authex_http_requests_total{method="POST",route="/v1/exchange",status="400"} 1`,
		`authex_http_requests_total{method="POST",route="/v1/token/refresh",status="200"} 2`,
		`authex_http_requests_total{method="POST",route="/v1/token/refresh",status="400"} 1`,
		`authex_http_request_duration_seconds_count{method="POST",route="/v1/token/refresh"} 3`,
		`authex_users 1`,
		`authex_active_sessions 1`, // two sessions; the reused one is revoked
		`authex_provider_key_fetches_total{provider="corp",result="ok"} 1`,
		`authex_provider_key_fetches_total{provider="google",result="ok"} 1`,
		`authex_store_commit_duration_seconds_count{op="create_user"} 1`,
		`authex_store_commit_duration_seconds_count{op="create_session"} 2`,
		`authex_store_commit_duration_seconds_count{op="rotate_session"} 1`,
		`authex_store_commit_duration_seconds_count{op="revoke_session"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(body, "\ngo_goroutines ") {
		t.Error("no Go runtime metrics")
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", grepLines(body, "authex_"))
	}
	// A raw path never becomes a label: probes of random paths share one.
	h.get("/no/such/"+strings.Repeat("x", 10), "")
	if body := string(h.get("/metrics", adminToken).body); strings.Contains(body, "xxxxxxxxxx") ||
		!strings.Contains(body, `authex_http_requests_total{method="GET",route="unmatched",status="404"} 1`) {
		t.Errorf("unmatched route labelled badly:\n%s", grepLines(body, "authex_http_requests_total"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestClientIPHonoursForwardedForOnlyFromTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted string
		want    string
	}{
		{"no trusted proxies", "", "127.0.0.1"},
		{"another network trusted", "10.0.0.0/8", "127.0.0.1"},
		{"loopback trusted", "127.0.0.1/32", "203.0.113.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *harnessConfig) {
				if tc.trusted != "" {
					_, n, _ := net.ParseCIDR(tc.trusted)
					c.web.TrustedProxies = []*net.IPNet{n}
				}
			})
			res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": h.idToken("ned", nil)},
				"X-Forwarded-For", "198.51.100.1, 203.0.113.7")
			tk := decodeTokens(t, res)
			sess, err := h.store.GetSession(context.Background(), tk.SessionID)
			if err != nil {
				t.Fatal(err)
			}
			if sess.IP != tc.want {
				t.Fatalf("session IP %q, want %q", sess.IP, tc.want)
			}
		})
	}
}

// TestMetricsCountPasswordSignIns: registrations and logins count as
// exchanges of the password provider.
func TestMetricsCountPasswordSignIns(t *testing.T) {
	h := newHarness(t, withAdmin(adminToken), withPassword(passwordConfig()), func(c *harnessConfig) { c.metrics = true })
	h.register("pat@example.com", goodPassword, "Pat")
	h.loginOK("pat@example.com", goodPassword)
	h.login("pat@example.com", "wrong password, long enough")
	body := string(h.get("/metrics", adminToken).body)
	for _, want := range []string{
		`authex_exchanges_total{outcome="created",provider="password"} 1`,
		`authex_exchanges_total{outcome="ok",provider="password"} 1`,
		`authex_exchanges_total{outcome="invalid_credentials",provider="password"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, grepLines(body, "authex_exchanges_total"))
		}
	}
}
