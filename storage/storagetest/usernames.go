package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/authex/authex/storage"
)

// The username index (storage.Store.GetUserByUsername, UserFilter.Username,
// and how CreateUser, UpdateUser, ModifyUser and DeleteUser keep it in
// step); Run runs these.

// unUser is a password user with a username, not yet written.
func unUser(email, username string) (storage.User, storage.Identity) {
	at := pwEpoch()
	u := storage.User{ID: uuid.NewString(), Email: email, Name: "John Doe", GivenName: "John", FamilyName: "Doe",
		Username: username, Roles: []string{}, PasswordHash: pwHash, CreatedAt: at, UpdatedAt: at}
	id := storage.Identity{ID: uuid.NewString(), UserID: u.ID, Provider: "password",
		Issuer: "https://authex.example#password", Subject: u.ID, Email: email, CreatedAt: at, LastLoginAt: at}
	return u, id
}

func unCreate(t *testing.T, s storage.Store, email, username string) storage.User {
	t.Helper()
	u, id := unUser(email, username)
	if err := s.CreateUser(t.Context(), u, id); err != nil {
		t.Fatalf("CreateUser(%s, %s): %v", email, username, err)
	}
	return u
}

// wantUsername checks that username resolves to userID ("" = to nobody).
func wantUsername(t *testing.T, s storage.Store, username, userID string) {
	t.Helper()
	u, err := s.GetUserByUsername(t.Context(), username)
	switch {
	case userID == "" && !errors.Is(err, storage.ErrNotFound):
		t.Fatalf("GetUserByUsername(%q) = %q, %v; want ErrNotFound", username, u.ID, err)
	case userID != "" && err != nil:
		t.Fatalf("GetUserByUsername(%q): %v", username, err)
	case userID != "" && u.ID != userID:
		t.Fatalf("GetUserByUsername(%q) = user %q, want %q", username, u.ID, userID)
	}
}

func testUsernameIndex(t *testing.T, s storage.Store) {
	u := unCreate(t, s, "john@example.com", "John.Doe")
	for _, name := range []string{"John.Doe", "john.doe", "JOHN.DOE"} {
		wantUsername(t, s, name, u.ID)
	}
	got := mustGetUser(t, s, u.ID)
	check(t, "Username", got.Username, "John.Doe") // kept as given
	check(t, "GivenName", got.GivenName, "John")
	check(t, "FamilyName", got.FamilyName, "Doe")
	// Only ASCII folds: the Kelvin sign is not a K.
	wantUsername(t, s, "\u212Aohn.doe", "")
	wantUsername(t, s, "", "")
	// A user without a username is in no entry.
	plain := pwSignUp(t, s, "plain@example.com", false, pwHash)
	wantUsername(t, s, "", "")
	if got := mustGetUser(t, s, plain.ID); got.Username != "" || got.GivenName != "" || got.FamilyName != "" {
		t.Errorf("user without username reads back %+v", got)
	}
}

