package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// The admin CLI never shows the password of a --server URL, and sends the
// admin token over plain http only to a loopback host unless
// --insecure-http says so. A recording HTTP proxy (HTTP_PROXY, which the
// CLI's client honours for hosts that are not loopback) shows what would
// have left the machine.
func TestAdminCLIServerURL(t *testing.T) {
	t.Parallel() // waits on timers; runs beside the other waiting tests
	const token = "cli-test-admin-token-7c41e2"
	var mu sync.Mutex
	var seen []string // Authorization headers that reached the proxy
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Host+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_token","error_description":"not an admin token","reason":"unknown_token","request_id":"r1"}`)
	}))
	defer proxy.Close()
	env := []string{"AUTHEX_ADMIN_TOKEN=" + token, "HTTP_PROXY=" + proxy.URL}
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		if !strings.HasSuffix(strings.ToUpper(k), "_PROXY") && !strings.HasPrefix(k, "AUTHEX_") {
			env = append(env, e)
		}
	}
	run := func(args ...string) (string, int) {
		_, errOut, code := cliBinary(t, env, args...)
		return errOut, code
	}
	requests := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
	const password = "s3cretpass"
	down := fmt.Sprintf("127.0.0.1:%d", freePort(t))

	for _, tc := range []struct {
		name   string
		args   []string
		want   string // in stderr
		reach  bool   // the request reaches the proxy
		status int
	}{
		{"plain http to another host", []string{"users", "list", "--server", "http://admin.example:9090"},
			"refusing to send the admin token over plain http to http://admin.example:9090", false, 1},
		{"plain http with a password", []string{"keys", "list", "--server", "http://ops:" + password + "@admin.example:9090/"},
			"refusing to send the admin token over plain http to http://ops:xxxxx@admin.example:9090", false, 1},
		{"not a URL, with a password", []string{"keys", "list", "--server", "http://ops:" + password + "@admin example"},
			"must be an absolute http(s) URL", false, 1},
		{"no scheme, with a password", []string{"keys", "list", "--server", "ops:" + password + "@admin.example:9090"},
			"must be an absolute http(s) URL", false, 1},
		{"loopback down, with a password", []string{"keys", "list", "--server", "http://ops:" + password + "@" + down},
			"cannot reach authex at http://ops:xxxxx@" + down, false, 1},
		{"insecure http, with a password", []string{"keys", "list", "--insecure-http", "--server", "http://ops:" + password + "@admin.example:9090"},
			"the admin token was refused", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(requests())
			errOut, code := run(tc.args...)
			if code != tc.status || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tc.status, tc.want)
			}
			if strings.Contains(errOut, password) || strings.Contains(errOut, token) {
				t.Fatalf("stderr shows a secret: %q", errOut)
			}
			got := requests()[before:]
			if reached := len(got) > 0; reached != tc.reach {
				t.Fatalf("requests through the proxy %q; want reached=%v", got, tc.reach)
			}
			if tc.reach && got[0] != "admin.example:9090 Bearer "+token {
				t.Fatalf("request %q", got[0])
			}
		})
	}
}

// TestAdminCLIRefusesRedirects: Go resends Authorization on a same-host
// redirect, even from https to http; the CLI must not follow one.
func TestAdminCLIRefusesRedirects(t *testing.T) {
	const token = "cli-redirect-admin-token-51ab"
	var leaked atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Store(true)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer target.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusFound)
	}))
	defer redirector.Close()
	_, errOut, code := runCLI(t, []string{"AUTHEX_ADMIN_TOKEN=" + token}, "users", "list", "--server", redirector.URL)
	if code != 1 || !strings.Contains(errOut, "redirected") || leaked.Load() {
		t.Fatalf("redirect followed (leaked %v): exit %d %s", leaked.Load(), code, errOut)
	}
}
