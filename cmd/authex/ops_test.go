package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authex/authex/providers/providertest"
)

const testAdminToken = "ops-test-admin-token-5f1d0c7e9a7b41c2"

// opsServer is a running binary with its addresses and environment.
type opsServer struct {
	*process
	base, admin string // public and admin base URLs (equal without admin_listen)
	env         []string
	cfgPath     string
}

type opsOptions struct {
	separateAdmin bool
	tokens        string // extra YAML under tokens:
	dbPath        string // "" = dir/data/authex.db
	port          int    // 0 = a free port
}

func startOps(t *testing.T, iss *providertest.Issuer, dir string, o opsOptions) *opsServer {
	t.Helper()
	port := o.port
	if port == 0 {
		port = freePort(t)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	admin := base
	adminListen := ""
	if o.separateAdmin {
		ap := freePort(t)
		admin = fmt.Sprintf("http://127.0.0.1:%d", ap)
		adminListen = fmt.Sprintf("127.0.0.1:%d", ap)
	}
	db := o.dbPath
	if db == "" {
		db = filepath.Join(dir, "data", "authex.db")
	}
	cfgPath := filepath.Join(dir, fmt.Sprintf("authex-%d.yaml", port))
	writeFile(t, cfgPath, fmt.Sprintf(`
server: { listen: "127.0.0.1:%d", public_url: %q, admin_listen: %q }
storage: { driver: bolt, bolt: { path: %q } }
tokens: { audience: [ "api" ] %s }
providers:
  corp: { type: oidc, issuer: %q, client_ids: [ "web" ] }
  password: { type: password }
admin:
  tokens: [ "${AUTHEX_ADMIN_TOKEN}" ]
log: { format: json }
`, port, base, adminListen, db, o.tokens, iss.URL()))
	extra := []string{"AUTHEX_ADMIN_TOKEN=" + testAdminToken, "AUTHEX_SERVER=" + admin}
	p := startServe(t, cfgPath, base, extra)
	return &opsServer{process: p, base: base, admin: admin, env: append(os.Environ(), extra...), cfgPath: cfgPath}
}

func (s *opsServer) logText() string { return s.logs.String() }

// cli runs an admin command in process with env (nil: the server's) as
// its whole environment, and returns its output and exit code.
func (s *opsServer) cli(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if env == nil {
		env = s.env
	}
	return runCLI(t, env, args...)
}

// cliBinary is cli with the built binary: where the process environment
// itself is the point (HTTP_PROXY).
func cliBinary(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(buildBinary(t), args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func (s *opsServer) cliOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := s.cli(t, nil, args...)
	if code != 0 {
		t.Fatalf("authex %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

type exchanged struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	SessionID    string `json:"session_id"`
	User         struct {
		ID    string   `json:"id"`
		Roles []string `json:"roles"`
	} `json:"user"`
}

func signIn(t testing.TB, iss *providertest.Issuer, base, sub string) (exchanged, string) {
	t.Helper()
	idToken := iss.Mint(t, map[string]any{"sub": sub, "aud": "web", "email": sub + "@example.com", "email_verified": true})
	var ex exchanged
	status, raw := post(t, base+"/v1/exchange", map[string]any{"provider": "corp", "id_token": idToken})
	if status != http.StatusOK {
		t.Fatalf("exchange %s: %d %s", sub, status, raw)
	}
	if err := json.Unmarshal(raw, &ex); err != nil {
		t.Fatal(err)
	}
	return ex, idToken
}

func refresh(t testing.TB, base, rt string) (exchanged, int) {
	t.Helper()
	var ex exchanged
	status, raw := post(t, base+"/v1/token/refresh", map[string]any{"refresh_token": rt})
	if status == http.StatusOK {
		if err := json.Unmarshal(raw, &ex); err != nil {
			t.Fatal(err)
		}
	}
	return ex, status
}

func post(t testing.TB, url string, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	res, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, raw
}

func request(t testing.TB, method, url, bearer string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, raw
}

func TestAdminCLIAgainstTheRunningBinary(t *testing.T) {
	iss := providertest.NewIssuer(t)
	dir := t.TempDir()
	s := startOps(t, iss, dir, opsOptions{})
	defer s.stop(t)
	ann, _ := signIn(t, iss, s.base, "ann")
	bob, _ := signIn(t, iss, s.base, "bob")

	out := s.cliOK(t, "users", "list")
	if !strings.HasPrefix(out, "ID") || !strings.Contains(out, "EMAIL") || !strings.Contains(out, "ann@example.com") ||
		!strings.Contains(out, "bob@example.com") {
		t.Fatalf("users list:\n%s", out)
	}
	var listed struct {
		Users []struct{ ID, Email string } `json:"users"`
	}
	if err := json.Unmarshal([]byte(s.cliOK(t, "users", "list", "--json", "--email", "ANN@example.com")), &listed); err != nil ||
		len(listed.Users) != 1 || listed.Users[0].ID != ann.User.ID {
		t.Fatalf("users list --json --email: %v %+v", err, listed)
	}
	if out := s.cliOK(t, "users", "list", "--limit", "1"); !strings.Contains(out, "more: --after ") {
		t.Fatalf("paging hint missing:\n%s", out)
	}
	if out := s.cliOK(t, "users", "get", ann.User.ID); !strings.Contains(out, "ann@example.com (verified)") ||
		!strings.Contains(out, "PROVIDER") || !strings.Contains(out, "corp") {
		t.Fatalf("users get:\n%s", out)
	}
	if out := s.cliOK(t, "users", "roles", ann.User.ID, "staff", "admin"); !strings.Contains(out, "roles: admin,staff") {
		t.Fatalf("users roles set:\n%s", out)
	}
	if out := s.cliOK(t, "users", "roles", ann.User.ID); !strings.Contains(out, "roles: admin,staff") {
		t.Fatalf("users roles show:\n%s", out)
	}
	r, st := refresh(t, s.base, ann.RefreshToken)
	if st != http.StatusOK || strings.Join(r.User.Roles, ",") != "admin,staff" {
		t.Fatalf("roles after refresh: %d %+v", st, r.User)
	}

	if out := s.cliOK(t, "users", "disable", bob.User.ID); !strings.Contains(out, "disabled; 1 session(s) revoked") {
		t.Fatalf("users disable:\n%s", out)
	}
	if _, st := refresh(t, s.base, bob.RefreshToken); st != http.StatusBadRequest {
		t.Fatalf("refresh after disable: %d", st)
	}
	if out := s.cliOK(t, "sessions", "list", bob.User.ID); !strings.Contains(out, "revoked (user_disabled)") {
		t.Fatalf("sessions list:\n%s", out)
	}
	if out := s.cliOK(t, "users", "enable", bob.User.ID); !strings.Contains(out, "enabled") {
		t.Fatalf("users enable:\n%s", out)
	}
	bob2, _ := signIn(t, iss, s.base, "bob")
	if out := s.cliOK(t, "sessions", "revoke", bob2.SessionID); !strings.Contains(out, "1 session(s) revoked") {
		t.Fatalf("sessions revoke:\n%s", out)
	}
	signIn(t, iss, s.base, "bob")
	signIn(t, iss, s.base, "bob")
	if out := s.cliOK(t, "sessions", "revoke", "--user", bob.User.ID); !strings.Contains(out, "2 session(s) revoked") {
		t.Fatalf("sessions revoke --user:\n%s", out)
	}

	if out := s.cliOK(t, "keys", "list"); !strings.Contains(out, "KID") || !strings.Contains(out, "active") {
		t.Fatalf("keys list:\n%s", out)
	}
	if out := s.cliOK(t, "keys", "rotate"); !strings.Contains(out, "new key") {
		t.Fatalf("keys rotate:\n%s", out)
	}
	if out := s.cliOK(t, "keys", "list"); !strings.Contains(out, "pending") || !strings.Contains(out, "active") {
		t.Fatalf("keys list after rotate:\n%s", out)
	}

	if out := s.cliOK(t, "audit", "--type", "user.disabled"); !strings.Contains(out, "user.disabled") || !strings.Contains(out, bob.User.ID) ||
		strings.Contains(out, "user.created") {
		t.Fatalf("audit --type:\n%s", out)
	}
	var audit struct {
		Events []struct{ Type string } `json:"events"`
	}
	if err := json.Unmarshal([]byte(s.cliOK(t, "audit", "--since", "1h", "--user", bob.User.ID, "--json")), &audit); err != nil || len(audit.Events) < 4 {
		t.Fatalf("audit --json: %v %+v", err, audit)
	}

	backup := filepath.Join(dir, "backup.db")
	if out := s.cliOK(t, "backup", backup); !strings.Contains(out, "verified") {
		t.Fatalf("backup:\n%s", out)
	}
	if _, errOut, code := s.cli(t, nil, "backup", backup); code != 1 || !strings.Contains(errOut, "exists") {
		t.Fatalf("backup over an existing file: %d %s", code, errOut)
	}
	s.cliOK(t, "backup", backup, "--force")

	if out := s.cliOK(t, "users", "delete", bob.User.ID); !strings.Contains(out, "deleted user") {
		t.Fatalf("users delete:\n%s", out)
	}
	if _, errOut, code := s.cli(t, nil, "users", "get", bob.User.ID); code != 1 || !strings.Contains(errOut, "no user with this id (not_found)") {
		t.Fatalf("get deleted user: %d %s", code, errOut)
	}

	// The failures an operator meets, in plain words, exit 1.
	withEnv := func(kv ...string) []string {
		env := []string{}
		for _, e := range s.env {
			if !strings.HasPrefix(e, "AUTHEX_ADMIN_TOKEN=") && !strings.HasPrefix(e, "AUTHEX_SERVER=") {
				env = append(env, e)
			}
		}
		return append(env, kv...)
	}
	_, errOut, code := s.cli(t, withEnv("AUTHEX_ADMIN_TOKEN=wrong-token-but-long-enough", "AUTHEX_SERVER="+s.admin), "users", "list")
	if code != 1 || !strings.Contains(errOut, "the admin token was refused") || strings.Contains(errOut, "wrong-token") {
		t.Fatalf("wrong token: %d %s", code, errOut)
	}
	_, errOut, code = s.cli(t, withEnv("AUTHEX_SERVER="+s.admin), "users", "list")
	if code != 1 || !strings.Contains(errOut, "AUTHEX_ADMIN_TOKEN is not set") {
		t.Fatalf("no token: %d %s", code, errOut)
	}
	down := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	_, errOut, code = s.cli(t, nil, "keys", "list", "--server", down)
	if code != 1 || !strings.Contains(errOut, "cannot reach authex at "+down) {
		t.Fatalf("server down: %d %s", code, errOut)
	}
	if _, _, code := s.cli(t, nil, "users", "frobnicate"); code != 2 {
		t.Fatalf("unknown verb: exit %d", code)
	}
}

// TestBackupUnderLoadRestoresAndServes takes backups through the CLI from
// the admin listener while exchanges and refreshes run, restores one into
// a new file, serves it with the real binary, and refreshes a token issued
// before the backup.
func TestBackupUnderLoadRestoresAndServes(t *testing.T) {
	iss := providertest.NewIssuer(t)
	dir := t.TempDir()
	s := startOps(t, iss, dir, opsOptions{separateAdmin: true})

	// The admin API is on the admin listener only.
	if st, _ := request(t, "GET", s.base+"/admin/v1/users", testAdminToken); st != http.StatusNotFound {
		t.Fatalf("admin API on the public listener: %d", st)
	}
	if st, _ := request(t, "GET", s.base+"/metrics", ""); st != http.StatusNotFound {
		t.Fatalf("/metrics on the public listener: %d", st)
	}
	if st, _ := request(t, "GET", s.admin+"/metrics", ""); st != http.StatusOK {
		t.Fatalf("/metrics on the admin listener: %d", st)
	}
	if _, errOut, code := s.cli(t, nil, "users", "list", "--server", s.base); code != 1 || !strings.Contains(errOut, "is admin_listen set?") {
		t.Fatalf("CLI pointed at the public listener: %d %s", code, errOut)
	}

	before, _ := signIn(t, iss, s.base, "before")
	var stop atomic.Bool
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				sub := fmt.Sprintf("load-%d-%d", w, i)
				idToken := iss.Mint(t, map[string]any{"sub": sub, "aud": "web", "email": sub + "@example.com", "email_verified": true})
				st, raw := post(t, s.base+"/v1/exchange", map[string]any{"provider": "corp", "id_token": idToken})
				if st != http.StatusOK {
					failed.Add(1)
					t.Errorf("exchange under backup: %d %s", st, raw)
					return
				}
				var ex exchanged
				json.Unmarshal(raw, &ex)
				if st, raw := post(t, s.base+"/v1/token/refresh", map[string]any{"refresh_token": ex.RefreshToken}); st != http.StatusOK {
					failed.Add(1)
					t.Errorf("refresh under backup: %d %s", st, raw)
					return
				}
				ok.Add(1)
			}
		}()
	}
	for ok.Load() < 20 && failed.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	backups := []string{filepath.Join(dir, "b1.db"), filepath.Join(dir, "b2.db")}
	// Every pair completed before the last backup starts is in it; pairs
	// that complete while it streams may or may not be.
	var atBackup int64
	for _, b := range backups {
		atBackup = ok.Load()
		if out := s.cliOK(t, "backup", b); !strings.Contains(out, "verified") {
			t.Fatalf("backup: %s", out)
		}
	}
	time.Sleep(50 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if failed.Load() > 0 || ok.Load() <= atBackup {
		t.Fatalf("load: %d ok, %d failed (%d at the backup): the backup stalled the service?", ok.Load(), failed.Load(), atBackup)
	}
	t.Logf("%d exchange+refresh pairs served while %d backups streamed", ok.Load(), len(backups))
	s.stop(t)

	// Restore drill: the second backup becomes the data file of a new
	// instance on the same public URL.
	restored := filepath.Join(dir, "restored", "authex.db")
	if err := os.MkdirAll(filepath.Dir(restored), 0o700); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(backups[1])
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, restored, string(raw))
	// The backup holds the key material sealed: the restored store needs
	// the key-encryption key, here the generated file beside the database.
	kek, err := os.ReadFile(filepath.Join(dir, "data", "authex.db.kek"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, restored+".kek", string(kek))
	port := 0
	fmt.Sscanf(s.base, "http://127.0.0.1:%d", &port)
	s2 := startOps(t, iss, dir, opsOptions{dbPath: restored, port: port})
	defer s2.stop(t)
	r, st := refresh(t, s2.base, before.RefreshToken)
	if st != http.StatusOK || r.User.ID != before.User.ID {
		t.Fatalf("refresh token issued before the backup, on the restored store: %d %+v", st, r)
	}
	if st, body := request(t, "GET", s2.base+"/v1/me", before.AccessToken); st != http.StatusOK {
		t.Fatalf("access token issued before the backup: %d %s", st, body)
	}
	var listed struct {
		Users []struct{ ID string } `json:"users"`
	}
	json.Unmarshal([]byte(s2.cliOK(t, "users", "list", "--json", "--limit", "1000")), &listed)
	if int64(len(listed.Users)) < atBackup+1 {
		t.Fatalf("restored store has %d users, want at least %d", len(listed.Users), atBackup+1)
	}
}

// TestKeyRotationWithShortDurations rotates on the real binary with a 1s
// publish delay and 2s access tokens: the new key is in the JWKS at once,
// signs after the delay, the old key leaves after its tokens expired, and
// the session refreshes throughout.
func TestKeyRotationWithShortDurations(t *testing.T) {
	t.Parallel() // waits on timers; runs beside the other waiting tests
	iss := providertest.NewIssuer(t)
	s := startOps(t, iss, t.TempDir(), opsOptions{tokens: ", access_ttl: 2s, key_publish_delay: 1s"})
	defer s.stop(t)
	ex, _ := signIn(t, iss, s.base, "rot")
	oldKid := jwtKid(t, ex.AccessToken)

	var rotated struct {
		Key struct{ ID string } `json:"key"`
	}
	if err := json.Unmarshal([]byte(s.cliOK(t, "keys", "rotate", "--json")), &rotated); err != nil {
		t.Fatal(err)
	}
	rotatedAt := time.Now()
	newKid := rotated.Key.ID
	if kids := jwks(t, s.base); !contains(kids, oldKid) || !contains(kids, newKid) {
		t.Fatalf("JWKS right after rotation: %v", kids)
	}
	if st, body := request(t, "GET", s.base+"/v1/me", ex.AccessToken); st != http.StatusOK {
		t.Fatalf("token from before the rotation: %d %s", st, body)
	}
	r1, st := refresh(t, s.base, ex.RefreshToken)
	if st != http.StatusOK || (time.Since(rotatedAt) < 900*time.Millisecond && jwtKid(t, r1.AccessToken) != oldKid) {
		t.Fatalf("refresh during the publish delay: %d, kid %s", st, jwtKid(t, r1.AccessToken))
	}
	time.Sleep(time.Until(rotatedAt.Add(1100 * time.Millisecond)))
	time.Sleep(time.Second) // a new second: a new generation's iat
	r2, st := refresh(t, s.base, r1.RefreshToken)
	if st != http.StatusOK || jwtKid(t, r2.AccessToken) != newKid {
		t.Fatalf("after the delay: %d, kid %s, want %s", st, jwtKid(t, r2.AccessToken), newKid)
	}
	// retired at +1s, leaves at +1s + 2s + 5s leeway.
	if kids := jwks(t, s.base); !contains(kids, oldKid) {
		t.Fatalf("old key left before its tokens expired: %v", kids)
	}
	deadline := rotatedAt.Add(15 * time.Second)
	for contains(jwks(t, s.base), oldKid) {
		if time.Now().After(deadline) {
			t.Fatalf("old key still published 15s after rotation")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if left := time.Since(rotatedAt); left < 7*time.Second {
		t.Fatalf("old key left after %s, before its last token could expire", left)
	}
	r3, st := refresh(t, s.base, r2.RefreshToken)
	if st != http.StatusOK || jwtKid(t, r3.AccessToken) != newKid {
		t.Fatalf("signed out by the rotation: %d", st)
	}
	if st, body := request(t, "GET", s.base+"/v1/me", r3.AccessToken); st != http.StatusOK {
		t.Fatalf("/v1/me after rotation: %d %s", st, body)
	}
}

func jwtKid(t testing.TB, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	json.Unmarshal(raw, &h)
	return h.Kid
}

func jwks(t testing.TB, base string) []string {
	t.Helper()
	var set struct {
		Keys []struct{ Kid string } `json:"keys"`
	}
	if err := json.Unmarshal([]byte(getBody(t.(*testing.T), base+"/.well-known/jwks.json", "")), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestConfigCheckOpsKeys(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "admin-tokens")
	writeFile(t, tokens, "# operators\nfile-token-0123456789abcdef0123456789\n\nshort\n")
	path := filepath.Join(dir, "ops.yaml")
	writeFile(t, path, fmt.Sprintf(`
server:
  listen: ":8080"
  admin_listen: ":8080"
  trusted_proxies: [ "10.0.0.0/8", "192.168.1.1", "not-a-net" ]
tokens:
  key_publish_delay: 10m
  key_rotation: 5m
admin:
  tokens: [ "too-short" ]
  tokens_file: %q
`, tokens))
	out, err := checkConfigFile(t, path, noEnv)
	if err == nil {
		t.Fatal("accepted")
	}
	outputHas(t, out,
		"server.admin_listen: must differ from server.listen",
		`server.trusted_proxies[2]: must be a CIDR or an IP address, got "not-a-net"`,
		"tokens.key_rotation: must be 0 (off) or at least key_publish_delay + access_ttl (25m0s), got 5m0s",
		"admin.tokens[0]: must be at least 32 characters",
		"admin.tokens[2]: must be at least 32 characters",
		"5 problem(s)",
	)
	if strings.Contains(out, "too-short") || strings.Contains(out, "file-token") {
		t.Errorf("config check printed a token:\n%s", out)
	}
}
