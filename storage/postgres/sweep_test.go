package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/storage/postgres/pgtest"
)

// sweepSession is a session of u created at t0, idle until idle.
func sweepSession(u storage.User, t0, idle time.Time) storage.Session {
	return storage.Session{ID: uuid.NewString(), UserID: u.ID, Provider: "google", ClientID: "web", Generation: 1,
		RotatedAt: t0, CreatedAt: t0, IdleExpiresAt: idle, ExpiresAt: t0.Add(90 * 24 * time.Hour),
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", IP: "203.0.113.7"}
}

// schemaConn is a connection of the test's own to the store's schema, to
// read what the store's API does not show.
func schemaConn(t *testing.T, dsn, schema string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(t.Context(), "SET search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	return conn
}

// sweepAt reads a session's sweep_at: a time, or -infinity or infinity
// as ±100 years from now, which no session's limits reach.
func sweepAt(t *testing.T, conn *pgx.Conn, id string) time.Time {
	t.Helper()
	var at pgtype.Timestamptz
	if err := conn.QueryRow(t.Context(), "SELECT sweep_at FROM sessions WHERE id = $1", id).Scan(&at); err != nil {
		t.Fatalf("sweep_at of %s: %v", id, err)
	}
	switch at.InfinityModifier {
	case pgtype.Infinity:
		return farFuture
	case pgtype.NegativeInfinity:
		return farPast
	}
	return at.Time.UTC()
}

var (
	farFuture = time.Now().UTC().AddDate(100, 0, 0).Truncate(time.Second)
	farPast   = time.Now().UTC().AddDate(-100, 0, 0).Truncate(time.Second)
)

// TestRotationIsHOT: a rotation, either kind, writes no column an index
// of sessions reads, so PostgreSQL updates the row without new index
// entries (HOT); a revocation, which lowers sweep_at, is not HOT. Counted
// by the server for the one transaction that does them all, so the figures
// do not wait for the statistics to be flushed, and every new row version
// fits on the page without pruning (4 sessions x 5 rotations): nothing
// another client of the server holds open changes the outcome.
func TestRotationIsHOT(t *testing.T) {
	s := open(t, postgres.Options{})
	ctx := t.Context()
	u, id := newUser("hot@example.com", "hot")
	if err := s.CreateUser(ctx, u, id); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	var sessions []storage.Session
	for range 4 {
		sess := sweepSession(u, t0, t0.Add(time.Hour))
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, sess)
	}
	const rotations = 5
	err := s.InTx(ctx, func(tx storage.Store) error {
		for i := range rotations {
			at := t0.Add(time.Duration(i+1) * time.Minute)
			for _, sess := range sessions {
				from := uint64(i + 1)
				if i%2 == 0 {
					if _, err := tx.RotateSession(ctx, sess.ID, from, at, at.Add(time.Hour)); err != nil {
						return err
					}
				} else if _, _, err := tx.(storage.EnabledUserRotator).RotateSessionOfEnabledUser(ctx, sess.ID, "web", from, at, at.Add(time.Hour)); err != nil {
					return err
				}
			}
		}
		var updated, hot int64
		stats := `SELECT pg_stat_get_xact_tuples_updated('sessions'::regclass), pg_stat_get_xact_tuples_hot_updated('sessions'::regclass)`
		if err := postgres.QueryRowInView(ctx, tx, stats).Scan(&updated, &hot); err != nil {
			return err
		}
		if want := int64(len(sessions) * rotations); updated != want || hot != want {
			t.Errorf("%d rotations: %d rows updated, %d of them HOT; want %d and %d", want, updated, hot, want, want)
		}
		if err := tx.RevokeSession(ctx, sessions[0].ID, t0.Add(30*time.Minute), "logout"); err != nil {
			return err
		}
		updatedBefore, hotBefore := updated, hot
		if err := postgres.QueryRowInView(ctx, tx, stats).Scan(&updated, &hot); err != nil {
			return err
		}
		if updated != updatedBefore+1 || hot != hotBefore {
			t.Errorf("a revocation: %d rows updated, %d HOT; want one more update, not HOT (sweep_at is indexed)", updated-updatedBefore, hot-hotBefore)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSweepFollowsRotations: a rotation leaves sweep_at where the session
// was created; the sweep deletes a session that was rotated and has
// expired since, keeps one rotated past its now (moving its sweep_at to
// the new idle limit, so the next sweeps pass it by), and deletes that one
// too once the limit it was rotated to has passed.
func TestSweepFollowsRotations(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema, SweepInterval: -1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	conn := schemaConn(t, dsn, schema)
	ctx := t.Context()
	u, id := newUser("sweep@example.com", "sweep")
	if err := s.CreateUser(ctx, u, id); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC().Truncate(time.Second)
	idle := t0.Add(time.Hour)
	rotatedThenExpired := sweepSession(u, t0, idle)
	rotatedPast := sweepSession(u, t0, idle)
	neverRotated := sweepSession(u, t0, idle)
	live := sweepSession(u, t0, t0.Add(72*time.Hour))
	for _, sess := range []storage.Session{rotatedThenExpired, rotatedPast, neverRotated, live} {
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RotateSession(ctx, rotatedThenExpired.ID, 1, t0.Add(30*time.Minute), t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RotateSessionOfEnabledUser(ctx, rotatedPast.ID, "web", 1, t0.Add(30*time.Minute), t0.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, sess := range []storage.Session{rotatedThenExpired, rotatedPast} {
		if got := sweepAt(t, conn, sess.ID); !got.Equal(idle) {
			t.Errorf("sweep_at after a rotation = %v, want %v, as created (a rotation writes no indexed value)", got, idle)
		}
	}

	if n, err := s.DeleteExpiredSessions(ctx, t0.Add(3*time.Hour)); err != nil || n != 2 {
		t.Fatalf("DeleteExpiredSessions at t0+3h = %d, %v; want 2 (rotated then expired, never rotated)", n, err)
	}
	for _, sess := range []storage.Session{rotatedThenExpired, neverRotated} {
		if _, err := s.GetSession(ctx, sess.ID); err == nil {
			t.Errorf("session %s, idle-expired at t0+3h, survived the sweep", sess.ID)
		}
	}
	if got, want := sweepAt(t, conn, rotatedPast.ID), t0.Add(48*time.Hour); !got.Equal(want) {
		t.Errorf("sweep_at of the session rotated past the sweep = %v, want its new idle limit %v", got, want)
	}

	// Rotated again after the sweep moved it: kept at that limit, deleted at the next.
	if _, err := s.RotateSession(ctx, rotatedPast.ID, 2, t0.Add(24*time.Hour), t0.Add(96*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteExpiredSessions(ctx, t0.Add(48*time.Hour)); err != nil || n != 0 {
		t.Fatalf("DeleteExpiredSessions at t0+48h = %d, %v; want 0", n, err)
	}
	if got, want := sweepAt(t, conn, rotatedPast.ID), t0.Add(96*time.Hour); !got.Equal(want) {
		t.Errorf("sweep_at after the second sweep = %v, want the limit of the second rotation %v", got, want)
	}
	if n, err := s.DeleteExpiredSessions(ctx, t0.Add(96*time.Hour)); err != nil || n != 2 {
		t.Fatalf("DeleteExpiredSessions at t0+96h = %d, %v; want 2 (rotated past, live)", n, err)
	}
}

// TestMigrateSweepAt opens a populated schema as version 9 left it and
// checks what migration 10 makes of it: sweep_at the time each session
// becomes due ('infinity' for one with no limit), the sweep index on it,
// room left on the pages for HOT updates; and a session an authex of
// version 9 inserts during a rolling deploy (no sweep_at) is due at once,
// so the next sweep deletes it or sets its time.
func TestMigrateSweepAt(t *testing.T) {
	ctx := t.Context()
	dsn, schema := pgtest.Schema(t)
	old, err := postgres.Open(ctx, dsn, postgres.WithMigrateTo(postgres.Options{Schema: schema, SweepInterval: -1, Logger: quiet}, 9))
	if err != nil {
		t.Fatalf("Open at version 9: %v", err)
	}
	u, id := newUser("mig@example.com", "mig")
	if err := old.CreateUser(ctx, u, id); err != nil {
		t.Fatal(err)
	}
	old.Close()
	conn := schemaConn(t, dsn, schema)
	t0 := time.Now().UTC().Truncate(time.Second)
	insertV9 := func(idle, expires, revoked *time.Time) string {
		t.Helper()
		sid := uuid.NewString()
		if _, err := conn.Exec(ctx, `INSERT INTO sessions (id, user_id, generation, rotated_at, created_at, idle_expires_at, expires_at, revoked_at)
			VALUES ($1, $2, 1, $3, $3, $4, $5, $6)`, sid, u.ID, t0, idle, expires, revoked); err != nil {
			t.Fatal(err)
		}
		return sid
	}
	at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	sessions := []struct {
		idle, expires, revoked *time.Time
		want                   time.Time
		id                     string
	}{
		{idle: at(time.Hour), expires: at(24 * time.Hour), want: t0.Add(time.Hour)},
		{idle: at(48 * time.Hour), expires: at(24 * time.Hour), want: t0.Add(24 * time.Hour)},
		{idle: at(time.Hour), expires: at(24 * time.Hour), revoked: at(time.Minute), want: t0.Add(time.Minute)},
		{want: farFuture}, // no limit: 'infinity'
	}
	for i := range sessions {
		sessions[i].id = insertV9(sessions[i].idle, sessions[i].expires, sessions[i].revoked)
	}

	s, err := postgres.Open(ctx, dsn, postgres.Options{Schema: schema, SweepInterval: -1, Logger: quiet})
	if err != nil {
		t.Fatalf("migrating to version 10: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	for _, sess := range sessions {
		if got := sweepAt(t, conn, sess.id); !got.Equal(sess.want) {
			t.Errorf("sweep_at of a session (idle %v, expires %v, revoked %v) = %v, want %v", sess.idle, sess.expires, sess.revoked, got, sess.want)
		}
	}
	var reloptions []string
	var indexdef string
	if err := conn.QueryRow(ctx, `SELECT c.reloptions, pg_get_indexdef(i.indexrelid) FROM pg_class c
		JOIN pg_index i ON i.indrelid = c.oid JOIN pg_class ic ON ic.oid = i.indexrelid
		WHERE c.oid = 'sessions'::regclass AND ic.relname = 'sessions_sweep_at_idx'`).Scan(&reloptions, &indexdef); err != nil {
		t.Fatal(err)
	}
	if len(reloptions) != 1 || reloptions[0] != "fillfactor=80" || !strings.HasSuffix(indexdef, "(sweep_at)") {
		t.Errorf("sessions: reloptions %v, sweep index %q; want fillfactor=80 and an index on sweep_at", reloptions, indexdef)
	}

	// Version 9 inserts without sweep_at: one due at the sweep, one not.
	lateDue := insertV9(at(2*time.Hour), at(24*time.Hour), nil)
	lateLive := insertV9(at(72*time.Hour), at(96*time.Hour), nil)
	for _, id := range []string{lateDue, lateLive} {
		if got := sweepAt(t, conn, id); !got.Equal(farPast) {
			t.Errorf("sweep_at of a row inserted without it = %v, want -infinity", got)
		}
	}
	// Due at t0+3h: idle-expired, revoked, and lateDue.
	if n, err := s.DeleteExpiredSessions(ctx, t0.Add(3*time.Hour)); err != nil || n != 3 {
		t.Fatalf("DeleteExpiredSessions at t0+3h = %d, %v; want 3", n, err)
	}
	for _, id := range []string{sessions[0].id, sessions[2].id, lateDue} {
		if _, err := s.GetSession(ctx, id); err == nil {
			t.Errorf("session %s, due at t0+3h, survived the sweep", id)
		}
	}
	if got, want := sweepAt(t, conn, lateLive), t0.Add(72*time.Hour); !got.Equal(want) {
		t.Errorf("sweep_at of the live row inserted without it, after the sweep = %v, want %v", got, want)
	}
	if left, err := s.ListSessions(ctx, u.ID); err != nil || len(left) != 3 {
		t.Errorf("sessions after the sweep: %d, %v; want 3 (expiring at t0+24h, no limit, lateLive)", len(left), err)
	}
}
