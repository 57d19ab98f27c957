package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/authex/authex/storage"
)

// The password-email index (storage.Store.GetUserByPasswordEmail, and how
// CreateUser, UpdateUser and DeleteUser keep it in step); Run runs these.

const pwHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"

// pwEpoch is a year ahead, in a non-UTC zone, microsecond precision (the
// same conventions as the main suite).
func pwEpoch() time.Time {
	return time.Now().Add(365 * 24 * time.Hour).Truncate(time.Microsecond).In(time.FixedZone("UTC+05:30", 5*60*60+30*60))
}

// pwSignUp creates a user with one identity; hash "" makes it a user
// without a password.
func pwSignUp(t *testing.T, s storage.Store, email string, verified bool, hash string) storage.User {
	t.Helper()
	at := pwEpoch()
	u := storage.User{ID: uuid.NewString(), Email: email, EmailVerified: verified, Name: "Pat",
		Roles: []string{}, PasswordHash: hash, CreatedAt: at, UpdatedAt: at}
	id := storage.Identity{ID: uuid.NewString(), UserID: u.ID, Provider: "password",
		Issuer: "https://authex.example#password", Subject: u.ID, Email: email, CreatedAt: at, LastLoginAt: at}
	if err := s.CreateUser(t.Context(), u, id); err != nil {
		t.Fatalf("CreateUser(%s): %v", email, err)
	}
	return u
}

// wantPasswordEmail checks that email resolves to userID ("" = to nobody).
func wantPasswordEmail(t *testing.T, s storage.Store, email, userID string) {
	t.Helper()
	u, err := s.GetUserByPasswordEmail(t.Context(), email)
	switch {
	case userID == "" && !errors.Is(err, storage.ErrNotFound):
		t.Fatalf("GetUserByPasswordEmail(%q) = %q, %v; want ErrNotFound", email, u.ID, err)
	case userID != "" && err != nil:
		t.Fatalf("GetUserByPasswordEmail(%q): %v", email, err)
	case userID != "" && u.ID != userID:
		t.Fatalf("GetUserByPasswordEmail(%q) = user %q, want %q", email, u.ID, userID)
	}
}

func testPasswordEmailIndex(t *testing.T, s storage.Store) {
	// An unverified email with a password is indexed here and not in the
	// verified index.
	pw := pwSignUp(t, s, "Pat@Example.com", false, pwHash)
	for _, e := range []string{"pat@example.com", "PAT@EXAMPLE.COM", "Pat@Example.com"} {
		wantPasswordEmail(t, s, e, pw.ID)
	}
	if _, err := s.GetUserByVerifiedEmail(t.Context(), "pat@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an unverified password email is in the verified index: %v", err)
	}
	got, err := s.GetUserByPasswordEmail(t.Context(), "pat@example.com")
	if err != nil || got.PasswordHash != pwHash || got.Email != "Pat@Example.com" || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("GetUserByPasswordEmail = %+v, %v", got, err)
	}
	// A user without a password is never in it, verified or not; a verified
	// owner does not block a password account's entry, nor the reverse.
	pwSignUp(t, s, "sam@example.com", true, "")
	wantPasswordEmail(t, s, "sam@example.com", "")
	pwSignUp(t, s, "pat@example.com", true, "")
	wantPasswordEmail(t, s, "pat@example.com", pw.ID)
	wantPasswordEmail(t, s, "", "")
	wantPasswordEmail(t, s, "nobody@example.com", "")
}

func testPasswordEmailTaken(t *testing.T, s storage.Store) {
	first := pwSignUp(t, s, "kim@example.com", false, pwHash)
	before, err := s.CountUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	at := pwEpoch()
	dup := storage.User{ID: uuid.NewString(), Email: "KIM@example.com", PasswordHash: pwHash, CreatedAt: at, UpdatedAt: at}
	dupID := storage.Identity{ID: uuid.NewString(), UserID: dup.ID, Provider: "password", Issuer: "i", Subject: dup.ID}
	err = s.CreateUser(t.Context(), dup, dupID)
	if !errors.Is(err, storage.ErrPasswordEmailTaken) || !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("CreateUser with a taken password email: %v, want ErrPasswordEmailTaken", err)
	}
	// Nothing was written.
	if _, err := s.GetUser(t.Context(), dup.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("refused user was written: %v", err)
	}
	if _, err := s.GetIdentity(t.Context(), "i", dup.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("refused identity was written: %v", err)
	}
	if after, _ := s.CountUsers(t.Context()); after != before {
		t.Fatalf("user count %d -> %d after a refused create", before, after)
	}
	wantPasswordEmail(t, s, "kim@example.com", first.ID)

	// A user without a password may share the address.
	pwSignUp(t, s, "kim@example.com", false, "")
	wantPasswordEmail(t, s, "kim@example.com", first.ID)
}

func testPasswordEmailFollowsUpdates(t *testing.T, s storage.Store) {
	ctx := context.Background()
	u := pwSignUp(t, s, "lee@example.com", false, pwHash)

	// A new email moves the entry.
	u.Email = "lee@example.org"
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	wantPasswordEmail(t, s, "lee@example.com", "")
	wantPasswordEmail(t, s, "lee@example.org", u.ID)

	// Wiping the password removes it; setting one puts it back.
	u.PasswordHash = ""
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	wantPasswordEmail(t, s, "lee@example.org", "")
	u.PasswordHash = pwHash
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	wantPasswordEmail(t, s, "lee@example.org", u.ID)

	// Verifying the email keeps the entry and adds the verified one.
	u.EmailVerified = true
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	wantPasswordEmail(t, s, "lee@example.org", u.ID)
	if v, err := s.GetUserByVerifiedEmail(ctx, "lee@example.org"); err != nil || v.ID != u.ID {
		t.Fatalf("verified index: %q %v", v.ID, err)
	}

	// A user without a password who sets one for a taken email is refused,
	// and nothing of the update is written.
	other := pwSignUp(t, s, "LEE@example.org", false, "")
	other.PasswordHash = pwHash
	other.Name = "changed"
	if err := s.UpdateUser(ctx, other); !errors.Is(err, storage.ErrPasswordEmailTaken) {
		t.Fatalf("UpdateUser onto a taken password email: %v", err)
	}
	if got, _ := s.GetUser(ctx, other.ID); got.PasswordHash != "" || got.Name == "changed" {
		t.Fatalf("refused update was written: %+v", got)
	}
	wantPasswordEmail(t, s, "lee@example.org", u.ID)
}

func testPasswordEmailDeleted(t *testing.T, s storage.Store) {
	u := pwSignUp(t, s, "max@example.com", false, pwHash)
	if err := s.DeleteUser(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	wantPasswordEmail(t, s, "max@example.com", "")
	// The address is free again.
	v := pwSignUp(t, s, "max@example.com", false, pwHash)
	wantPasswordEmail(t, s, "max@example.com", v.ID)
}
