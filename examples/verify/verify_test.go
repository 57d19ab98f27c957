// Package verify_test runs each API of docs/verify.md (Django REST
// framework with simplejwt, FastAPI with PyJWT, Node with jose, Go with
// go-oidc) as its own server against the real authex binary, and holds
// the guide's code blocks to the files they show.
//
// The frameworks come from Debian packages and npm (.ci/run installs
// them). Without them a framework's test skips and says what to install;
// with AUTHEX_TEST_FRAMEWORKS=1 (CI) a missing framework fails instead.
package verify_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authex/authex/providers/emulator"
)

const audience = "api"

// required: CI demands every framework; elsewhere a missing one skips.
var required = os.Getenv("AUTHEX_TEST_FRAMEWORKS") == "1"

func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if required {
		t.Fatalf("%s (AUTHEX_TEST_FRAMEWORKS=1 requires it)", msg)
	}
	t.Skipf("%s; .ci/run installs it, and AUTHEX_TEST_FRAMEWORKS=1 makes this a failure", msg)
}

// tokenSet is what every API is tried with: real access tokens from
// running authex instances that share one signing key and one issuer.
type tokenSet struct {
	issuer        string // instance main's public URL
	subject       string // the user the valid token is for
	valid         string
	wrongAudience string // from instance billing: aud is not "api"
	expired       string // from instance short: access_ttl 1s, long gone
	tampered      string // valid's payload with another sub, signature kept
	refreshToken  string // a session of main's, for openid-client
}

var (
	setupOnce sync.Once
	setup     *tokenSet
	setupErr  error
	cleanups  []func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	os.Exit(code)
}

// tokens starts authex once for every test of the package.
func tokens(t *testing.T) *tokenSet {
	t.Helper()
	setupOnce.Do(func() { setup, setupErr = startAuthex() })
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	return setup
}

// startAuthex builds the binary and runs three instances beside an
// in-process emulator (the OpenID provider users sign in with):
//
//	main     public URL = its own address, audience api, access_ttl 15m
//	billing  same key and issuer, audience billing (wrong-audience tokens)
//	short    same key and issuer, access_ttl 1s (expired tokens)
//
// The three sign with one PEM key (tokens.signing_key_files), so every
// token verifies against main's JWKS and differs only in what is tested.
func startAuthex() (*tokenSet, error) {
	dir, err := os.MkdirTemp("", "authex-verify-")
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })

	bin := filepath.Join(dir, "authex")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/authex/authex/cmd/authex").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build authex: %v\n%s", err, out)
	}

	emuSrv := httptest.NewUnstartedServer(nil)
	emu, err := emulator.New(emulator.Config{Issuer: "http://" + emuSrv.Listener.Addr().String() + "/emulator"})
	if err != nil {
		return nil, err
	}
	emuSrv.Config.Handler = emu
	emuSrv.Start()
	cleanups = append(cleanups, emuSrv.Close)

	keyFile := filepath.Join(dir, "signing.pem")
	if err := writeSigningKey(keyFile); err != nil {
		return nil, err
	}
	kek := make([]byte, 32)
	rand.Read(kek)
	env := []string{"AUTHEX_KEK=" + base64.StdEncoding.EncodeToString(kek)}

	mainAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	issuer := "http://" + mainAddr
	start := func(name, addr, extraTokens string) (string, error) {
		if addr == "" {
			if addr, err = freeAddr(); err != nil {
				return "", err
			}
		}
		cfg := fmt.Sprintf(`server: { listen: %q, public_url: %q }
storage: { bolt: { path: %q } }
tokens: { audience: [ %s ], signing_key_files: [ %q ]%s }
providers:
  dev: { type: oidc, issuer: %q, client_ids: [ %q ] }
log: { format: json }
`, addr, issuer, filepath.Join(dir, name, "authex.db"), audienceFor(name), keyFile, extraTokens, emu.Issuer(), emulator.DefaultClientID)
		cfgPath := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			return "", err
		}
		p, err := startProcess(bin, []string{"serve", "-config", cfgPath}, "", env)
		if err != nil {
			return "", err
		}
		cleanups = append(cleanups, p.stop)
		base := "http://" + addr
		if err := p.waitHTTP(base+"/readyz", 20*time.Second); err != nil {
			return "", fmt.Errorf("authex %s: %v", name, err)
		}
		return base, nil
	}

	// The expired token first: it has the longest to age while the rest starts.
	shortURL, err := start("short", "", ", access_ttl: 1s")
	if err != nil {
		return nil, err
	}
	expired, err := signIn(emu, shortURL, "expired@example.com")
	if err != nil {
		return nil, err
	}
	if _, err := start("main", mainAddr, ""); err != nil {
		return nil, err
	}
	billingURL, err := start("billing", "", "")
	if err != nil {
		return nil, err
	}
	valid, err := signIn(emu, issuer, "ada@example.com")
	if err != nil {
		return nil, err
	}
	wrong, err := signIn(emu, billingURL, "ada@example.com")
	if err != nil {
		return nil, err
	}
	forOIDCClient, err := signIn(emu, issuer, "grace@example.com")
	if err != nil {
		return nil, err
	}
	tampered, err := withSubject(valid["access_token"].(string), "someone-else")
	if err != nil {
		return nil, err
	}
	// Every verifier here has zero leeway: a second past exp is expired.
	if wait := time.Until(time.Unix(int64(expired["expires_at"].(float64)), 0).Add(time.Second)); wait > 0 {
		time.Sleep(wait)
	}
	return &tokenSet{
		issuer: issuer, subject: valid["user"].(map[string]any)["id"].(string),
		valid: valid["access_token"].(string), wrongAudience: wrong["access_token"].(string),
		expired: expired["access_token"].(string), tampered: tampered,
		refreshToken: forOIDCClient["refresh_token"].(string),
	}, nil
}

