package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/authex/authex/providers/providertest"
	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/storage/postgres/pgtest"
)

// TestConfigTrustEmail: trust_email is wired per provider, refused where it
// means nothing or contradicts link_by_email.
func TestConfigTrustEmail(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, `
providers:
  corp:  { type: oidc, issuer: "https://login.example.com", client_ids: [ "x" ], trust_email: true }
  weak:  { type: oidc, issuer: "https://idp.example.com", client_ids: [ "x" ] }
  gmail: { type: google, client_ids: [ "g" ], trust_email: true }
`)
	cfg, err := loadConfig(good, noEnv)
	if err != nil {
		t.Fatalf("good config: %v", err)
	}
	if tr := cfg.Providers["corp"].Spec.Shared().TrustEmail; tr == nil || !*tr {
		t.Errorf("providers.corp.trust_email not read")
	}
	if cfg.Providers["weak"].Spec.Shared().TrustEmail != nil {
		t.Errorf("providers.weak.trust_email set without the key")
	}
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, `
providers:
  google:   { type: google, client_ids: [ "g" ], trust_email: false }
  corp:     { type: oidc, issuer: "https://login.example.com", client_ids: [ "x" ], link_by_email: auto, trust_email: false }
  password: { type: password, trust_email: true }
`)
	out, err := checkConfigFile(t, bad, noEnv)
	if err == nil {
		t.Fatal("config check accepted trust_email: false on auto providers")
	}
	outputHas(t, out,
		"providers.google.trust_email: a link_by_email auto provider is trusted for email",
		"providers.corp.trust_email: a link_by_email auto provider is trusted for email",
		"providers.password.trust_email: applies to type apple, github, google, microsoft, oauth2, oidc only",
	)
}

// pgState is what an attack must leave alone: every user, identity,
// session and audit event in the store.
func pgState(t *testing.T, s storage.Store) []any {
	t.Helper()
	ctx := context.Background()
	users, err := s.ListUsers(ctx, storage.UserFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := []any{users}
	for _, u := range users {
		ids, err := s.ListIdentities(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := s.ListSessions(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ids, sess)
	}
	audit, err := s.ListAudit(ctx, storage.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return append(out, audit)
}

// TestTrustEmailOnPostgres runs attacks (a) and (c) of issue 11 findings 1
// and 2 against the real binary on PostgreSQL: a confirm provider's account
// is not joined by an auto provider's identity with its email (409
// account_exists, nothing written), and a verified vİctim@ (U+0130) does
// not sign in to victim@'s account.
func TestTrustEmailOnPostgres(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	t.Setenv("AUTHEX_PG_DSN", dsn)
	iss := providertest.NewIssuer(t)
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := filepath.Join(dir, "authex.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
server: { listen: "127.0.0.1:%d", public_url: %q }
storage:
  driver: postgres
  postgres: { dsn: "${AUTHEX_PG_DSN}", schema: %q, max_conns: 4, connect_timeout: 1s }
providers:
  corp:   { type: oidc, issuer: %q, client_ids: [ "web" ] }
  social: { type: oidc, issuer: %q, client_ids: [ "web" ], link_by_email: auto }
log: { format: json }
secrets: { kek: %q }
`, port, base, schema, iss.URL(), iss.URL(), testKEK))
	p := startServe(t, cfg, base, nil)
	defer p.stop(t)
	store, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema, SweepInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	exchange := func(provider, sub, email string) (int, map[string]any) {
		t.Helper()
		tok := iss.Mint(t, map[string]any{"sub": sub, "aud": "web", "email": email, "email_verified": true})
		return call(t, http.MethodPost, base+"/v1/exchange", "", map[string]any{"provider": provider, "id_token": tok})
	}

	t.Run("a: confirm provider's account, auto provider's identity", func(t *testing.T) {
		status, body := exchange("corp", "corp-attacker", "a@example.com")
		if status != http.StatusOK {
			t.Fatalf("corp sign-in: %d %v", status, body)
		}
		before := pgState(t, store)
		status, body = exchange("social", "social-victim", "A@Example.com")
		wantError(t, "auto identity joining a confirm provider's account", status, body, http.StatusConflict, "account_exists", "account_exists")
		if lt, _ := body["link_token"].(string); lt == "" {
			t.Fatalf("409 without link_token: %v", body)
		}
		if after := pgState(t, store); !reflect.DeepEqual(before, after) {
			t.Fatalf("the refused sign-in wrote:\nbefore %+v\nafter  %+v", before, after)
		}
	})

	t.Run("c: look-alike address", func(t *testing.T) {
		status, body := exchange("social", "victim", "victim@example.com")
		if status != http.StatusOK {
			t.Fatalf("victim sign-in: %d %v", status, body)
		}
		victim := body["user"].(map[string]any)["id"].(string)
		victimState := func() []any {
			u, err := store.GetUser(t.Context(), victim)
			if err != nil {
				t.Fatal(err)
			}
			ids, _ := store.ListIdentities(t.Context(), victim)
			sess, _ := store.ListSessions(t.Context(), victim)
			return []any{u, ids, sess}
		}
		before := victimState()
		status, body = exchange("social", "attacker", "v\u0130ctim@example.com")
		if status != http.StatusOK {
			t.Fatalf("look-alike sign-in: %d %v", status, body)
		}
		if got := body["user"].(map[string]any)["id"]; got == victim || body["created"] != true {
			t.Fatalf("vİctim@ signed in to victim@'s account: %v", body)
		}
		if after := victimState(); !reflect.DeepEqual(before, after) {
			t.Fatalf("victim's account changed:\nbefore %+v\nafter  %+v", before, after)
		}
	})
}
