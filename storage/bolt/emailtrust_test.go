package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	bbolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
)

// TestOpenMigratesVersion2 opens a file as schema version 2 left it: user
// records without EmailVerifiedBy, email indexes keyed by strings.ToLower.
// Version 3 fills EmailVerifiedBy from the oldest verifying identity and
// rebuilds both indexes under storage.EmailKey, the oldest user keeping an
// address two users now share.
func TestOpenMigratesVersion2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "authex.db")
	s, err := bolt.Open(path, bolt.Options{NoSync: true, SweepInterval: -1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	type spec struct {
		email    string
		verified bool // as version 2 stored it
		password bool
		idents   []storage.Identity // Provider, Email, EmailVerified; the first is created with the user
		want     string             // EmailVerifiedBy after the migration
	}
	ident := func(provider, email string, verified bool) storage.Identity {
		return storage.Identity{Provider: provider, Email: email, EmailVerified: verified}
	}
	specs := []spec{
		// The oldest identity that verified the address vouches for it,
		// even when a stronger one came later; the case of its copy of
		// the address does not matter.
		{email: "Victim@Example.com", verified: true, idents: []storage.Identity{
			ident("corp", "VICTIM@example.COM", true), ident("google", "victim@example.com", true)}, want: "corp"},
		// An identity with another address, or an unverified one, vouches
		// for nothing.
		{email: "pat@example.org", verified: true, idents: []storage.Identity{
			ident("github", "pat@work.example", true), ident("corp", "pat@example.org", false), ident("google", "pat@example.org", true)}, want: "google"},
		// No identity vouches: unknown, never trusted.
		{email: "lone@example.net", verified: true, idents: []storage.Identity{ident("corp", "other@example.net", true)}, want: ""},
		// Unverified: nobody vouched.
		{email: "Pw@Example.net", password: true, idents: []storage.Identity{ident("password", "Pw@Example.net", false)}, want: ""},
		// Non-ASCII local part: keyed exactly, no longer folded.
		{email: "\u00dcn\u00efcode@example.com", verified: true, idents: []storage.Identity{ident("google", "\u00dcn\u00efcode@example.com", true)}, want: "google"},
		// Two spellings of one domain were two keys; now one. The older user keeps it.
		{email: "anna@b\u00fccher.de", verified: true, idents: []storage.Identity{ident("google", "anna@b\u00fccher.de", true)}, want: "google"},
		{email: "anna@xn--bcher-kva.de", verified: true, idents: []storage.Identity{ident("apple", "anna@xn--bcher-kva.de", true)}, want: ""},
	}
	users := make([]storage.User, len(specs))
	for i, sp := range specs {
		at := t0.Add(time.Duration(i) * time.Minute)
		u := storage.User{ID: uuid.NewString(), Email: sp.email, Roles: []string{}, CreatedAt: at, UpdatedAt: at}
		if sp.password {
			u.PasswordHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
		}
		for j, id := range sp.idents {
			id.ID, id.UserID, id.Issuer, id.Subject = uuid.NewString(), u.ID, "https://"+id.Provider+".example", uuid.NewString()
			id.CreatedAt, id.LastLoginAt = at.Add(time.Duration(j)*time.Second), at
			if j == 0 {
				// Created unverified: the new keys would refuse the second anna.
				if err := s.CreateUser(ctx, u, id); err != nil {
					t.Fatalf("CreateUser(%s): %v", sp.email, err)
				}
				continue
			}
			if err := s.AddIdentity(ctx, id); err != nil {
				t.Fatalf("AddIdentity: %v", err)
			}
		}
		u.EmailVerified = sp.verified
		users[i] = u
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Make it a version 2 file.
	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		for _, name := range []string{"emails", "password_emails"} {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return err
			}
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		for _, u := range users {
			if err := tx.Bucket([]byte("users")).Put([]byte(u.ID), bolt.EncodeUserFormat1(u)); err != nil {
				return err
			}
			if u.EmailVerified {
				if err := tx.Bucket([]byte("emails")).Put([]byte(strings.ToLower(u.Email)), []byte(u.ID)); err != nil {
					return err
				}
			}
			if u.PasswordHash != "" {
				if err := tx.Bucket([]byte("password_emails")).Put([]byte(strings.ToLower(u.Email)), []byte(u.ID)); err != nil {
					return err
				}
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("version"), []byte{0, 0, 0, 0, 0, 0, 0, 2})
	})

	var logs bytes.Buffer
	s = open(t, path, bolt.Options{NoSync: true, SweepInterval: -1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for i, sp := range specs {
		got, err := s.GetUser(ctx, users[i].ID)
		if err != nil {
			t.Fatalf("GetUser(%s): %v", sp.email, err)
		}
		if got.EmailVerifiedBy != sp.want {
			t.Errorf("%s: EmailVerifiedBy = %q, want %q", sp.email, got.EmailVerifiedBy, sp.want)
		}
	}
	wantOwner := func(lookup func(context.Context, string) (storage.User, error), email, userID string) {
		t.Helper()
		u, err := lookup(ctx, email)
		switch {
		case userID == "" && !errors.Is(err, storage.ErrNotFound):
			t.Errorf("lookup(%q) = %q, %v; want nobody", email, u.ID, err)
		case userID != "" && (err != nil || u.ID != userID):
			t.Errorf("lookup(%q) = %q, %v; want %q", email, u.ID, err, userID)
		}
	}
	wantOwner(s.GetUserByVerifiedEmail, "victim@EXAMPLE.com", users[0].ID)
	wantOwner(s.GetUserByPasswordEmail, "pw@example.NET", users[3].ID)
	wantOwner(s.GetUserByVerifiedEmail, "\u00dcn\u00efcode@example.com", users[4].ID)
	wantOwner(s.GetUserByVerifiedEmail, "\u00fcn\u00efcode@example.com", "") // the old lower-cased key is gone
	wantOwner(s.GetUserByVerifiedEmail, "anna@xn--bcher-kva.de", users[5].ID)
	wantOwner(s.GetUserByVerifiedEmail, "anna@B\u00fcCHER.de", users[5].ID)
	// The younger anna keeps her address, no longer verified, and can be
	// written again (no stale index entry fights her record).
	younger, err := s.GetUser(ctx, users[6].ID)
	if err != nil || younger.EmailVerified || younger.Email != "anna@xn--bcher-kva.de" {
		t.Errorf("younger anna after the migration = %+v, %v; want her address unverified", younger, err)
	}
	if _, err := s.ModifyUser(ctx, younger.ID, func(u *storage.User) error { u.Name = "Anna"; return nil }); err != nil {
		t.Errorf("ModifyUser of the younger anna: %v", err)
	}
	if !strings.Contains(logs.String(), users[6].ID) || strings.Contains(logs.String(), "anna@") {
		t.Errorf("the collision is not logged by user id alone:\n%s", logs.String())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if v := readVersion(t, path); v != bolt.SchemaVersion {
		t.Errorf("schema version after the migration = %d, want %d", v, bolt.SchemaVersion)
	}
}