func audienceFor(instance string) string {
	if instance == "billing" {
		return "billing"
	}
	return audience
}

// signIn signs a user in at the emulator and trades the id_token at
// authex's /v1/exchange: the path every access token takes.
func signIn(emu *emulator.Emulator, authexURL, email string) (map[string]any, error) {
	idToken, err := emu.Sign(emulator.Claims{"sub": email, "email": email, "name": "Ada"})
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]any{"provider": "dev", "id_token": idToken})
	res, err := http.Post(authexURL+"/v1/exchange", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("exchange at %s: %d %s", authexURL, res.StatusCode, raw)
	}
	var out map[string]any
	return out, json.Unmarshal(raw, &out)
}

func writeSigningKey(path string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// withSubject returns the token with its payload's sub replaced and the
// signature kept: what a forger who cannot sign would send.
func withSubject(token, sub string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("not a JWS: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		return "", err
	}
	claims["sub"] = sub
	raw, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, "."), nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// process is a child this package started; stop kills it by its pid.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startProcess(name string, args []string, dir string, env []string) (*process, error) {
	p := &process{cmd: exec.Command(name, args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) stop() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill()
		<-p.done
	}
}

// waitHTTP waits until url answers at all (any status), or the process exits.
func (p *process) waitHTTP(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("exited before serving: %v\n%s", p.cmd.ProcessState, p.out.String())
		default:
		}
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer at %s after %s\n%s", url, timeout, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// api is one framework's example, run as its usual server.
type api struct {
	name string
	// prepare checks the framework is installed and answers the command
	// that serves the example on addr, from dir.
	prepare func(t *testing.T, addr string) (cmd string, args []string, env []string)
	dir     string
	path    string // the protected route
	subject string // the JSON field the route answers the user id in
}

func python(t *testing.T, modules string) string {
	t.Helper()
	// Debian's interpreter: the frameworks are Debian packages, and a
	// python3 earlier on PATH (pyenv, a venv) may not see them.
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		missing(t, "python3 (Debian's /usr/bin/python3) is not installed")
	}
	if out, err := exec.Command(py, "-c", "import "+modules).CombinedOutput(); err != nil {
		missing(t, "python3 cannot import %s: %s", modules, bytes.TrimSpace(out))
	}
	return py
}

