package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/storage/postgres/pgtest"
)

// TestMigrateEmailTrust opens a schema as version 3 left it (email_lower
// the strings.ToLower of email, no email_verified_by) and checks what
// migration 4 makes of it: email_verified_by from the oldest identity that
// verified the user's address, email_lower as storage.EmailKey, and the
// oldest user keeping a key two users now share.
func TestMigrateEmailTrust(t *testing.T) {
	ctx := t.Context()
	dsn, schema := pgtest.Schema(t)
	old, err := postgres.Open(ctx, dsn, postgres.WithMigrateTo(postgres.Options{Schema: schema, SweepInterval: -1, Logger: quiet}, 3))
	if err != nil {
		t.Fatalf("Open at version 3: %v", err)
	}
	old.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SET search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	type ident struct {
		provider, email string
		verified        bool
	}
	type spec struct {
		email              string
		verified, password bool
		idents             []ident
		want               string
	}
	specs := []spec{
		{email: "Victim@Example.com", verified: true, idents: []ident{{"corp", "VICTIM@example.COM", true}, {"google", "victim@example.com", true}}, want: "corp"},
		{email: "pat@example.org", verified: true, idents: []ident{{"github", "pat@work.example", true}, {"corp", "pat@example.org", false}, {"google", "pat@example.org", true}}, want: "google"},
		{email: "lone@example.net", verified: true, idents: []ident{{"corp", "other@example.net", true}}, want: ""},
		{email: "Pw@Example.net", password: true, idents: []ident{{"password", "Pw@Example.net", false}}, want: ""},
		{email: "\u00dcn\u00efcode@example.com", verified: true, idents: []ident{{"google", "\u00dcn\u00efcode@example.com", true}}, want: "google"},
		{email: "anna@b\u00fccher.de", verified: true, idents: []ident{{"google", "anna@b\u00fccher.de", true}}, want: "google"},
		{email: "anna@xn--bcher-kva.de", verified: true, idents: []ident{{"apple", "anna@xn--bcher-kva.de", true}}, want: ""},
	}
	ids := make([]string, len(specs))
	for i, sp := range specs {
		at := t0.Add(time.Duration(i) * time.Minute)
		ids[i] = uuid.NewString()
		hash := ""
		if sp.password {
			hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
		}
		if _, err := conn.Exec(ctx, `INSERT INTO users (id, email, email_lower, email_verified, password_hash, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6)`, ids[i], sp.email, strings.ToLower(sp.email), sp.verified, hash, at); err != nil {
			t.Fatalf("insert %s: %v", sp.email, err)
		}
		for j, id := range sp.idents {
			if _, err := conn.Exec(ctx, `INSERT INTO identities (id, user_id, provider, issuer, subject, email, email_verified, created_at, last_login_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`, uuid.NewString(), ids[i], id.provider, "https://"+id.provider+".example",
				uuid.NewString(), id.email, id.verified, at.Add(time.Duration(j)*time.Second)); err != nil {
				t.Fatalf("insert identity: %v", err)
			}
		}
	}

	var logs bytes.Buffer
	s, err := postgres.Open(ctx, dsn, postgres.Options{Schema: schema, SweepInterval: -1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("Open (migrate to the latest): %v", err)
	}
	defer s.Close()
	for i, sp := range specs {
		u, err := s.GetUser(ctx, ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if u.EmailVerifiedBy != sp.want {
			t.Errorf("%s: EmailVerifiedBy = %q, want %q", sp.email, u.EmailVerifiedBy, sp.want)
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
	wantOwner(s.GetUserByVerifiedEmail, "victim@EXAMPLE.com", ids[0])
	wantOwner(s.GetUserByPasswordEmail, "pw@example.NET", ids[3])
	wantOwner(s.GetUserByVerifiedEmail, "\u00dcn\u00efcode@example.com", ids[4])
	wantOwner(s.GetUserByVerifiedEmail, "\u00fcn\u00efcode@example.com", "")
	wantOwner(s.GetUserByVerifiedEmail, "anna@xn--bcher-kva.de", ids[5])
	wantOwner(s.GetUserByVerifiedEmail, "anna@B\u00fcCHER.de", ids[5])
	younger, err := s.GetUser(ctx, ids[6])
	if err != nil || younger.EmailVerified || younger.Email != "anna@xn--bcher-kva.de" {
		t.Errorf("younger anna after the migration = %+v, %v; want her address unverified", younger, err)
	}
	if _, err := s.ModifyUser(ctx, younger.ID, func(u *storage.User) error { u.Name = "Anna"; return nil }); err != nil {
		t.Errorf("ModifyUser of the younger anna: %v", err)
	}
	if !strings.Contains(logs.String(), ids[6]) || strings.Contains(logs.String(), "anna@") {
		t.Errorf("the collision is not logged by user id alone:\n%s", logs.String())
	}
}
