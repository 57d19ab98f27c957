package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigCheckCompatClient(t *testing.T) {
	const head = `
providers:
  password: { type: password }
clients:
  - { id: nextjs, secret: "0123456789abcdef0123" }
  - { id: spa, public: true, providers: [ password ] }
`
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"compat with clients needs compat_client", head + "compat: [ fastapi ]\n",
			"compat_client: is required with compat and clients: name the public client (public: true) the compat routes act as"},
		{"unknown client", head + "compat: [ fastapi ]\ncompat_client: nope\n",
			`compat_client: names no configured client: "nope"`},
		{"confidential client", head + "compat: [ fastapi ]\ncompat_client: nextjs\n",
			`compat_client: client "nextjs" (clients[0]) is confidential: the compat routes send no secret, name a client with public: true`},
		{"without compat", head + "compat_client: spa\n",
			"compat_client: is set but compat lists no profile"},
		{"without clients", "providers:\n  password: { type: password }\ncompat: [ fastapi ]\ncompat_client: spa\n",
			`compat_client: names no configured client: "spa"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := checkConfig(t, tc.yaml)
			if err == nil {
				t.Fatalf("config check accepted it:\n%s", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("output lacks %q:\n%s", tc.want, out)
			}
		})
	}

	// Accepted: a public compat_client, and compat without clients as before.
	for _, yaml := range []string{head + "compat: [ fastapi ]\ncompat_client: spa\n", "providers:\n  password: { type: password }\ncompat: [ fastapi ]\n"} {
		path := filepath.Join(t.TempDir(), "ok.yaml")
		writeFile(t, path, yaml)
		if _, err := loadConfig(path, noEnv); err != nil {
			t.Fatalf("%s: %v", yaml, err)
		}
	}
}

// TestCompatClientEndToEnd runs the real binary: with clients and
// compat_client, the FastAPI tutorial's login signs in as compat_client.
func TestCompatClientEndToEnd(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfgPath := writeBoltConfig(t, dir, "authex", port, base, `
providers:
  password: { type: password, memory: 4096, iterations: 1 }
clients:
  - { id: nextjs, secret: "0123456789abcdef0123" }
  - { id: spa, public: true, providers: [ password ] }
compat: [ fastapi ]
compat_client: spa
log: { format: json }
`)
	srv := startServe(t, cfgPath, base, nil)
	defer srv.stop(t)

	postJSON(t, base+"/v1/register", map[string]any{"email": "cc@example.com", "password": "end to end passphrase",
		"client_id": "nextjs", "client_secret": "0123456789abcdef0123"})
	login := postJSON(t, base+"/users/login/", map[string]any{"username": "cc@example.com", "password": "end to end passphrase"})
	access, _ := login["access_token"].(string)
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		t.Fatalf("/users/login/: %v", login)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	if claims["client_id"] != "spa" {
		t.Fatalf("client_id claim %v, want spa", claims["client_id"])
	}
}
