package storagetest

import (
	"errors"
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/authex/authex/storage"
)

// testSetIdentityEmail: SetIdentityEmail changes the identity's email and
// flag and nothing else (not the user, not its verified-email index); an
// unknown identity is ErrNotFound.
func testSetIdentityEmail(t *testing.T, s storage.Store) {
	setter := mustOffer[storage.IdentityEmailSetter](t, s)
	ctx, t0 := t.Context(), epoch()
	u := newUser(t0, "old@example.com", true)
	id := newIdentity(u, "google", "s-1", t0)
	if err := s.CreateUser(ctx, u, id); err != nil {
		t.Fatal(err)
	}
	if err := setter.SetIdentityEmail(ctx, id.ID, "new@example.com", false); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetIdentity(ctx, id.Issuer, id.Subject)
	if err != nil {
		t.Fatal(err)
	}
	want := id
	want.Email, want.EmailVerified = "new@example.com", false
	got.CreatedAt, got.LastLoginAt, want.CreatedAt, want.LastLoginAt = got.CreatedAt.UTC(), got.LastLoginAt.UTC(), want.CreatedAt.UTC(), want.LastLoginAt.UTC()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("identity %+v, want %+v", got, want)
	}
	if owner, err := s.GetUserByVerifiedEmail(ctx, "old@example.com"); err != nil || owner.ID != u.ID {
		t.Fatalf("the user's verified email moved: %+v %v", owner, err)
	}
	if err := setter.SetIdentityEmail(ctx, uuid.NewString(), "x@example.com", true); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown identity: %v, want ErrNotFound", err)
	}
}
