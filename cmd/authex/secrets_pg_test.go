package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/authex/authex/providers/providertest"
	"github.com/authex/authex/storage/postgres/pgtest"
)

// pgPair starts two instances, A and B, on one PostgreSQL schema with an
// admin token, and returns their base URLs and an admin CLI runner.
func pgPair(t *testing.T) (a, b string, iss *providertest.Issuer, cli func(server string, args ...string) (string, int), stop func()) {
	t.Helper()
	dsn, schema := pgtest.Schema(t)
	t.Setenv("AUTHEX_PG_DSN", dsn)
	t.Setenv("AUTHEX_ADMIN_TOKEN", testAdminToken)
	iss = providertest.NewIssuer(t)
	dir := t.TempDir()
	portA, portB := freePort(t), freePort(t)
	a, b = fmt.Sprintf("http://127.0.0.1:%d", portA), fmt.Sprintf("http://127.0.0.1:%d", portB)
	admin := `admin: { tokens: [ "${AUTHEX_ADMIN_TOKEN}" ] }`
	ps := startAll(t, "", []string{
		pgConfig(t, dir, "a", portA, schema, iss.URL(), admin),
		pgConfig(t, dir, "b", portB, schema, iss.URL(), admin),
	}, []string{a, b})
	cli = func(server string, args ...string) (string, int) {
		t.Helper()
		out, errOut, code := runCLI(t, append(os.Environ(), "AUTHEX_SERVER="+server), args...)
		return out + errOut, code
	}
	return a, b, iss, cli, func() { ps[1].stop(t); ps[0].stop(t) }
}

