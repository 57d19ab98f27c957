package web_test

import (
	"context"
	"net/http"
	"reflect"
	"testing"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/storage"
)

// Issue 11, findings 1 and 2: who vouched for an account's email decides
// whether another provider's identity with that email may join it without
// asking, and addresses that differ only beyond ASCII case never meet.

// userState is what an attack must leave alone of one user.
type userState struct {
	User       storage.User
	Identities []storage.Identity
	Sessions   []storage.Session
}

func (h *harness) userState(id string) userState {
	h.t.Helper()
	ctx := context.Background()
	u, err := h.store.GetUser(ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	ids, err := h.store.ListIdentities(ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	sess, err := h.store.ListSessions(ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return userState{u, ids, sess}
}

// accountExists posts an exchange that must answer 409 account_exists
// with a link_token and write nothing, and returns the token.
func (h *harness) accountExists(provider, idToken string) string {
	h.t.Helper()
	before := h.snapshot()
	res := h.postJSON("/v1/exchange", map[string]any{"provider": provider, "id_token": idToken})
	assertError(h.t, res, http.StatusConflict, "account_exists", "account_exists")
	h.assertUnchanged(before)
	lt, _ := res.json(h.t)["link_token"].(string)
	if lt == "" {
		h.t.Fatalf("409 without link_token: %s", res.body)
	}
	return lt
}

// (a) An account made through a confirm provider (generic OIDC: whoever
// runs that IdP can assert any email) is not joined by a Google identity
// with its email: Google answers account_exists. Linking then goes through
// the account, and once Google is linked it vouches for the address.
func TestTrustEmailConfirmProviderDoesNotVouch(t *testing.T) {
	h := newHarness(t)
	weak := h.exchangeOK("corp", h.idToken("corp-attacker", map[string]any{"email": "a@example.com"}))
	if got := h.userState(weak.User.ID).User.EmailVerifiedBy; got != "corp" {
		t.Fatalf("EmailVerifiedBy of a corp user = %q, want corp", got)
	}
	lt := h.accountExists("google", h.idToken("google-victim", map[string]any{"email": "A@Example.com"}))

	// The account's owner links the Google identity itself: from then on
	// Google (trusted for email) vouches for the address...
	res := h.postJSON("/v1/me/identities", map[string]any{"link_token": lt}, bearer(weak.AccessToken)...)
	if res.status != http.StatusCreated {
		t.Fatalf("link: %d %s", res.status, res.body)
	}
	if got := h.userState(weak.User.ID).User.EmailVerifiedBy; got != "google" {
		t.Fatalf("EmailVerifiedBy after linking google = %q, want google", got)
	}
	// ...so another trusted identity with it joins without asking.
	again := h.exchangeOK("google", h.idToken("google-second", map[string]any{"email": "a@example.com"}))
	if again.User.ID != weak.User.ID || *again.Created {
		t.Fatalf("second google identity: user %s created %v, want user %s", again.User.ID, *again.Created, weak.User.ID)
	}
}

// (b) The operator decides which providers vouch: trust_email: true on a
// confirm provider lets an auto provider join the accounts it made; the
// default (false) does not.
func TestTrustEmailOperatorTrustedProvider(t *testing.T) {
	h := newHarness(t,
		withProvider("weak", providerSpec{typ: "oidc", link: exchange.LinkConfirm, allowSignup: true}),
		withProvider("workforce", providerSpec{typ: "oidc", link: exchange.LinkConfirm, allowSignup: true, trustEmail: true}))

	untrusted := h.exchangeOK("weak", h.idToken("weak-1", map[string]any{"email": "pat@example.com"}))
	h.accountExists("google", h.idToken("google-pat", map[string]any{"email": "pat@example.com"}))
	if got := h.userState(untrusted.User.ID).User.EmailVerifiedBy; got != "weak" {
		t.Fatalf("EmailVerifiedBy = %q, want weak", got)
	}

	trusted := h.exchangeOK("workforce", h.idToken("wf-1", map[string]any{"email": "sam@example.com"}))
	joined := h.exchangeOK("google", h.idToken("google-sam", map[string]any{"email": "Sam@Example.com"}))
	if joined.User.ID != trusted.User.ID || *joined.Created {
		t.Fatalf("google identity of a trust_email provider's user: user %s created %v, want user %s",
			joined.User.ID, *joined.Created, trusted.User.ID)
	}
	// A confirm provider, trusted or not, never links by itself.
	h.accountExists("workforce", h.idToken("wf-2", map[string]any{"email": "sam@example.com"}))
}

// (c) A verified vİctim@ (U+0130, which strings.ToLower folds to i) is not
// victim@: the Google identity gets an account of its own and victim's is
// untouched. A separate user, not account_exists: the two are different
// mailboxes, and there is no account to confirm a link to. An account whose
// address is itself non-ASCII is joined only after confirmation.
func TestTrustEmailLookalikeAddress(t *testing.T) {
	h := newHarness(t, withProvider("apple", providerSpec{typ: "oidc", link: exchange.LinkAuto, allowSignup: true}))
	victim := h.exchangeOK("google", h.idToken("victim", map[string]any{"email": "victim@example.com"}))
	before := h.userState(victim.User.ID)

	for i, email := range []string{"v\u0130ctim@example.com", "V\u0130CTIM@example.com", "victi\u212A@example.com"} {
		sub := "attacker-" + string(rune('a'+i))
		res := h.postJSON("/v1/exchange", map[string]any{"provider": "google", "id_token": h.idToken(sub, map[string]any{"email": email})})
		if res.status != http.StatusOK {
			t.Fatalf("%s: %d %s", email, res.status, res.body)
		}
		got := decodeTokens(t, res)
		if got.User.ID == victim.User.ID || !*got.Created {
			t.Fatalf("%s signed in to victim's account (user %s, created %v)", email, got.User.ID, *got.Created)
		}
		if after := h.userState(victim.User.ID); !reflect.DeepEqual(before, after) {
			t.Fatalf("%s changed victim's account:\nbefore %+v\nafter  %+v", email, before, after)
		}
	}

	// The non-ASCII address already has an account: another provider's
	// identity with it must ask, even from a provider that links automatically.
	h.accountExists("apple", h.idToken("apple-attacker", map[string]any{"email": "v\u0130ctim@example.com"}))
}

// (d) A verified vİctim@ never captures the unverified password account
// victim@ registered: the account keeps its password and its owner.
func TestTrustEmailLookalikeNoPasswordCapture(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()))
	pw := h.register("victim@example.com", goodPassword, "Victim")
	before := h.userState(pw.User.ID)
	before.Sessions = nil

	res := h.postJSON("/v1/exchange", map[string]any{"provider": "google",
		"id_token": h.idToken("attacker", map[string]any{"email": "v\u0130ctim@example.com"})})
	if res.status != http.StatusOK {
		t.Fatalf("exchange: %d %s", res.status, res.body)
	}
	if got := decodeTokens(t, res); got.User.ID == pw.User.ID {
		t.Fatalf("the look-alike address took the password account over")
	}
	after := h.userState(pw.User.ID)
	for _, s := range after.Sessions {
		if s.Revoked() {
			t.Fatalf("a session of the password account was revoked: %+v", s)
		}
	}
	after.Sessions = nil
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("password account changed:\nbefore %+v\nafter  %+v", before, after)
	}
	if got := h.loginOK("victim@example.com", goodPassword); got.User.ID != pw.User.ID {
		t.Fatalf("password login reaches user %s, want %s", got.User.ID, pw.User.ID)
	}
}

// The capture still happens for the real address from a trusted auto
// provider, and records that provider as the email's voucher.
func TestTrustEmailCaptureRecordsVoucher(t *testing.T) {
	h := newHarness(t, withPassword(passwordConfig()))
	pw := h.register("owner@example.com", goodPassword, "Squatter")
	got := h.exchangeOK("google", h.idToken("owner", map[string]any{"email": "Owner@Example.com"}))
	if got.User.ID != pw.User.ID {
		t.Fatalf("google identity did not claim the unverified password account")
	}
	if by := h.userState(pw.User.ID).User.EmailVerifiedBy; by != "google" {
		t.Fatalf("EmailVerifiedBy after the claim = %q, want google", by)
	}
}
