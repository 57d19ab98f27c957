package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authex/authex/providers/providertest"
)

func TestConfigCheckReportsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, path, `
server:
  listen: ":8080"
  public_url: "not a url"
tokens:
  acess_ttl: 15m
  refresh_reuse_grace: soon
providers:
  corp:
    type: oidcc
    client_ids: [ "authex" ]
`)
	out, err := checkConfigFile(t, path, noEnv)
	if err == nil {
		t.Fatal("config check accepted a bad file")
	}
	outputHas(t, out,
		"server.public_url: must be an absolute http(s) URL",
		"tokens.acess_ttl: unknown key",
		"tokens.refresh_reuse_grace: cannot unmarshal",
		"providers.corp.type: must be one of",
	)
	if !strings.Contains(out, "4 problem(s)") {
		t.Errorf("want 4 problems counted:\n%s", out)
	}
}

func TestConfigCheckExampleAndEnv(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"config", "check", "--config", "../../config.example.yaml"}, noEnv, &stdout, &stderr); err != nil {
		t.Fatalf("config.example.yaml: %v\n%s", err, stderr.String())
	}
	path := filepath.Join(t.TempDir(), "env.yaml")
	writeFile(t, path, "providers:\n  corp:\n    type: oidc\n    issuer: \"${CORP_ISSUER}\"\n    client_ids: [ \"${CORP_CLIENT}\" ]\n")
	stderr.Reset()
	err := run(context.Background(), []string{"config", "check", "-config", path}, noEnv, &stdout, &stderr)
	if err == nil || !strings.Contains(stderr.String(), "providers.corp.issuer: environment variable CORP_ISSUER is not set") ||
		!strings.Contains(stderr.String(), "providers.corp.client_ids[0]: environment variable CORP_CLIENT is not set") {
		t.Fatalf("unset variables not reported: %v\n%s", err, stderr.String())
	}
	env := map[string]string{"CORP_ISSUER": "https://login.example.com", "CORP_CLIENT": "authex"}
	if err := run(context.Background(), []string{"config", "check", "-config", path}, func(k string) string { return env[k] }, &stdout, &stderr); err != nil {
		t.Fatalf("with variables set: %v", err)
	}
}

func TestVersion(t *testing.T) {
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"version"}, noEnv, &stdout, io.Discard); err != nil || !strings.HasPrefix(stdout.String(), "authex ") {
		t.Fatalf("version: %v %q", err, stdout.String())
	}
}

// TestRestartKeepsEverything runs the real binary twice on one data file:
// users, sessions and the signing key survive, a token issued before still
// verifies, and the newest refresh token still works.
func TestRestartKeepsEverything(t *testing.T) {
	bin := buildBinary(t)
	iss := providertest.NewIssuer(t)
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfgPath := writeBoltConfig(t, dir, "authex", port, base, fmt.Sprintf(`
providers:
  corp: { type: oidc, issuer: %q, client_ids: [ "web" ] }
log: { format: json }
`, iss.URL()))

	first := startBinary(t, bin, cfgPath, base)
	idToken := iss.Mint(t, map[string]any{"sub": "restart", "aud": "web", "email": "r@example.com", "email_verified": true})
	var ex struct {
		AccessToken, RefreshToken string `json:"-"`
	}
	tk := postJSON(t, base+"/v1/exchange", map[string]any{"provider": "corp", "id_token": idToken})
	ex.AccessToken, ex.RefreshToken = tk["access_token"].(string), tk["refresh_token"].(string)
	user := tk["user"].(map[string]any)["id"].(string)
	rotated := postJSON(t, base+"/v1/token/refresh", map[string]any{"refresh_token": ex.RefreshToken})
	newest := rotated["refresh_token"].(string)
	jwksBefore := getBody(t, base+"/.well-known/jwks.json", "")
	first.stop(t)

	second := startBinary(t, bin, cfgPath, base)
	defer second.stop(t)
	me := map[string]any{}
	if err := json.Unmarshal([]byte(getBody(t, base+"/v1/me", ex.AccessToken)), &me); err != nil || me["id"] != user {
		t.Fatalf("token issued before the restart does not read /v1/me: %v %v", me, err)
	}
	if jwks := getBody(t, base+"/.well-known/jwks.json", ""); jwks != jwksBefore {
		t.Fatalf("JWKS changed across restart:\n%s\n%s", jwksBefore, jwks)
	}
	again := postJSON(t, base+"/v1/token/refresh", map[string]any{"refresh_token": newest})
	if again["user"].(map[string]any)["id"] != user {
		t.Fatalf("refresh after restart: %v", again)
	}
}

func TestSecondInstanceOnSameFileFails(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfgPath := filepath.Join(dir, "authex.yaml")
	writeFile(t, cfgPath, fmt.Sprintf("server: { listen: \"127.0.0.1:%d\", public_url: %q }\nstorage: { bolt: { path: %q } }\n", port, base, filepath.Join(dir, "a.db")))
	p := startBinary(t, bin, cfgPath, base)
	defer p.stop(t)
	out, err := exec.Command(bin, "serve", "-config", cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "locked") {
		t.Fatalf("second instance: %v\n%s", err, out)
	}
}

var noEnv = func(string) string { return "" }