// TestKeyRevocationOnTwoInstances: `authex keys revoke` on A takes the
// key out of the JWKS and refuses its access tokens on A at once and on
// B within the key poll interval (bound: 2 s); a fresh key signs at once,
// and its tokens verify on both.
func TestKeyRevocationOnTwoInstances(t *testing.T) {
	a, b, iss, cli, stop := pgPair(t)
	defer stop()
	ex, _ := signIn(t, iss, a, "revoked-key")
	kid := jwtKid(t, ex.AccessToken)
	for _, base := range []string{a, b} {
		if st, body := request(t, "GET", base+"/v1/me", ex.AccessToken); st != http.StatusOK {
			t.Fatalf("before revocation, /v1/me on %s: %d %s", base, st, body)
		}
	}

	// "--": a kid is base64url and may start with '-', which the flag
	// parser would take for a flag.
	out, code := cli(a, "keys", "revoke", "--", kid)
	revokedAt := time.Now()
	if code != 0 || !strings.Contains(out, "revoked") || !strings.Contains(out, "new key") {
		t.Fatalf("keys revoke: exit %d\n%s", code, out)
	}
	if st, body := request(t, "GET", a+"/v1/me", ex.AccessToken); st != http.StatusUnauthorized {
		t.Fatalf("/v1/me on A right after the revocation: %d %s", st, body)
	}
	if contains(jwks(t, a), kid) {
		t.Fatal("the revoked key is still in A's JWKS")
	}
	for {
		st, _ := request(t, "GET", b+"/v1/me", ex.AccessToken)
		if st == http.StatusUnauthorized && !contains(jwks(t, b), kid) {
			break
		}
		if time.Since(revokedAt) > 2*time.Second {
			t.Fatalf("B still accepts the revoked key %s after %s (/v1/me %d)", kid, time.Since(revokedAt), st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("B refused the revoked key within %s", time.Since(revokedAt))

	// The session itself is fine: its refresh token gets a token of the
	// fresh key, which verifies on both instances.
	r, st := refresh(t, a, ex.RefreshToken)
	if st != http.StatusOK || jwtKid(t, r.AccessToken) == kid {
		t.Fatalf("refresh after the revocation: %d, kid %s", st, jwtKid(t, r.AccessToken))
	}
	for _, base := range []string{a, b} {
		if st, body := request(t, "GET", base+"/v1/me", r.AccessToken); st != http.StatusOK {
			t.Fatalf("a token of the fresh key on %s: %d %s", base, st, body)
		}
	}
	if out, code := cli(b, "keys", "list"); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("keys list on B: exit %d\n%s", code, out)
	}
	if out, code := cli(a, "keys", "revoke", "no-such-kid"); code == 0 || !strings.Contains(out, "not_found") {
		t.Fatalf("revoking an unknown kid: exit %d\n%s", code, out)
	}
}

// TestRefreshSecretRotationOnTwoInstances: rotating the refresh MAC
// secret on A signs nobody out. Sessions made before it (with tokens of
// the first secret, in today's form and in the legacy three-part form)
// refresh on both instances; their next token is made with the new secret
// and refreshes too; concurrent refreshes of one token on A and B get
// byte-identical answers before and after the rotation.
func TestRefreshSecretRotationOnTwoInstances(t *testing.T) {
	a, b, iss, cli, stop := pgPair(t)
	defer stop()
	before, _ := signIn(t, iss, a, "rot-1")
	legacy, _ := signIn(t, iss, b, "rot-2")
	parts := strings.Split(legacy.RefreshToken, ".")
	if len(parts) != 4 || parts[2] != "0" {
		t.Fatalf("refresh token %q: want session.generation.0.mac", legacy.RefreshToken)
	}
	legacyToken := parts[0] + "." + parts[1] + "." + parts[3] // as main issued them
	graceTwice(t, a, b, before.RefreshToken)

	out, code := cli(a, "keys", "rotate-refresh-secret")
	if code != 0 || !strings.Contains(out, "new refresh secret") {
		t.Fatalf("rotate-refresh-secret: exit %d\n%s", code, out)
	}
	newID := strings.Fields(out)[3]
	// Until the new secret signs (MACActivationDelay), tokens keep coming
	// from the first one; then each session's next token uses the new one.
	time.Sleep(3500 * time.Millisecond)
	r, st := refresh(t, b, legacyToken)
	if st != http.StatusOK {
		t.Fatalf("a legacy three-part token after the rotation: %d", st)
	}
	if got := strings.Split(r.RefreshToken, ".")[2]; got != newID {
		t.Fatalf("next token's secret id = %s, want the new secret %s", got, newID)
	}
	if r2, st := refresh(t, a, r.RefreshToken); st != http.StatusOK || r2.RefreshToken == "" {
		t.Fatalf("a token of the new secret on the other instance: %d", st)
	}
	// The session created before the rotation, refreshed on both at once.
	graceTwice(t, a, b, before.RefreshToken)

	out, code = cli(b, "keys", "refresh-secrets")
	if code != 0 || !strings.Contains(out, newID) || !strings.Contains(out, "signing") || !strings.Contains(out, "verifying") {
		t.Fatalf("refresh-secrets: exit %d\n%s", code, out)
	}
	if out, code := cli(a, "keys", "retire-refresh-secret", newID); code == 0 || !strings.Contains(out, "secret_in_use") {
		t.Fatalf("retiring the signing secret: exit %d\n%s", code, out)
	}
}

// graceTwice refreshes one token on A and B at once: both succeed with the
// same bytes (the reuse grace). It returns nothing: the session moves on.
func graceTwice(t *testing.T, a, b, token string) {
	t.Helper()
	got := race(t, 4, func(i int) (string, any) {
		base := a
		if i%2 == 1 {
			base = b
		}
		return base + "/v1/token/refresh", map[string]any{"refresh_token": token}
	})
	for i := 1; i < len(got); i++ {
		if got[i]["refresh_token"] != got[0]["refresh_token"] || got[i]["access_token"] != got[0]["access_token"] {
			t.Fatalf("concurrent refreshes on two instances differ:\n%v\n%v", got[0], got[i])
		}
	}
}
