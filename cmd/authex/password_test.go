package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func checkConfig(t *testing.T, yaml string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "authex.yaml")
	writeFile(t, path, yaml)
	return checkConfigFile(t, path, noEnv)
}

func TestConfigCheckCompatAndPassword(t *testing.T) {
	out, err := checkConfig(t, `
providers:
  password:
    type: password
    memory: 512
    min_length: 4
    client_ids: [ "x" ]
    throttle: { window: 48h, register_per_ip: -1 }
    reauth_window: 2h
    hash_concurrency: -1
    hash_wait: 1m
  pw2: { type: password }
  corp: { type: oidc, issuer: "https://login.example.com", client_ids: [ "a" ], min_length: 12 }
compat: [ djrestauth, simplejwt, fastapi, nope, fastapi ]
`)
	if err == nil {
		t.Fatal("config check accepted a bad file")
	}
	outputHas(t, out,
		"providers.password.memory: must be between 1024 and 1048576",
		"providers.password.min_length: must be between 8 and 128",
		"providers.password.client_ids: applies to type apple, github, google, microsoft, oauth2, oidc only",
		"providers.password.throttle.window: must be between 1s and 24h",
		"providers.password.throttle.register_per_ip: must be positive, got -1",
		"providers.password.reauth_window: must be between 30s and 1h, got 2h0m0s",
		"providers.password.hash_concurrency: must be between 0 (twice GOMAXPROCS) and 1024, got -1",
		"providers.password.hash_wait: must be between 1ms and 10s, got 1m0s",
		`providers.pw2.type: type password must be configured under the key "password"`,
		"providers.corp.min_length: applies to type password only",
		`compat[3]: must be one of djrestauth, fastapi, simplejwt, got "nope"`,
		"compat[4]: fastapi is listed twice",
		"compat: djrestauth and simplejwt both answer POST /api/auth/token/refresh/",
		"GET /api/auth/user/",
	)

	// simplejwt and fastapi sign in with passwords.
	out, err = checkConfig(t, "compat: [ fastapi ]\n")
	if err == nil || !strings.Contains(out, "compat[0]: fastapi signs users in with a password: configure providers.password") {
		t.Fatalf("missing password provider not reported: %v\n%s", err, out)
	}

	// The allowed combinations, with the password defaults filled in.
	for _, combo := range []string{"[ djrestauth, fastapi ]", "[ simplejwt, fastapi ]", "[ djrestauth ]", "[]"} {
		path := filepath.Join(t.TempDir(), "ok.yaml")
		writeFile(t, path, "providers:\n  password: { type: password }\ncompat: "+combo+"\n")
		cfg, err := loadConfig(path, noEnv)
		if err != nil {
			t.Fatalf("compat %s: %v", combo, err)
		}
		pc := cfg.Providers["password"].PasswordConfig()
		if pc.Argon2.Memory != 19456 || pc.Argon2.Iterations != 2 || pc.Argon2.Parallelism != 1 || pc.MinLength != 8 ||
			!pc.AllowSignup || pc.AccountBurst != 5 || pc.IPBurst != 50 || pc.Window != 15*time.Minute ||
			pc.RegisterBurst != 10 || pc.ReauthWindow != 5*time.Minute || pc.HashConcurrency != 0 || pc.HashWait != time.Second {
			t.Fatalf("password defaults: %+v", pc)
		}
	}
}

// TestPasswordAndCompatEndToEnd runs the real binary with the password
// provider and two profiles: register at /v1, sign in through the FastAPI
// tutorial's route, read the user through dj-rest-auth's, and the same
// account survives a restart.
func TestPasswordAndCompatEndToEnd(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfgPath := writeBoltConfig(t, dir, "authex", port, base, `
providers:
  password: { type: password, memory: 4096, iterations: 1 }
compat: [ djrestauth, fastapi ]
log: { format: json }
`)

	first := startServe(t, cfgPath, base, nil)
	reg := postJSON(t, base+"/v1/register", map[string]any{"email": "e2e@example.com", "password": "end to end passphrase", "name": "E Two"})
	id := reg["user"].(map[string]any)["id"]
	first.stop(t)

	second := startServe(t, cfgPath, base, nil)
	defer second.stop(t)
	login := postJSON(t, base+"/users/login/", map[string]any{"username": "e2e@example.com", "password": "end to end passphrase"})
	if login["token_type"] != "Bearer" || login["user"].(map[string]any)["id"] != id {
		t.Fatalf("/users/login/: %v", login)
	}
	user := getBody(t, base+"/api/auth/user/", login["access_token"].(string))
	if !strings.Contains(user, `"pk":"`+id.(string)+`"`) || !strings.Contains(user, `"first_name":"E"`) {
		t.Fatalf("/api/auth/user/: %s", user)
	}
}
