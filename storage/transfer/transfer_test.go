package transfer_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/storage/postgres/pgtest"
	"github.com/authex/authex/storage/transfer"
)

func openBolt(t *testing.T) storage.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "authex.db"), bolt.Options{NoSync: true, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t *testing.T) storage.Store {
	t.Helper()
	dsn, schema := pgtest.Schema(t)
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fill writes one of every kind of record, including the awkward ones: a
// revoked session, a rotated one, a retired key, a user with two identities.
func fill(t *testing.T, s storage.Store) {
	t.Helper()
	ctx := t.Context()
	t0 := time.Now().Truncate(time.Microsecond).UTC()
	for i, email := range []string{"ada@example.com", "bob@example.com", "carol@example.com"} {
		u := storage.User{ID: uuid.NewString(), Email: email, EmailVerified: i != 1, Name: "User " + email,
			Roles: []string{"member"}, CreatedAt: t0, UpdatedAt: t0.Add(time.Minute)}
		if i == 2 {
			u.PasswordHash, u.Disabled, u.Roles = "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA", true, nil
			u.Username, u.GivenName, u.FamilyName = "Carol.C", "Carol", "C"
		}
		first := storage.Identity{ID: uuid.NewString(), UserID: u.ID, Provider: "google", Issuer: "https://accounts.google.com",
			Subject: "g-" + email, Email: email, EmailVerified: true, CreatedAt: t0, LastLoginAt: t0.Add(time.Hour)}
		if err := s.CreateUser(ctx, u, first); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			second := first
			second.ID, second.Provider, second.Issuer, second.Subject = uuid.NewString(), "apple", "https://appleid.apple.com", "ap-ada"
			second.CreatedAt = t0.Add(time.Second)
			if err := s.AddIdentity(ctx, second); err != nil {
				t.Fatal(err)
			}
		}
		for j := range 2 {
			sess := storage.Session{ID: uuid.NewString(), UserID: u.ID, Provider: "google", ClientID: "web", Generation: 1,
				RotatedAt: t0, CreatedAt: t0.Add(time.Duration(j) * time.Second), IdleExpiresAt: t0.Add(14 * 24 * time.Hour),
				ExpiresAt: t0.Add(90 * 24 * time.Hour), UserAgent: "Mozilla/5.0", IP: "192.0.2.1"}
			if err := s.CreateSession(ctx, sess); err != nil {
				t.Fatal(err)
			}
			if j == 0 {
				if _, err := s.RotateSession(ctx, sess.ID, 1, t0.Add(time.Minute), t0.Add(15*24*time.Hour)); err != nil {
					t.Fatal(err)
				}
			} else if err := s.RevokeSession(ctx, sess.ID, t0.Add(2*time.Minute), "logout"); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AppendAudit(ctx, storage.AuditEvent{Type: "user.created", UserID: u.ID, Time: t0.Add(time.Duration(i) * time.Second), Provider: "google"}); err != nil {
			t.Fatal(err)
		}
	}
	for i, alg := range []string{"ES256", "EdDSA"} {
		k := storage.SigningKey{ID: "kid-" + alg, Algorithm: alg, PrivateKey: []byte{0x30, byte(i)}, CreatedAt: t0.Add(time.Duration(i) * time.Hour), NotBefore: t0}
		if i == 0 {
			k.RetiredAt, k.ExpiresAt = t0.Add(time.Hour), t0.Add(48*time.Hour)
		}
		if err := s.CreateSigningKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.EnsureSecret(ctx, "refresh-mac", []byte("0123456789abcdef0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
}

// snapshot reads everything a store holds, for comparison.
type snapshot struct {
	Users      []storage.User
	Identities [][]storage.Identity
	Sessions   [][]storage.Session
	Keys       []storage.SigningKey
	Secrets    []storage.Secret
	Audit      []storage.AuditEvent
}

func snap(t *testing.T, s storage.Store) snapshot {
	t.Helper()
	ctx := t.Context()
	var sn snapshot
	var err error
	if sn.Users, err = s.ListUsers(ctx, storage.UserFilter{}); err != nil {
		t.Fatal(err)
	}
	for i, u := range sn.Users {
		sn.Users[i].Roles = append([]string{}, u.Roles...) // nil and empty alike
		ids, err := s.ListIdentities(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		sessions, err := s.ListSessions(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		sn.Identities, sn.Sessions = append(sn.Identities, ids), append(sn.Sessions, sessions)
	}
	if sn.Keys, err = s.ListSigningKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if sn.Secrets, err = s.(storage.Exporter).ListSecrets(ctx); err != nil {
		t.Fatal(err)
	}
	if sn.Audit, err = s.ListAudit(ctx, storage.AuditFilter{}); err != nil {
		t.Fatal(err)
	}
	return sn
}

func roundTrip(t *testing.T, from, to storage.Store) {
	t.Helper()
	fill(t, from)
	var dump bytes.Buffer
	exported, err := transfer.Export(t.Context(), from, &dump)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	want := transfer.Counts{Users: 3, Identities: 4, Sessions: 6, SigningKeys: 2, Secrets: 1, AuditEvents: 3}
	if exported != want {
		t.Fatalf("Export counts = %+v, want %+v", exported, want)
	}
	imported, err := transfer.Import(t.Context(), to, bytes.NewReader(dump.Bytes()))
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if imported != want {
		t.Fatalf("Import counts = %+v, want %+v", imported, want)
	}
	a, b := snap(t, from), snap(t, to)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("stores differ after the transfer:\nfrom %+v\nto   %+v", a, b)
	}
	// The username index is rebuilt by the import.
	if u, err := to.GetUserByUsername(t.Context(), "carol.c"); err != nil || u.Email != "carol@example.com" || u.GivenName != "Carol" {
		t.Fatalf("GetUserByUsername after import = %+v, %v", u, err)
	}

	// A second import is refused before it writes anything.
	if _, err := transfer.Import(t.Context(), to, bytes.NewReader(dump.Bytes())); !errors.Is(err, transfer.ErrNotEmpty) {
		t.Fatalf("Import into a store with data: err = %v, want ErrNotEmpty", err)
	}
	if again := snap(t, to); !reflect.DeepEqual(again, b) {
		t.Fatal("refused import changed the store")
	}
}

func TestBoltToBolt(t *testing.T) { roundTrip(t, openBolt(t), openBolt(t)) }

func TestBoltToPostgres(t *testing.T) { roundTrip(t, openBolt(t), openPostgres(t)) }

func TestPostgresToBolt(t *testing.T) { roundTrip(t, openPostgres(t), openBolt(t)) }

func TestImportRefusesBadStreams(t *testing.T) {
	src := openBolt(t)
	fill(t, src)
	var dump bytes.Buffer
	if _, err := transfer.Export(t.Context(), src, &dump); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(dump.String(), "\n"), "\n")
	tests := []struct {
		name, stream, want string
	}{
		{"not an export", "{\"kind\":\"user\"}\n", "not an authex-export stream"},
		{"other version", strings.Replace(lines[0], `"version":1`, `"version":99`, 1), "stream version 99"},
		{"truncated", strings.Join(lines[:len(lines)-1], ""), "without its end line"},
		{"counts differ", strings.Join(append(append([]string{}, lines[:3]...), lines[len(lines)-1]), ""), "the end line says"},
		{"unknown field", lines[0] + "{\"kind\":\"secret\",\"secret\":{\"name\":\"x\",\"value\":\"eA==\",\"extra\":1}}\n", "unknown field"},
		{"garbage", lines[0] + "not json\n", "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := transfer.Import(t.Context(), openBolt(t), strings.NewReader(tt.stream))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Import: err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