// writeBoltConfig writes a config for an instance listening on port,
// announced at public, with its bbolt file at dir/data/authex.db; rest
// holds the other sections. It returns the config's path, dir/name.yaml.
func writeBoltConfig(t *testing.T, dir, name string, port int, public, rest string) string {
	t.Helper()
	path := filepath.Join(dir, name+".yaml")
	writeFile(t, path, fmt.Sprintf("server: { listen: \"127.0.0.1:%d\", public_url: %q }\nstorage: { driver: bolt, bolt: { path: %q } }\n",
		port, public, filepath.Join(dir, "data", "authex.db"))+rest)
	return path
}

// checkConfigFile runs `authex config check` on path and returns what it
// printed to stderr.
func checkConfigFile(t *testing.T, path string, getenv func(string) string) (string, error) {
	t.Helper()
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"config", "check", "-config", path}, getenv, io.Discard, &stderr)
	return stderr.String(), err
}

// outputHas reports each of wants that out lacks.
func outputHas(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

var (
	buildMu     sync.Mutex
	builtBinary string
)

func buildBinary(t *testing.T) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if builtBinary != "" {
		return builtBinary
	}
	out := filepath.Join(os.TempDir(), fmt.Sprintf("authex-test-%d", os.Getpid()))
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	builtBinary = out
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBinary != "" {
		os.Remove(builtBinary)
	}
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// process is one running authex: the built binary as a child process, or
// run() in this process (what the tests use where the binary itself is
// not the point).
type process struct {
	cmd    *exec.Cmd          // the binary; nil in process
	cancel context.CancelFunc // in process: what SIGTERM is to the binary
	logs   *logBuffer         // its standard error
	done   chan struct{}      // closed when it has exited
	err    error              // its exit, once done is closed
}

// logBuffer is a process's standard error, safe to read while it runs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// launch starts authex with args and env (added to this process's
// environment): the binary bin, or run() in this process when bin is "".
// It does not wait for anything.
func launch(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{logs: &logBuffer{}, done: make(chan struct{})}
	if bin == "" {
		ctx, cancel := context.WithCancel(context.Background())
		p.cancel = cancel
		getenv := envLookup(append(os.Environ(), env...))
		go func() {
			p.err = run(ctx, args, getenv, io.Discard, p.logs)
			close(p.done)
		}()
		return p
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p
}

// envLookup is getenv over env, a whole environment ("K=V" lines, the
// last of a name wins, as exec.Cmd.Env).
func envLookup(env []string) func(string) string {
	m := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) string { return m[k] }
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill ends the process at once (in process: as fast as a drain allows)
// and waits for it.
func (p *process) kill() {
	if p.cmd != nil {
		p.cmd.Process.Kill()
	} else {
		p.cancel()
	}
	<-p.done
}

// startServe runs `authex serve -config cfgPath` in process and waits
// until base answers /readyz.
func startServe(t *testing.T, cfgPath, base string, env []string, extraArgs ...string) *process {
	t.Helper()
	return startReady(t, "", cfgPath, base, env, extraArgs...)
}

// startBinary runs the binary bin as `serve -config cfgPath` and waits
// until base answers /readyz.
func startBinary(t *testing.T, bin, cfgPath, base string, extraArgs ...string) *process {
	t.Helper()
	return startReady(t, bin, cfgPath, base, nil, extraArgs...)
}

func startReady(t *testing.T, bin, cfgPath, base string, env []string, extraArgs ...string) *process {
	t.Helper()
	p := launch(t, bin, env, append([]string{"serve", "-config", cfgPath}, extraArgs...)...)
	t.Cleanup(func() {
		if !p.exited() {
			p.kill()
		}
	})
	if !waitReady(base, 10*time.Second) {
		p.kill()
		t.Fatalf("authex did not become ready: %v\n%s", p.err, p.logs.String())
	}
	return p
}

// stop sends SIGTERM (in process: ends run's context) and demands a clean
// exit 0.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if p.exited() {
		return
	}
	if p.cmd != nil {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	} else {
		p.cancel()
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("authex exited with %v after SIGTERM\n%s", p.err, p.logs.String())
		}
		if !strings.Contains(p.logs.String(), `"msg":"stopped"`) {
			t.Fatalf("no clean stop logged:\n%s", p.logs.String())
		}
	case <-time.After(15 * time.Second):
		p.kill()
		t.Fatal("authex did not stop within 15s of SIGTERM")
	}
}

// runCLI runs one authex command in process, as main would, with env as
// its whole environment, and answers its output and exit status.
func runCLI(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = exitCode(run(context.Background(), args, envLookup(env), &out, &errb), &errb)
	return out.String(), errb.String(), code
}

func postJSON(t *testing.T, url string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	res, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", url, res.StatusCode, raw)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func getBody(t *testing.T, url, bearer string) string {
	t.Helper()
	status, raw := request(t, http.MethodGet, url, bearer)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, status, raw)
	}
	return string(raw)
}

func TestConfigCheckRefusesPlainHTTPProviders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "http.yaml")
	writeFile(t, path, `
providers:
  corp: { type: oidc, issuer: "http://login.example.com", client_ids: [ "authex" ] }
  local: { type: oidc, issuer: "http://127.0.0.1:9090/emulator", client_ids: [ "authex" ] }
`)
	out, err := checkConfigFile(t, path, noEnv)
	if err == nil || !strings.Contains(out, "providers.corp.issuer: must use https") || strings.Contains(out, "providers.local") {
		t.Fatalf("plain http issuer: %v\n%s", err, out)
	}
}