var apis = []api{
	{
		name: "django", dir: "django", path: "/api/auth/user/", subject: "id",
		prepare: func(t *testing.T, addr string) (string, []string, []string) {
			py := python(t, "django, rest_framework, rest_framework_simplejwt")
			return py, []string{"manage.py", "runserver", addr, "--noreload"}, []string{"DJANGO_SECRET_KEY=" + rand.Text()}
		},
	},
	{
		name: "fastapi", dir: "fastapi", path: "/me", subject: "sub",
		prepare: func(t *testing.T, addr string) (string, []string, []string) {
			py := python(t, "fastapi, uvicorn, jwt")
			host, port, _ := net.SplitHostPort(addr)
			return py, []string{"-m", "uvicorn", "app:app", "--host", host, "--port", port}, nil
		},
	},
	{
		name: "node", dir: "node", path: "/me", subject: "sub",
		prepare: func(t *testing.T, addr string) (string, []string, []string) {
			node := nodeWithModules(t)
			_, port, _ := net.SplitHostPort(addr)
			return node, []string{"server.mjs"}, []string{"PORT=" + port}
		},
	},
	{
		name: "go", dir: "go", path: "/me", subject: "sub",
		prepare: func(t *testing.T, addr string) (string, []string, []string) {
			bin := filepath.Join(t.TempDir(), "api")
			if out, err := exec.Command("go", "build", "-o", bin, "./go").CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, out)
			}
			return bin, nil, []string{"LISTEN=" + addr}
		},
	},
}

func nodeWithModules(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not installed")
	}
	if _, err := os.Stat(filepath.Join("node", "node_modules", "jose")); err != nil {
		missing(t, "examples/verify/node has no node_modules (run npm ci there)")
	}
	return node
}

// TestAPIsVerifyAuthexTokens: each framework's minimal setup answers 200
// with the user for a valid token, and 401 for an expired, a
// wrong-audience, a tampered or no token.
func TestAPIsVerifyAuthexTokens(t *testing.T) {
	for _, a := range apis {
		t.Run(a.name, func(t *testing.T) {
			addr, err := freeAddr()
			if err != nil {
				t.Fatal(err)
			}
			name, args, env := a.prepare(t, addr)
			tk := tokens(t)
			env = append(env, "AUTHEX_URL="+tk.issuer, "AUTHEX_AUDIENCE="+audience, "PYTHONDONTWRITEBYTECODE=1")
			p, err := startProcess(name, args, a.dir, env)
			if err != nil {
				t.Fatal(err)
			}
			defer p.stop()
			url := "http://" + addr + a.path
			if err := p.waitHTTP(url, 30*time.Second); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name, token string
				want        int
			}{
				{"valid", tk.valid, http.StatusOK},
				{"expired", tk.expired, http.StatusUnauthorized},
				{"wrong audience", tk.wrongAudience, http.StatusUnauthorized},
				{"tampered", tk.tampered, http.StatusUnauthorized},
				{"no token", "", http.StatusUnauthorized},
			} {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				if tc.token != "" {
					req.Header.Set("Authorization", "Bearer "+tc.token)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != tc.want {
					t.Errorf("%s token: %d %s, want %d\n%s", tc.name, res.StatusCode, body, tc.want, p.out.String())
					continue
				}
				if tc.want == http.StatusOK {
					var got map[string]any
					if err := json.Unmarshal(body, &got); err != nil || got[a.subject] != tk.subject {
						t.Errorf("valid token answered %s, want %s = %s", body, a.subject, tk.subject)
					}
				}
			}
		})
	}
}

// TestOpenIDClientOAuthDiscovery: openid-client in plain OAuth mode
// (RFC 8414 metadata, issuer checked exactly) discovers authex and
// refreshes a session at the token endpoint it found there.
func TestOpenIDClientOAuthDiscovery(t *testing.T) {
	node := nodeWithModules(t)
	if _, err := os.Stat(filepath.Join("node", "node_modules", "openid-client")); err != nil {
		missing(t, "examples/verify/node has no openid-client (run npm ci there)")
	}
	tk := tokens(t)
	cmd := exec.Command(node, "discovery.mjs")
	cmd.Dir = "node"
	cmd.Env = append(os.Environ(), "AUTHEX_URL="+tk.issuer, "AUTHEX_CLIENT_ID=verify-test", "REFRESH_TOKEN="+tk.refreshToken)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openid-client: %v\n%s", err, out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output %s", out)
	}
	if got["issuer"] != tk.issuer || got["token_endpoint"] != tk.issuer+"/oauth/token" || got["refreshed"] != true {
		t.Fatalf("openid-client saw %v", got)
	}
}
