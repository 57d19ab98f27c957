package web_test

import (
	"context"
	"testing"

	"github.com/authex/authex/storage"
)

// TestNewUserAuditedOnce pins that a created user gets exactly one
// user.created record, naming the user and the provider, whichever path
// created it (the exchange writes it in the session's group commit).
func TestNewUserAuditedOnce(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()))
	ex := h.exchangeOK("corp", h.idToken("audited", nil))
	reg := h.register("reg@example.com", goodPassword, "Reg")
	// A returning user writes no user.created.
	h.exchangeOK("corp", h.idToken("audited", nil))

	events, err := h.store.ListAudit(context.Background(), storage.AuditFilter{Type: "user.created", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	byUser := map[string][]storage.AuditEvent{}
	for _, e := range events {
		byUser[e.UserID] = append(byUser[e.UserID], e)
	}
	if len(events) != 2 || len(byUser[ex.User.ID]) != 1 || len(byUser[reg.User.ID]) != 1 {
		t.Fatalf("user.created events: %+v", events)
	}
	if p := byUser[ex.User.ID][0].Provider; p != "corp" {
		t.Fatalf("exchange's user.created names provider %q", p)
	}
	if p := byUser[reg.User.ID][0].Provider; p != "password" {
		t.Fatalf("register's user.created names provider %q", p)
	}
}