func testUsernameTaken(t *testing.T, s storage.Store) {
	ctx := t.Context()
	first := unCreate(t, s, "a@example.com", "sam")
	before, err := s.CountUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u, id := unUser("b@example.com", "SAM")
	if err := s.CreateUser(ctx, u, id); !errors.Is(err, storage.ErrUsernameTaken) {
		t.Fatalf("CreateUser with a taken username (other case) = %v, want ErrUsernameTaken", err)
	}
	// Nothing of the loser was written.
	if _, err := s.GetUser(ctx, u.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("loser's user: %v, want ErrNotFound", err)
	}
	if _, err := s.GetIdentity(ctx, id.Issuer, id.Subject); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("loser's identity: %v, want ErrNotFound", err)
	}
	wantPasswordEmail(t, s, "b@example.com", "")
	if after, _ := s.CountUsers(ctx); after != before {
		t.Errorf("CountUsers = %d after a refused CreateUser, want %d", after, before)
	}
	wantUsername(t, s, "sam", first.ID)

	// Update and Modify into a taken username are refused and write nothing.
	other := unCreate(t, s, "c@example.com", "other")
	o := mustGetUser(t, s, other.ID)
	o.Username, o.Name = "Sam", "changed"
	if err := s.UpdateUser(ctx, o); !errors.Is(err, storage.ErrUsernameTaken) {
		t.Fatalf("UpdateUser into a taken username = %v, want ErrUsernameTaken", err)
	}
	if _, err := s.ModifyUser(ctx, other.ID, func(x *storage.User) error {
		x.Username, x.Name = "sAM", "changed"
		return nil
	}); !errors.Is(err, storage.ErrUsernameTaken) {
		t.Fatalf("ModifyUser into a taken username = %v, want ErrUsernameTaken", err)
	}
	if got := mustGetUser(t, s, other.ID); got.Username != "other" || got.Name != "John Doe" {
		t.Errorf("after refused updates the user is %q / %q, want other / John Doe", got.Username, got.Name)
	}
	wantUsername(t, s, "other", other.ID)
	wantUsername(t, s, "sam", first.ID)
}

func testUsernameFollowsUpdates(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := unCreate(t, s, "move@example.com", "before")
	// A change of case alone keeps the entry.
	got, err := s.ModifyUser(ctx, u.ID, func(x *storage.User) error { x.Username = "BEFORE"; return nil })
	if err != nil || got.Username != "BEFORE" {
		t.Fatalf("ModifyUser(case) = %q, %v", got.Username, err)
	}
	wantUsername(t, s, "before", u.ID)
	// A new name moves the entry.
	x := mustGetUser(t, s, u.ID)
	x.Username = "after"
	if err := s.UpdateUser(ctx, x); err != nil {
		t.Fatal(err)
	}
	wantUsername(t, s, "before", "")
	wantUsername(t, s, "after", u.ID)
	// The old name is free for someone else.
	other := unCreate(t, s, "other@example.com", "Before")
	wantUsername(t, s, "before", other.ID)
	// Removing the username removes the entry.
	if _, err := s.ModifyUser(ctx, u.ID, func(x *storage.User) error { x.Username = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	wantUsername(t, s, "after", "")
	// Deleting the user frees its name.
	if err := s.DeleteUser(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	wantUsername(t, s, "before", "")
	unCreate(t, s, "again@example.com", "before")
}

func testListUsersByUsername(t *testing.T, s storage.Store) {
	u := unCreate(t, s, "list@example.com", "Lister")
	unCreate(t, s, "list2@example.com", "lister2")
	got, err := s.ListUsers(t.Context(), storage.UserFilter{Username: "LISTER"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != u.ID || got[0].Username != "Lister" {
		t.Fatalf("ListUsers(username LISTER) = %+v, want only %s", got, u.ID)
	}
	got, err = s.ListUsers(t.Context(), storage.UserFilter{Username: "nobody"})
	if err != nil || len(got) != 0 {
		t.Fatalf("ListUsers(username nobody) = %+v, %v; want none", got, err)
	}
}

// testUsernameConcurrent: of 50 concurrent registrations of one username
// (in different cases, with different emails) exactly one wins.
func testUsernameConcurrent(t *testing.T, s storage.Store) {
	const n = 50
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			name := "racer"
			if i%2 == 1 {
				name = "RACER"
			}
			u, id := unUser(fmt.Sprintf("racer%d@example.com", i), name)
			errs[i] = s.CreateUser(t.Context(), u, id)
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, storage.ErrUsernameTaken):
			t.Errorf("registration %d: %v, want nil or ErrUsernameTaken", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent registrations of one username won, want 1", won, n)
	}
	got, err := s.ListUsers(t.Context(), storage.UserFilter{Username: "racer"})
	if err != nil || len(got) != 1 {
		t.Fatalf("ListUsers(racer) = %d users, %v; want 1", len(got), err)
	}
}
