package transfer_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/storage/postgres/pgtest"
	"github.com/authex/authex/storage/transfer"
)

// goodDump exports a filled store and returns the stream and its lines
// (each with its newline).
func goodDump(t *testing.T) (string, []string) {
	t.Helper()
	src := openBolt(t)
	fill(t, src)
	var dump bytes.Buffer
	if _, err := transfer.Export(t.Context(), src, &dump); err != nil {
		t.Fatal(err)
	}
	return dump.String(), strings.SplitAfter(strings.TrimSuffix(dump.String(), "\n"), "\n")
}

func wantEmpty(t *testing.T, s storage.Store) {
	t.Helper()
	empty, err := transfer.Empty(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if !empty {
		t.Fatal("the target store is not empty after a refused import")
	}
}

// lineOf returns the index of the first line containing sub.
func lineOf(t *testing.T, lines []string, sub string) int {
	t.Helper()
	for i, l := range lines {
		if strings.Contains(l, sub) {
			return i
		}
	}
	t.Fatalf("no line contains %q", sub)
	return -1
}

// TestImportRefusesBadStreamsWritingNothing: every bad stream is refused
// before anything is written (on both backends), the error names the line,
// the spooled copy is gone, and a good stream then imports into the same
// store.
func TestImportRefusesBadStreamsWritingNothing(t *testing.T) {
	dump, lines := goodDump(t)
	n := len(lines)
	carol := lineOf(t, lines, `"email":"carol@example.com"`)
	sess := lineOf(t, lines, `"kind":"session"`)
	without := func(i int) string {
		return strings.Join(append(append([]string{}, lines[:i]...), lines[i+1:]...), "")
	}
	with := func(i int, repl string) string {
		l := append([]string{}, lines...)
		l[i] = repl
		return strings.Join(l, "")
	}
	tests := []struct {
		name, stream, want string
	}{
		{"truncated at a line end", strings.Join(lines[:n-1], ""), "without its end line (truncated?)"},
		{"truncated mid-line", dump[:len(dump)-len(lines[n-1])-20], "line " + itoa(n-1) + ":"},
		{"a session line missing", without(sess), "line " + itoa(n-1) + " (end): read 3 users, 4 identities, 5 sessions"},
		{"end line counts edited", with(n-1, strings.Replace(lines[n-1], `"users":3`, `"users":4`, 1)), "but the end line says 4 users"},
		{"malformed line in the middle", with(carol, `{"kind":"user","user":{"id":`+"\n"), "line " + itoa(carol+1) + ":"},
		{"unknown field in the middle", with(carol, strings.Replace(lines[carol], `"kind":"user"`, `"kind":"user","extra":1`, 1)), "unknown field"},
		{"two objects on a line", with(carol, strings.TrimSuffix(lines[carol], "\n")+"{}\n"), "more than one JSON value"},
		{"empty line", with(carol, "\n"), "line " + itoa(carol+1) + ": empty line"},
		{"wrong payload for its kind", with(carol, strings.Replace(lines[carol], `"kind":"user"`, `"kind":"audit"`, 1)), "fields of another kind"},
		{"session of an unknown user", with(sess, strings.Replace(lines[sess], `"user_id":"`, `"user_id":"x`, 1)), "whom no earlier line holds"},
		{"data after the end line", dump + lines[carol], "line " + itoa(n+1) + ": data after the end line"},
		{"empty", "", "the stream is empty"},
	}
	for _, backend := range []struct {
		name string
		open func(*testing.T) storage.Store
	}{{"bolt", openBolt}, {"postgres", openPostgres}} {
		t.Run(backend.name, func(t *testing.T) {
			to := backend.open(t)
			spool := t.TempDir()
			t.Setenv("TMPDIR", spool)
			for _, tt := range tests {
				_, err := transfer.Import(t.Context(), to, strings.NewReader(tt.stream))
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("%s: err = %v, want one containing %q", tt.name, err, tt.want)
				}
				wantEmpty(t, to)
				if left, _ := os.ReadDir(spool); len(left) != 0 {
					t.Fatalf("%s: the spooled stream was left behind: %v", tt.name, left)
				}
			}
			c, err := transfer.Import(t.Context(), to, strings.NewReader(dump))
			if err != nil {
				t.Fatalf("a good stream after the refused ones: %v", err)
			}
			if want := (transfer.Counts{Users: 3, Identities: 4, Sessions: 6, SigningKeys: 2, Secrets: 1, AuditEvents: 3}); c != want {
				t.Fatalf("imported %+v, want %+v", c, want)
			}
			if left, _ := os.ReadDir(spool); len(left) != 0 {
				t.Fatalf("the spooled stream was left behind: %v", left)
			}
		})
	}
}

