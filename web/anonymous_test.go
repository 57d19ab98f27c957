package web_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/storage"
)

func withAnonymous(perIP int, sweepAfter time.Duration) harnessOption {
	return func(c *harnessConfig) {
		c.anonymous = &exchange.AnonymousConfig{PerIP: perIP, Window: time.Hour, SweepAfter: sweepAfter}
	}
}

func (h *harness) anonymousOK() tokens {
	h.t.Helper()
	res := h.do(http.MethodPost, "/v1/anonymous", "", nil)
	if res.status != http.StatusOK {
		h.t.Fatalf("anonymous: %d %s", res.status, res.body)
	}
	return decodeTokens(h.t, res)
}

func TestAnonymousOffByDefault(t *testing.T) {
	h := newHarness(t)
	before := h.snapshot()
	res := h.do(http.MethodPost, "/v1/anonymous", "", nil)
	assertError(t, res, http.StatusForbidden, "access_denied", exchange.ReasonAnonymousDisabled)
	h.assertUnchanged(before)
}

func TestAnonymousUpgradeKeepsTheID(t *testing.T) {
	h := newHarness(t, withAnonymous(10, 24*time.Hour))
	anon := h.anonymousOK()
	if anon.User.ID == "" || anon.User.Email != "" || anon.Created == nil || !*anon.Created {
		t.Fatalf("anonymous answer %+v", anon)
	}
	if c := claimsOf(t, anon.AccessToken); c["sub"] != anon.User.ID || c["idp"] != exchange.AnonymousProvider {
		t.Fatalf("claims %v", c)
	}
	if res := h.get("/v1/me", anon.AccessToken); res.status != http.StatusOK {
		t.Fatalf("/v1/me: %d %s", res.status, res.body)
	}
	// The app stores something under the id; the user links Google later.
	if _, err := h.svc.Admin().SetRoles(context.Background(), anon.User.ID, []string{"cart-owner"}, "test"); err != nil {
		t.Fatal(err)
	}
	res := h.postJSON("/v1/me/identities", map[string]any{"provider": "corp", "id_token": h.idToken("ada", nil)}, bearer(anon.AccessToken)...)
	if res.status != http.StatusOK && res.status != http.StatusCreated {
		t.Fatalf("link: %d %s", res.status, res.body)
	}
	// Signing in with that identity now reaches the same user.
	tk := h.exchangeOK("corp", h.idToken("ada", nil))
	if tk.User.ID != anon.User.ID || tk.User.Email != "ada@example.com" || len(tk.User.Roles) != 1 {
		t.Fatalf("after upgrade: %+v", tk.User)
	}
	if len(tk.User.Identities) != 1 || tk.User.Identities[0].Provider != "corp" {
		t.Fatalf("identities %+v", tk.User.Identities)
	}
	// The anonymous session lives on.
	h.refreshOK(anon.RefreshToken)
	ev, _ := h.store.ListAudit(context.Background(), storage.AuditFilter{UserID: anon.User.ID, Type: exchange.EventUserUpgraded})
	if len(ev) != 1 {
		t.Fatalf("audit %+v", ev)
	}
}

func TestAnonymousRateLimitedPerIP(t *testing.T) {
	h := newHarness(t, withAnonymous(2, time.Hour))
	h.anonymousOK()
	h.anonymousOK()
	before := h.snapshot()
	res := h.do(http.MethodPost, "/v1/anonymous", "", nil)
	assertError(t, res, http.StatusTooManyRequests, "rate_limited", exchange.ReasonRateLimited)
	if res.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	h.assertUnchanged(before)
}

func TestAnonymousSweep(t *testing.T) {
	h := newHarness(t, withAnonymous(10, 24*time.Hour))
	idle := h.anonymousOK()
	active := h.anonymousOK()
	linked := h.anonymousOK()
	res := h.postJSON("/v1/me/identities", map[string]any{"provider": "corp", "id_token": h.idToken("lin", nil)}, bearer(linked.AccessToken)...)
	if res.status >= 300 {
		t.Fatalf("link: %d %s", res.status, res.body)
	}
	h.clock.Advance(20 * time.Hour)
	h.refreshOK(active.RefreshToken)
	h.clock.Advance(5 * time.Hour)

	n, err := h.svc.SweepAnonymous(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("swept %d, %v; want 1", n, err)
	}
	ctx := context.Background()
	if _, err := h.store.GetUser(ctx, idle.User.ID); err == nil {
		t.Error("the idle anonymous user is still there")
	}
	for _, keep := range []tokens{active, linked} {
		if _, err := h.store.GetUser(ctx, keep.User.ID); err != nil {
			t.Errorf("user %s swept: %v", keep.User.ID, err)
		}
	}
	if n, _ := h.svc.SweepAnonymous(ctx); n != 0 {
		t.Errorf("second sweep removed %d", n)
	}
}

// An upgrade never takes a verified email another user owns.
func TestAnonymousUpgradeLeavesATakenEmail(t *testing.T) {
	h := newHarness(t, withAnonymous(10, 24*time.Hour))
	owner := h.exchangeOK("corp", h.idToken("owner", map[string]any{"email": "taken@example.com"}))
	anon := h.anonymousOK()
	res := h.postJSON("/v1/me/identities", map[string]any{"provider": "google",
		"id_token": h.idToken("other", map[string]any{"email": "taken@example.com"})}, bearer(anon.AccessToken)...)
	if res.status >= 300 {
		t.Fatalf("link: %d %s", res.status, res.body)
	}
	u, err := h.store.GetUser(context.Background(), anon.User.ID)
	if err != nil || u.Email != "" {
		t.Fatalf("upgraded user %+v %v", u, err)
	}
	if o, err := h.store.GetUserByVerifiedEmail(context.Background(), "taken@example.com"); err != nil || o.ID != owner.User.ID {
		t.Fatalf("the owner lost its email: %+v %v", o, err)
	}
}
