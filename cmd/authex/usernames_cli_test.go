package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/authex/authex/providers/providertest"
)

// TestAdminCLIUsername: the admin API and CLI find a user by username (in
// any ASCII case) and show it.
func TestAdminCLIUsername(t *testing.T) {
	iss := providertest.NewIssuer(t)
	s := startOps(t, iss, t.TempDir(), opsOptions{})
	defer s.stop(t)
	reg := postJSON(t, s.base+"/v1/register", map[string]any{"email": "carol@example.com", "password": "a passphrase nobody guesses", "username": "Carol_1"})
	id := reg["user"].(map[string]any)["id"].(string)
	postJSON(t, s.base+"/v1/register", map[string]any{"email": "dave@example.com", "password": "a passphrase nobody guesses", "username": "dave"})

	var listed struct {
		Users []struct{ ID, Username string } `json:"users"`
	}
	if err := json.Unmarshal([]byte(s.cliOK(t, "users", "list", "--json", "--username", "CAROL_1")), &listed); err != nil ||
		len(listed.Users) != 1 || listed.Users[0].ID != id || listed.Users[0].Username != "Carol_1" {
		t.Fatalf("users list --json --username: %v %+v", err, listed)
	}
	if out := s.cliOK(t, "users", "list"); !strings.Contains(out, "USERNAME") || !strings.Contains(out, "Carol_1") || !strings.Contains(out, "dave") {
		t.Fatalf("users list:\n%s", out)
	}
	if out := s.cliOK(t, "users", "list", "--username", "nobody"); strings.Contains(out, "carol") {
		t.Fatalf("users list --username nobody:\n%s", out)
	}
	if out := s.cliOK(t, "users", "get", id); !strings.Contains(out, "Carol_1") {
		t.Fatalf("users get:\n%s", out)
	}
}