func itoa(i int) string { return jsonInt(i) }

func jsonInt(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestPostgresImportIsOneTransaction: a stream that is well formed but that
// the store refuses half way (an identity a previous user holds), or a
// connection that dies half way, leaves the PostgreSQL store empty: the
// secrets and keys written before the failure are rolled back too.
func TestPostgresImportIsOneTransaction(t *testing.T) {
	dump, _ := goodDump(t)
	dsn, schema := pgtest.Schema(t)
	proxy, proxyDSN := pgtest.NewProxy(t, dsn)
	open := func(dsn string) storage.Store {
		s, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema, SweepInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	direct, viaProxy := open(dsn), open(proxyDSN)

	// Carol's identity takes Ada's (issuer, subject): the third user fails.
	clash := strings.Replace(dump, `"subject":"g-carol@example.com"`, `"subject":"g-ada@example.com"`, 1)
	_, err := transfer.Import(t.Context(), direct, strings.NewReader(clash))
	if !errors.Is(err, storage.ErrIdentityTaken) || !strings.Contains(err.Error(), "(user)") {
		t.Fatalf("Import of a clashing identity: err = %v, want ErrIdentityTaken on a user line", err)
	}
	wantEmpty(t, direct)

	// The connection dies when Carol's user is sent.
	proxy.KillOn("carol@example.com")
	_, err = transfer.Import(t.Context(), viaProxy, strings.NewReader(dump))
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Import over a connection cut half way: err = %v, want ErrUnavailable", err)
	}
	proxy.KillOn("")
	wantEmpty(t, direct)

	if _, err := transfer.Import(t.Context(), viaProxy, strings.NewReader(dump)); err != nil {
		t.Fatalf("Import once the connection is back: %v", err)
	}
	if n, err := direct.CountUsers(t.Context()); err != nil || n != 3 {
		t.Fatalf("users after the good import: %d, %v", n, err)
	}
}

// hookWriter runs hook before the first write.
type hookWriter struct {
	w    io.Writer
	hook func()
}

func (h *hookWriter) Write(p []byte) (int, error) {
	if h.hook != nil {
		h.hook()
		h.hook = nil
	}
	return h.w.Write(p)
}

// TestPostgresExportIsOneSnapshot: what another instance commits while an
// export runs (a refresh rotation, a new user) is not in it: the export is
// the store at one moment, with the generations of that moment.
func TestPostgresExportIsOneSnapshot(t *testing.T) {
	ctx := t.Context()
	s := openPostgres(t)
	fill(t, s)
	users, err := s.ListUsers(ctx, storage.UserFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var live storage.Session
	for _, u := range users {
		sessions, err := s.ListSessions(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, sess := range sessions {
			if sess.RevokedAt.IsZero() {
				live = sess
			}
		}
	}
	now := time.Now().UTC()
	var dump bytes.Buffer
	w := &hookWriter{w: &dump, hook: func() {
		if _, err := s.RotateSession(ctx, live.ID, live.Generation, now, now.Add(time.Hour)); err != nil {
			t.Errorf("rotate during the export: %v", err)
		}
		u := storage.User{ID: uuid.NewString(), Roles: []string{}, CreatedAt: now, UpdatedAt: now}
		id := storage.Identity{ID: uuid.NewString(), UserID: u.ID, Provider: "google", Issuer: "https://accounts.google.com", Subject: "late", CreatedAt: now}
		if err := s.CreateUser(ctx, u, id); err != nil {
			t.Errorf("create a user during the export: %v", err)
		}
	}}
	c, err := transfer.Export(ctx, s, w)
	if err != nil {
		t.Fatal(err)
	}
	if c.Users != 3 {
		t.Fatalf("exported %d users, want the 3 there were when the export began", c.Users)
	}
	if !strings.Contains(dump.String(), `"id":"`+live.ID+`","user_id":"`+live.UserID+`","provider":"google","client_id":"web","generation":`+jsonInt(int(live.Generation))+`,`) {
		t.Fatalf("the export does not hold session %s at generation %d:\n%s", live.ID, live.Generation, dump.String())
	}
	// The writes did happen: the next export has them.
	c, err = transfer.Export(ctx, s, io.Discard)
	if err != nil || c.Users != 4 {
		t.Fatalf("second export: %+v, %v", c, err)
	}
}
