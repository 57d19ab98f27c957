package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/authex/authex/storage"
)

// ModifyUser, the transactional read-modify-write of a user; Run runs these.

func testModifyUser(t *testing.T, s storage.Store) {
	t0 := epoch()
	u, id := signUp(t, s, t0, "ada@example.com", true, "google", "g-ada")

	calls := 0
	got, err := s.ModifyUser(t.Context(), u.ID, func(v *storage.User) error {
		calls++
		if v.ID != u.ID || v.Name != u.Name || !slices.Equal(v.Roles, u.Roles) {
			return fmt.Errorf("fn saw %+v, want the stored user", *v)
		}
		v.Name = "Ada King"
		v.Roles = append(v.Roles, "admin")
		v.Disabled = true
		v.Email, v.EmailVerified = "King@Example.com", true
		v.PasswordHash = pwHash
		v.UpdatedAt = t0.Add(time.Hour).In(zoneWest)
		v.ID = uuid.NewString()             // not mutable: ignored
		v.CreatedAt = t0.Add(5 * time.Hour) // not mutable: ignored
		return nil
	})
	if err != nil {
		t.Fatalf("ModifyUser: %v", err)
	}
	if calls == 0 {
		t.Fatal("ModifyUser did not call fn")
	}
	want := u
	want.Name, want.Roles, want.Disabled = "Ada King", []string{"member", "admin"}, true
	want.Email, want.EmailVerified, want.PasswordHash = "King@Example.com", true, pwHash
	want.UpdatedAt = t0.Add(time.Hour)
	check(t, "ModifyUser's answer", got, want)
	check(t, "GetUser after ModifyUser", mustGetUser(t, s, u.ID), want)
	check(t, "ListIdentities after ModifyUser", mustListIdentities(t, s, u.ID), []storage.Identity{id})
	wantVerifiedEmail(t, s, "ada@example.com", "")
	wantVerifiedEmail(t, s, "king@example.com", u.ID)
	wantPasswordEmail(t, s, "KING@example.com", u.ID)
	wantCount(t, s, 1)

	// Clearing the password and the verification leaves both indexes.
	if _, err := s.ModifyUser(t.Context(), u.ID, func(v *storage.User) error {
		v.PasswordHash, v.EmailVerified, v.Roles = "", false, nil
		return nil
	}); err != nil {
		t.Fatalf("ModifyUser: %v", err)
	}
	wantVerifiedEmail(t, s, "king@example.com", "")
	wantPasswordEmail(t, s, "king@example.com", "")
	if got := mustGetUser(t, s, u.ID); len(got.Roles) != 0 || got.PasswordHash != "" {
		t.Fatalf("GetUser after clearing = %+v", got)
	}
}

func testModifyUserNotFound(t *testing.T, s storage.Store) {
	called := false
	_, err := s.ModifyUser(t.Context(), uuid.NewString(), func(*storage.User) error { called = true; return nil })
	wantErr(t, "ModifyUser of a missing user", err, storage.ErrNotFound)
	if called {
		t.Error("ModifyUser called fn for a missing user")
	}
	wantCount(t, s, 0)
}

func testModifyUserFnError(t *testing.T, s storage.Store) {
	t0 := epoch()
	u, _ := signUp(t, s, t0, "a@example.com", true, "google", "g-a")
	errNo := errors.New("no, thanks")
	_, err := s.ModifyUser(t.Context(), u.ID, func(v *storage.User) error {
		// Changes made before the error must not be written.
		v.Name, v.Email, v.PasswordHash, v.Disabled = "Mallory", "m@example.com", pwHash, true
		return errNo
	})
	if err != errNo {
		t.Fatalf("ModifyUser with a failing fn = %v, want fn's error unchanged", err)
	}
	check(t, "GetUser after the aborted ModifyUser", mustGetUser(t, s, u.ID), u)
	wantVerifiedEmail(t, s, "a@example.com", u.ID)
	wantVerifiedEmail(t, s, "m@example.com", "")
	wantPasswordEmail(t, s, "m@example.com", "")
}

func testModifyUserConflicts(t *testing.T, s storage.Store) {
	t0 := epoch()
	u, _ := signUp(t, s, t0, "a@example.com", true, "google", "g-a")
	signUp(t, s, t0, "b@example.com", true, "google", "g-b")
	pw := pwSignUp(t, s, "p@example.com", false, pwHash)
	mine := pwSignUp(t, s, "q@example.com", false, pwHash)

	_, err := s.ModifyUser(t.Context(), u.ID, func(v *storage.User) error {
		v.Email, v.Name = "B@Example.com", "Someone Else"
		return nil
	})
	wantErr(t, "ModifyUser to a taken verified email", err, storage.ErrEmailTaken)
	check(t, "GetUser after the refused ModifyUser", mustGetUser(t, s, u.ID), u)
	wantVerifiedEmail(t, s, "a@example.com", u.ID)

	before := mustGetUser(t, s, mine.ID)
	_, err = s.ModifyUser(t.Context(), mine.ID, func(v *storage.User) error {
		v.Email = "P@example.com"
		return nil
	})
	wantErr(t, "ModifyUser to a taken password email", err, storage.ErrPasswordEmailTaken)
	check(t, "GetUser after the refused ModifyUser", mustGetUser(t, s, mine.ID), before)
	wantPasswordEmail(t, s, "p@example.com", pw.ID)
	wantPasswordEmail(t, s, "q@example.com", mine.ID)
}

// testModifyUserConcurrent: many read-modify-writes of one user at once,
// each adding its own role; none may be lost.
func testModifyUserConcurrent(t *testing.T, s storage.Store) {
	const n = 50
	ctx, t0 := t.Context(), epoch()
	u, _ := signUp(t, s, t0, "a@example.com", true, "google", "g-a")
	errs := make([]error, n)
	atOnce(n, func(i int) {
		_, errs[i] = s.ModifyUser(ctx, u.ID, func(v *storage.User) error {
			v.Roles = append(v.Roles, fmt.Sprintf("role-%02d", i))
			return nil
		})
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("ModifyUser %d: %v", i, err)
		}
	}
	got := mustGetUser(t, s, u.ID).Roles
	slices.Sort(got)
	want := []string{"member"}
	for i := range n {
		want = append(want, fmt.Sprintf("role-%02d", i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("roles after %d concurrent ModifyUser: %d of %d present: %v", n, len(got), len(want), got)
	}
}
