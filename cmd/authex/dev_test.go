package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeDev runs the real binary with --dev: the emulator is mounted at
// /emulator, provider dev becomes ready quickly (its discovery hits this
// very server), and a token minted there is traded at /v1/exchange.
func TestServeDev(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	cfgPath := filepath.Join(dir, "authex.yaml")
	writeFile(t, cfgPath, fmt.Sprintf("server: { listen: \"127.0.0.1:%d\", public_url: %q }\nstorage: { bolt: { path: %q } }\nlog: { format: json }\n",
		port, base, filepath.Join(dir, "data", "authex.db")))

	start := time.Now()
	p := startServe(t, cfgPath, base, nil, "--dev") // waits for /readyz 200: dev discovered
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("provider dev took %s to become ready", took)
	}
	t.Logf("serve --dev ready (provider dev discovered) in %s", time.Since(start))
	defer func() {
		p.stop(t) // logs are read only once the process has exited
		logs := p.logs.String()
		if !strings.Contains(logs, "DEVELOPMENT MODE (--dev)") {
			t.Errorf("no loud warning logged:\n%s", logs)
		}
		// Listening before discovery starts means the first attempt succeeds:
		// no backoff delay before dev is ready.
		if strings.Contains(logs, "provider discovery failed") {
			t.Errorf("dev's discovery needed a retry:\n%s", logs)
		}
	}()

	minted := postJSON(t, base+"/emulator/mint", map[string]any{"email": "dev@example.com", "name": "Dev"})
	tk := postJSON(t, base+"/v1/exchange", map[string]any{"provider": "dev", "id_token": minted["id_token"]})
	if u := tk["user"].(map[string]any); u["email"] != "dev@example.com" || u["email_verified"] != true {
		t.Fatalf("exchange answered %v", tk)
	}
	// The emulator as a transmitter: a signed sessions-revoked event pushed
	// to /v1/signals ends the session.
	sig := postJSON(t, base+"/emulator/signal", map[string]any{"event": "sessions-revoked", "email": "dev@example.com"})
	if sig["status"] != float64(http.StatusAccepted) {
		t.Fatalf("signal answered %v", sig)
	}
	rb, _ := json.Marshal(map[string]any{"refresh_token": tk["refresh_token"]})
	res, err := http.Post(base+"/v1/token/refresh", "application/json", bytes.NewReader(rb))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("refresh after sessions-revoked: %d, want 400", res.StatusCode)
	}

	var disc map[string]any
	json.Unmarshal([]byte(getBody(t, base+"/emulator/.well-known/openid-configuration", "")), &disc)
	if disc["issuer"] != base+"/emulator" || disc["authorization_endpoint"] != base+"/emulator/authorize" {
		t.Fatalf("discovery %v", disc)
	}
}

func TestDevRefusals(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ name, config, want string }{
		{"public URL not loopback", `server: { listen: "127.0.0.1:0", public_url: "https://auth.example.com" }`, "server.public_url"},
		{"listen on every interface", `server: { listen: ":8080", public_url: "http://localhost:8080" }`, "server.listen"},
		{"provider dev taken", `server: { listen: "127.0.0.1:0", public_url: "http://localhost:8080" }
providers: { dev: { type: oidc, issuer: "https://login.example.com", client_ids: [ x ] } }`, `provider named "dev"`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("c%d.yaml", i))
			writeFile(t, path, tc.config+fmt.Sprintf("\nstorage: { bolt: { path: %q } }\n", filepath.Join(dir, fmt.Sprintf("d%d", i), "a.db")))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, []string{"serve", "-config", path, "--dev"}, noEnv, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestEmulatorCommand(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:9090"} {
		err := run(context.Background(), []string{"emulator", "-listen", addr}, noEnv, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("-listen %s: %v", addr, err)
		}
	}

	// On loopback it serves discovery and mint until cancelled.
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	var stdout bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"emulator", "-listen", fmt.Sprintf("127.0.0.1:%d", port), "-client-id", "my-app"}, noEnv, &stdout, io.Discard)
	}()
	issuer := fmt.Sprintf("http://127.0.0.1:%d/emulator", port)
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := http.Get(issuer + "/.well-known/openid-configuration")
		if err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	minted := postJSON(t, issuer+"/mint", map[string]any{"email": "a@example.com"})
	parts := strings.Split(minted["id_token"].(string), ".")
	if len(parts) != 3 {
		t.Fatalf("minted %v", minted)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("emulator exited with %v", err)
	}
	if !strings.Contains(stdout.String(), "client ids: my-app") {
		t.Fatalf("stdout %q", stdout.String())
	}
}
