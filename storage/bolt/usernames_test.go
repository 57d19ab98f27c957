package bolt

import (
	"testing"

	"github.com/authex/authex/storage"
)

// A user without a username or name parts is still written in
// userFormat2, which binaries from before usernames read; one with them in
// userFormat3, and both decode to what was written.
func TestUserFormatForUsernames(t *testing.T) {
	plain := storage.User{ID: "u1", Email: "a@example.com", Roles: []string{}}
	named := storage.User{ID: "u2", Email: "b@example.com", Username: "Bee", GivenName: "B", FamilyName: "Ee", Roles: []string{}}
	for _, c := range []struct {
		u      storage.User
		format byte
	}{{plain, userFormat2}, {named, userFormat3}} {
		rec := encodeUser(c.u)
		if rec[0] != c.format {
			t.Errorf("user %s written in format %d, want %d", c.u.ID, rec[0], c.format)
		}
		got, err := decodeUser(rec)
		if err != nil || got.Username != c.u.Username || got.GivenName != c.u.GivenName || got.FamilyName != c.u.FamilyName {
			t.Errorf("user %s decodes to %+v, %v", c.u.ID, got, err)
		}
	}
}
