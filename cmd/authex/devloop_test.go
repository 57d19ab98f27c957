package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	devServing = regexp.MustCompile(`authex --dev is serving at (\S+) `)
	devCurl    = regexp.MustCompile(`(?s)    (ID_TOKEN=.*?)\n\n`)
)

// startDev runs `authex serve --dev` in process on the config at path with
// env, and waits until it prints where it serves. It answers that URL and
// everything it printed to stdout.
func startDev(t *testing.T, path string, env map[string]string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	full := map[string]string{"AUTHEX_BOLT_PATH": filepath.Join(dir, "data", "authex.db"), "AUTHEX_LOG_LEVEL": "warn"}
	for k, v := range env {
		full[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &logBuffer{}, &logBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-config", path, "--dev"}, func(k string) string { return full[k] }, stdout, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve --dev exited with %v\n%s", err, stderr.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := devServing.FindStringSubmatch(stdout.String()); m != nil {
			return m[1], stdout.String()
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("serve --dev exited: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve --dev printed no address:\nstdout %s\nstderr %s", stdout.String(), stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// devReady waits until /readyz at base no longer names provider dev: the
// emulator's discovery and keys were fetched from this very server. With
// wantOK it waits for 200 (every provider ready).
func devReady(t *testing.T, base string, wantOK bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get(base + "/readyz")
		if err == nil {
			var body struct {
				Providers map[string]string `json:"providers"`
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			json.Unmarshal(raw, &body)
			_, devNotReady := body.Providers["dev"]
			if (res.StatusCode == http.StatusOK || (!wantOK && res.StatusCode == http.StatusServiceUnavailable)) && !devNotReady {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz: %d %s", res.StatusCode, raw)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("/readyz: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDevFollowsListenAddress: under --dev with no public_url set (as in
// config.example.yaml, which `make run` serves), the public URL and the
// emulator's issuer follow AUTHEX_LISTEN, port 0 included; provider dev
// becomes ready; and the printed curl, run as printed, mints at the
// emulator and exchanges at this server. config.example.yaml also names
// Google, which cannot be reached here: with it, only dev must be ready;
// with a config of the emulator alone, /readyz is 200.
func TestDevFollowsListenAddress(t *testing.T) {
	dir := t.TempDir()
	bare := filepath.Join(dir, "bare.yaml")
	writeFile(t, bare, "log: { format: json }\n")
	port := freePort(t)
	for _, tc := range []struct {
		name, config, listen string
		wantPort             int // 0: any port but 0 (the one bound)
		wantOK               bool
	}{
		{"make run's config on port 0", "../../config.example.yaml", "127.0.0.1:0", 0, false},
		{"a non-default port", bare, fmt.Sprintf("127.0.0.1:%d", port), port, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, printed := startDev(t, tc.config, map[string]string{"AUTHEX_LISTEN": tc.listen})
			u, err := url.Parse(base)
			if err != nil || u.Hostname() != "localhost" || u.Port() == "" || u.Port() == "0" || u.Port() == "8080" ||
				(tc.wantPort != 0 && u.Port() != fmt.Sprint(tc.wantPort)) {
				t.Fatalf("serving at %q, want http://localhost:<bound port>", base)
			}
			devReady(t, base, tc.wantOK)
			var disc map[string]any
			json.Unmarshal([]byte(getBody(t, base+"/emulator/.well-known/openid-configuration", "")), &disc)
			if disc["issuer"] != base+"/emulator" {
				t.Fatalf("emulator issuer %v, want %s/emulator", disc["issuer"], base)
			}
			doc := map[string]any{}
			json.Unmarshal([]byte(getBody(t, base+"/.well-known/openid-configuration", "")), &doc)
			if doc["issuer"] != base {
				t.Fatalf("our issuer %v, want %s", doc["issuer"], base)
			}

			if !strings.Contains(printed, "Open "+base+"/emulator/ ") {
				t.Fatalf("no page to open at %s:\n%s", base, printed)
			}
			m := devCurl.FindStringSubmatch(printed)
			if m == nil {
				t.Fatalf("no curl printed:\n%s", printed)
			}
			script := m[1]
			for _, want := range []string{base + "/emulator/mint", base + "/v1/exchange"} {
				if !strings.Contains(script, want) {
					t.Fatalf("printed curl does not name %s:\n%s", want, script)
				}
			}
			runShell(t, script, "ada@example.com")
			trySignIn(t, base)
		})
	}
}

// runShell runs commands with sh, as a developer pastes them, and wants
// our token answer for email.
func runShell(t *testing.T, script, email string) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is needed to run the printed commands: %v", err)
	}
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("the commands failed: %v\n%s\n%s", err, script, out)
	}
	var answer struct {
		AccessToken string `json:"access_token"`
		User        struct {
			Email string `json:"email"`
		} `json:"user"`
	}
	if err := json.Unmarshal(out, &answer); err != nil || answer.AccessToken == "" || answer.User.Email != email {
		t.Fatalf("the commands answered %s (%v):\n%s", out, err, script)
	}
}

var (
	tryCurl   = regexp.MustCompile(`<pre id="curl">([^<]*)</pre>`)
	tryClaims = regexp.MustCompile(`<pre id="claims">([^<]*)</pre>`)
)

// trySignIn walks the page printDevStart says to open, as a browser: the
// landing page, "Try a sign-in", the emulator's authorize page, approve,
// and the callback page, whose curl (with the sign-in's nonce) exchanges
// the id_token at authex once.
func trySignIn(t *testing.T, base string) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	landing := getBody(t, base+"/emulator/", "")
	if !strings.Contains(landing, `href="`+base+`/emulator/try"`) {
		t.Fatalf("landing page has no sign-in link:\n%s", landing)
	}
	res, err := client.Get(base + "/emulator/try")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	authorize, err := url.Parse(res.Header.Get("Location"))
	if err != nil || res.StatusCode != http.StatusFound || !strings.HasPrefix(authorize.String(), base+"/emulator/authorize?") {
		t.Fatalf("/try: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	getBody(t, authorize.String(), "") // the sign-in page
	form := authorize.Query()
	form.Set("email", "grace@example.com")
	form.Set("name", "Grace")
	form.Set("action", "approve")
	res, err = client.PostForm(base+"/emulator/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	callback := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(callback, base+"/emulator/try/callback?") {
		t.Fatalf("approve: %d %q", res.StatusCode, callback)
	}
	page := getBody(t, callback, "")
	claims, curl := tryClaims.FindStringSubmatch(page), tryCurl.FindStringSubmatch(page)
	if claims == nil || curl == nil || !strings.Contains(claims[1], "grace@example.com") ||
		!strings.Contains(claims[1], form.Get("nonce")) {
		t.Fatalf("callback page lacks the claims (with the nonce) or the curl:\n%s", page)
	}
	script := html.UnescapeString(curl[1])
	if !strings.Contains(script, base+"/v1/exchange") || !strings.Contains(script, `"nonce":"`+form.Get("nonce")+`"`) {
		t.Fatalf("try page curl: %s", script)
	}
	runShell(t, script, "grace@example.com")
	out, _ := exec.Command("sh", "-c", script).CombinedOutput()
	if !strings.Contains(string(out), `"reason":"replayed"`) {
		t.Fatalf("the same id_token exchanged twice: %s", out)
	}
	// The callback is one-time too.
	res, err = client.Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("callback replayed: %d", res.StatusCode)
	}
}

// TestDevKeepsAnExplicitPublicURL: a public_url the operator set (file or
// AUTHEX_PUBLIC_URL) is kept under --dev, and the banner names it.
func TestDevKeepsAnExplicitPublicURL(t *testing.T) {
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	path := filepath.Join(t.TempDir(), "bare.yaml")
	writeFile(t, path, "log: { format: json }\n")
	got, _ := startDev(t, path, map[string]string{"AUTHEX_LISTEN": fmt.Sprintf("127.0.0.1:%d", port), "AUTHEX_PUBLIC_URL": base})
	if got != base {
		t.Fatalf("serving at %q, want the explicit %q", got, base)
	}
	devReady(t, base, true)
}
