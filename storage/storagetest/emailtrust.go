package storagetest

import (
	"errors"
	"testing"

	"github.com/authex/authex/storage"
)

// Who vouched for a user's email (User.EmailVerifiedBy), and the email
// indexes keyed by storage.EmailKey (issue 11); Run runs these.

func testEmailVerifiedBy(t *testing.T, s storage.Store) {
	ctx := t.Context()
	t0 := epoch()
	u := newUser(t0, "trust@example.com", true)
	u.EmailVerifiedBy = "google"
	mustCreateUser(t, s, u, newIdentity(u, "google", "trust", t0))
	check(t, "EmailVerifiedBy after CreateUser", mustGetUser(t, s, u.ID).EmailVerifiedBy, "google")
	byEmail, err := s.GetUserByVerifiedEmail(ctx, "Trust@Example.com")
	if err != nil {
		t.Fatal(err)
	}
	check(t, "EmailVerifiedBy by verified email", byEmail.EmailVerifiedBy, "google")

	u.EmailVerifiedBy = "corp"
	u.UpdatedAt = t0.Add(1)
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	check(t, "EmailVerifiedBy after UpdateUser", mustGetUser(t, s, u.ID).EmailVerifiedBy, "corp")

	got, err := s.ModifyUser(ctx, u.ID, func(x *storage.User) error {
		if x.EmailVerifiedBy != "corp" {
			t.Errorf("ModifyUser's fn sees EmailVerifiedBy %q, want corp", x.EmailVerifiedBy)
		}
		x.EmailVerifiedBy = ""
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "EmailVerifiedBy returned by ModifyUser", got.EmailVerifiedBy, "")
	check(t, "EmailVerifiedBy after ModifyUser", mustGetUser(t, s, u.ID).EmailVerifiedBy, "")

	// ListUsers returns it too.
	u2 := newUser(t0, "listed@example.com", true)
	u2.EmailVerifiedBy = "apple"
	mustCreateUser(t, s, u2, newIdentity(u2, "apple", "listed", t0))
	listed := mustListUsers(t, s, storage.UserFilter{Email: "LISTED@example.com"})
	if len(listed) != 1 || listed[0].EmailVerifiedBy != "apple" {
		t.Fatalf("ListUsers(listed@) = %+v, want the user with EmailVerifiedBy apple", listed)
	}
}

// testEmailKeyIndexes: the indexes, their lookups and the ListUsers filter
// fold ASCII case and IDNA domains, and nothing else.
func testEmailKeyIndexes(t *testing.T, s storage.Store) {
	ctx := t.Context()
	t0 := epoch()
	victim := newUser(t0, "victim@example.com", true)
	mustCreateUser(t, s, victim, newIdentity(victim, "google", "victim", t0))
	// strings.ToLower("vİctim") is "victim": a different address, its own key.
	dotted := newUser(t0, "v\u0130ctim@example.com", true)
	mustCreateUser(t, s, dotted, newIdentity(dotted, "google", "dotted", t0))
	kelvin := newUser(t0, "\u212Aate@example.com", true)
	mustCreateUser(t, s, kelvin, newIdentity(kelvin, "google", "kelvin", t0))
	kate := newUser(t0, "kate@example.com", true)
	mustCreateUser(t, s, kate, newIdentity(kate, "google", "kate", t0))
	wantVerifiedEmail(t, s, "VICTIM@EXAMPLE.COM", victim.ID)
	wantVerifiedEmail(t, s, "v\u0130ctim@example.com", dotted.ID)
	wantVerifiedEmail(t, s, "V\u0130CTIM@example.com", "") // not folded: exact only
	wantVerifiedEmail(t, s, "\u212Aate@example.com", kelvin.ID)
	wantVerifiedEmail(t, s, "KATE@example.com", kate.ID)
	check(t, "ListUsers(victim@)", userIDs(mustListUsers(t, s, storage.UserFilter{Email: "Victim@Example.com"})), []string{victim.ID})
	check(t, "ListUsers(vİctim@)", userIDs(mustListUsers(t, s, storage.UserFilter{Email: "v\u0130ctim@example.com"})), []string{dotted.ID})

	// One domain, two spellings: one key.
	anna := newUser(t0, "anna@b\u00fccher.de", true)
	mustCreateUser(t, s, anna, newIdentity(anna, "google", "anna", t0))
	wantVerifiedEmail(t, s, "Anna@xn--bcher-kva.de", anna.ID)
	other := newUser(t0, "anna@XN--BCHER-KVA.de", true)
	err := s.CreateUser(ctx, other, newIdentity(other, "apple", "anna", t0))
	wantErr(t, "CreateUser of the punycode spelling of a verified address", err, storage.ErrEmailTaken)
	check(t, "ListUsers(anna@xn--)", userIDs(mustListUsers(t, s, storage.UserFilter{Email: "anna@xn--bcher-kva.de"})), []string{anna.ID})

	// The password index uses the same key.
	pw := newUser(t0, "Pat@Example.org", false)
	pw.PasswordHash = pwHash
	mustCreateUser(t, s, pw, newIdentity(pw, "password", pw.ID, t0))
	if got, err := s.GetUserByPasswordEmail(ctx, "pat@EXAMPLE.org"); err != nil || got.ID != pw.ID {
		t.Errorf("GetUserByPasswordEmail(pat@EXAMPLE.org) = %q, %v; want %q", got.ID, err, pw.ID)
	}
	if _, err := s.GetUserByPasswordEmail(ctx, "p\u0391t@example.org"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetUserByPasswordEmail with a Greek capital alpha = %v, want ErrNotFound", err)
	}
}
