package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/postgres/pgtest"
)

// The grouped requests of signin.go on the database: rotateGroup and
// writeSignIns with several requests at once must answer each as its own
// statement would, one after the other, and leave the rows so.

// openGrouped returns a store on a schema of its own, closed when tb
// ends, or skips tb when no server is configured.
func openGrouped(tb testing.TB) *Store {
	tb.Helper()
	dsn, schema := pgtest.Schema(tb)
	s, err := Open(tb.Context(), dsn, Options{Schema: schema, SweepInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

const day = 24 * time.Hour

// mkUser creates a user with one identity (google, subject), disabled or
// not.
func mkUser(tb testing.TB, s *Store, t0 time.Time, subject string, disabled bool) (storage.User, storage.Identity) {
	tb.Helper()
	u := storage.User{ID: uuid.NewString(), Email: subject + "@example.com", EmailVerified: true, Roles: []string{},
		Disabled: disabled, CreatedAt: t0, UpdatedAt: t0}
	id := mkIdentity(u, "google", subject, t0)
	if err := s.CreateUser(tb.Context(), u, id); err != nil {
		tb.Fatalf("CreateUser %s: %v", subject, err)
	}
	return u, id
}

func mkIdentity(u storage.User, provider, subject string, t0 time.Time) storage.Identity {
	return storage.Identity{ID: uuid.NewString(), UserID: u.ID, Provider: provider, Issuer: "https://" + provider + ".example",
		Subject: subject, Email: u.Email, EmailVerified: true, CreatedAt: t0, LastLoginAt: t0}
}

// newSess is a live session of u issued to client "web" at t0, at
// generation 1; edit, when not nil, changes it.
func newSess(u storage.User, t0 time.Time, edit func(*storage.Session)) storage.Session {
	sess := storage.Session{ID: uuid.NewString(), UserID: u.ID, Provider: "google", ClientID: "web", Generation: 1,
		RotatedAt: t0, CreatedAt: t0, IdleExpiresAt: t0.Add(14 * day), ExpiresAt: t0.Add(90 * day), UserAgent: "test", IP: "192.0.2.1"}
	if edit != nil {
		edit(&sess)
	}
	return sess
}

func mkSess(tb testing.TB, s *Store, sess storage.Session) {
	tb.Helper()
	if err := s.CreateSession(tb.Context(), sess); err != nil {
		tb.Fatalf("CreateSession: %v", err)
	}
}

// sessionRow is a session's row as the database holds it, every column
// but its id (sweep_at too, which storage.Session lacks), or "" when
// absent.
func sessionRow(tb testing.TB, s *Store, id string) string {
	tb.Helper()
	var row string
	err := s.db.QueryRow(tb.Context(), `SELECT (to_jsonb(s) - 'id')::text FROM sessions s WHERE id = $1`, id).Scan(&row)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		tb.Fatalf("read session %s: %v", id, err)
	}
	return row
}

// rotateGroup with every kind of rotation in one group: each answer is
// what rotateOne (the single statement) gives the same rotation of a
// twin session, and the rows end up alike.
func TestRotateGroup(t *testing.T) {
	s := openGrouped(t)
	ctx := t.Context()
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	at, idle := t0.Add(time.Minute), t0.Add(time.Minute+14*day)
	u, _ := mkUser(t, s, t0, "enabled", false)
	d, _ := mkUser(t, s, t0, "disabled", true)

	cases := []struct {
		name    string
		user    storage.User
		sess    func(*storage.Session)
		req     func(*rotation)
		revoked bool
		missing bool
		want    bool
	}{
		{name: "normal", user: u, want: true},
		{name: "the session's client", user: u, req: func(r *rotation) { r.clientID = "web" }, want: true},
		{name: "a session of no client", user: u, sess: func(s *storage.Session) { s.ClientID = "" }, req: func(r *rotation) { r.clientID = "app" }, want: true},
		{name: "idle clamped to the absolute limit", user: u, sess: func(s *storage.Session) { s.ExpiresAt = t0.Add(time.Hour) }, want: true},
		{name: "a disabled user", user: d},
		{name: "another client", user: u, req: func(r *rotation) { r.clientID = "other" }},
		{name: "a stale generation", user: u, req: func(r *rotation) { r.from = 2 }},
		{name: "a generation ahead", user: u, sess: func(s *storage.Session) { s.Generation = 5 }, req: func(r *rotation) { r.from = 4 }},
		{name: "idle expired", user: u, sess: func(s *storage.Session) { s.IdleExpiresAt = t0.Add(30 * time.Second) }},
		{name: "expired", user: u, sess: func(s *storage.Session) {
			s.IdleExpiresAt, s.ExpiresAt = t0.Add(30*time.Second), t0.Add(30*time.Second)
		}},
		{name: "revoked", user: u, revoked: true},
		{name: "missing", user: u, missing: true},
	}
	// Each case has a session rotated in the group and a twin rotated
	// alone; the twins differ only in id.
	var items []*groupItem[rotationCall]
	alone := make([]rotationCall, len(cases))
	for i, tc := range cases {
		sess, twin := newSess(tc.user, t0, tc.sess), newSess(tc.user, t0, tc.sess)
		if !tc.missing {
			for _, x := range []storage.Session{sess, twin} {
				mkSess(t, s, x)
				if tc.revoked {
					if err := s.RevokeSession(ctx, x.ID, t0.Add(time.Second), "test"); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		r := rotationCall{rotation: rotation{id: sess.ID, from: sess.Generation, at: at, idleExpiresAt: idle}}
		if tc.req != nil {
			tc.req(&r.rotation)
		}
		items = append(items, &groupItem[rotationCall]{ctx: ctx, req: r})
		r.id = twin.ID
		alone[i] = r
	}
	// One session twice in the group, from one generation (first and
	// last, around the others), and its twin twice alone.
	twice, twiceTwin := newSess(u, t0, nil), newSess(u, t0, nil)
	mkSess(t, s, twice)
	mkSess(t, s, twiceTwin)
	r := rotationCall{rotation: rotation{id: twice.ID, from: 1, at: at, idleExpiresAt: idle}}
	items = append([]*groupItem[rotationCall]{{ctx: ctx, req: r}}, append(items, &groupItem[rotationCall]{ctx: ctx, req: r})...)
	r.id = twiceTwin.ID
	twiceAlone := []rotationCall{r, r}
	// A session no rotation names.
	bystander := newSess(u, t0, nil)
	mkSess(t, s, bystander)
	bystanderRow := sessionRow(t, s, bystander.ID)

	rotateGroup(ctx, s, items)
	for i := range alone {
		if err := rotateOne(ctx, s, &alone[i]); err != nil {
			t.Fatalf("rotateOne %s: %v", cases[i].name, err)
		}
	}
	for i := range twiceAlone {
		if err := rotateOne(ctx, s, &twiceAlone[i]); err != nil {
			t.Fatalf("rotateOne twice: %v", err)
		}
	}

	for _, it := range items {
		if it.err != nil {
			t.Fatalf("rotateGroup answered %q with %v", it.req.id, it.err)
		}
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, want := items[1+i].req, alone[i]
			if got.rotated != tc.want || want.rotated != tc.want {
				t.Fatalf("rotated in the group %v, alone %v; want %v", got.rotated, want.rotated, tc.want)
			}
			if got.rotated {
				sess, created := got.sess, newSess(tc.user, t0, tc.sess)
				wantIdle := idle
				if created.ExpiresAt.Before(idle) {
					wantIdle = created.ExpiresAt
				}
				if sess.ID != got.id || sess.Generation != got.from+1 || !sess.RotatedAt.Equal(at) ||
					!sess.IdleExpiresAt.Equal(wantIdle) || !sess.ExpiresAt.Equal(created.ExpiresAt) {
					t.Errorf("rotated session %+v; want generation %d, rotated at %v, idle until %v", sess, got.from+1, at, wantIdle)
				}
				sess.ID = want.sess.ID
				if sess != want.sess {
					t.Errorf("the group's rotated session %+v, alone %+v", sess, want.sess)
				}
				if got.user.ID != tc.user.ID || got.user.Email != tc.user.Email || got.user.Disabled || !got.user.CreatedAt.Equal(want.user.CreatedAt) {
					t.Errorf("the group's user %+v, alone %+v", got.user, want.user)
				}
			}
			if tc.missing {
				if row := sessionRow(t, s, got.id); row != "" {
					t.Errorf("a rotation of a missing session made one: %s", row)
				}
				return
			}
			if g, a := sessionRow(t, s, got.id), sessionRow(t, s, want.id); g != a {
				t.Errorf("rows differ:\n group: %s\n alone: %s", g, a)
			}
			wantGen := newSess(tc.user, t0, tc.sess).Generation
			if tc.want {
				wantGen++
			}
			if stored, err := s.GetSession(ctx, got.id); err != nil || stored.Generation != wantGen {
				t.Errorf("stored generation %d, %v; want %d", stored.Generation, err, wantGen)
			}
		})
	}
	t.Run("one session twice", func(t *testing.T) {
		first, last := items[0].req, items[len(items)-1].req
		if first.rotated == last.rotated {
			t.Fatalf("of two rotations of one session from one generation, rotated: %v and %v; want exactly one", first.rotated, last.rotated)
		}
		if !twiceAlone[0].rotated || twiceAlone[1].rotated {
			t.Fatalf("alone, one after the other: rotated %v then %v", twiceAlone[0].rotated, twiceAlone[1].rotated)
		}
		won := first
		if last.rotated {
			won = last
		}
		if won.sess.Generation != 2 {
			t.Errorf("the winner saw generation %d, want 2", won.sess.Generation)
		}
		if stored, err := s.GetSession(ctx, twice.ID); err != nil || stored.Generation != 2 {
			t.Errorf("stored generation %d, %v; want 2 (one rotation)", stored.Generation, err)
		}
		if g, a := sessionRow(t, s, twice.ID), sessionRow(t, s, twiceTwin.ID); g != a {
			t.Errorf("rows differ:\n group: %s\n alone: %s", g, a)
		}
	})
	if row := sessionRow(t, s, bystander.ID); row != bystanderRow {
		t.Errorf("a session no rotation named changed:\n before: %s\n after:  %s", bystanderRow, row)
	}
}

// A group whose statement fails answers every rotation with the error,
// none rotated, and writes nothing.
func TestRotateGroupFails(t *testing.T) {
	s := openGrouped(t)
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	u, _ := mkUser(t, s, t0, "u", false)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var items []*groupItem[rotationCall]
	for range 3 {
		sess := newSess(u, t0, nil)
		mkSess(t, s, sess)
		items = append(items, &groupItem[rotationCall]{ctx: ctx, req: rotationCall{rotation: rotation{id: sess.ID, from: 1, at: t0.Add(time.Minute), idleExpiresAt: t0.Add(day)}}})
	}
	rotateGroup(ctx, s, items)
	for _, it := range items {
		if !errors.Is(it.err, context.Canceled) || it.req.rotated {
			t.Errorf("rotation %s in a failed group: rotated %v, err %v; want context.Canceled", it.req.id, it.req.rotated, it.err)
		}
		if stored, err := s.GetSession(t.Context(), it.req.id); err != nil || stored.Generation != 1 {
			t.Errorf("stored generation %d, %v; want 1", stored.Generation, err)
		}
	}
}

// signInWorld is what the sign-in tests write to: user a with two
// identities, one live session and one revoked; b and c with one
// identity each.
type signInWorld struct {
	t0             time.Time
	tag            string
	a, b, c        storage.User
	a1, a2, b1, c1 storage.Identity
	live           string // a's live session
}

func newSignInWorld(tb testing.TB, s *Store, t0 time.Time, tag string) signInWorld {
	tb.Helper()
	w := signInWorld{t0: t0, tag: tag}
	w.a, w.a1 = mkUser(tb, s, t0, "a-"+tag, false)
	// Its issuer sorts after a1's: a group runs its sign-ins in identity
	// order (inIdentityOrder), so the order below is the group's too.
	w.a2 = mkIdentity(w.a, "workplace", "a2-"+tag, t0.Add(time.Second))
	if err := s.AddIdentity(tb.Context(), w.a2); err != nil {
		tb.Fatal(err)
	}
	w.b, w.b1 = mkUser(tb, s, t0, "b-"+tag, false)
	w.c, w.c1 = mkUser(tb, s, t0, "c-"+tag, false)
	live, revoked := newSess(w.a, t0, nil), newSess(w.a, t0, nil)
	mkSess(tb, s, live)
	mkSess(tb, s, revoked)
	if err := s.RevokeSession(tb.Context(), revoked.ID, t0, "test"); err != nil {
		tb.Fatal(err)
	}
	w.live = live.ID
	return w
}

// signIn is a sign-in of u through ident at t0+1m, counting live
// sessions, with a credential key (none when key is "") and one audit
// event.
func (w signInWorld) signIn(u storage.User, ident storage.Identity, key string) storage.SignIn {
	now := w.t0.Add(time.Minute)
	sess := newSess(u, now, nil)
	in := storage.SignIn{Session: sess, Issuer: ident.Issuer, Subject: ident.Subject, Now: now, CountLive: true,
		Audit: []storage.AuditEvent{{ID: uuid.NewString(), Time: now, Type: "session.started", UserID: u.ID, SessionID: sess.ID, Provider: ident.Provider}}}
	if key != "" {
		in.CredentialKey, in.CredentialExpiresAt = key+"-"+w.tag, now.Add(time.Hour)
	}
	return in
}

// signIns are five sign-ins that depend on each other when written in
// order: two of a's (the second counts the first's session, and sees the
// first's touch), b's with the first one's credential (a replay), c's
// session through a's identity (not c's), and b's without a credential.
func (w signInWorld) signIns() []storage.SignIn {
	first := w.signIn(w.a, w.a1, "k1")
	first.TouchAt = first.Now
	replay := w.signIn(w.b, w.b1, "k1")
	replay.TouchAt = replay.Now
	return []storage.SignIn{
		first,
		w.signIn(w.a, w.a2, "k2"),
		replay,
		w.signIn(w.c, w.a1, "k4"),
		w.signIn(w.b, w.b1, ""),
	}
}

// signInWant is what writeSignIns answers for each of signIns, written
// together or one after the other.
var signInWant = []struct {
	name             string
	matched, written bool
	live             int // before WriteSignIn adds the new session
	identities       int
}{
	{"a's first", true, true, 1, 2},
	{"a's second", true, true, 2, 2},
	{"b's replay of a's credential", true, false, 0, 1},
	{"c's through a's identity", false, false, 0, 0},
	{"b's without a credential", true, true, 0, 1},
}

func checkSignIns(t *testing.T, s *Store, w signInWorld, ins []storage.SignIn, ws []*signInWrite) {
	t.Helper()
	ctx := t.Context()
	for i, want := range signInWant {
		got, in := ws[i], ins[i]
		if got.matched != want.matched || got.written != want.written || len(got.out.Identities) != want.identities ||
			(got.matched && got.out.LiveSessions != want.live) {
			t.Errorf("%s: matched %v, written %v, %d live, %d identities; want %v, %v, %d, %d",
				want.name, got.matched, got.written, got.out.LiveSessions, len(got.out.Identities), want.matched, want.written, want.live, want.identities)
		}
		_, err := s.GetSession(ctx, in.Session.ID)
		if want.written && err != nil {
			t.Errorf("%s: its session was not written: %v", want.name, err)
		}
		if !want.written && !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: wrote its session (%v)", want.name, err)
		}
		evs, err := s.ListAudit(ctx, storage.AuditFilter{UserID: in.Session.UserID})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range evs {
			found = found || e.ID == in.Audit[0].ID
		}
		if found != want.written {
			t.Errorf("%s: its audit event written %v, want %v", want.name, found, want.written)
		}
	}
	// The second sign-in lists a's identity as the first one's touch left it.
	touch := ins[0].TouchAt
	for _, id := range ws[1].out.Identities {
		if id.ID == w.a1.ID && !id.LastLoginAt.Equal(touch) {
			t.Errorf("a's second sign-in lists the touched identity with LastLoginAt %v, want %v", id.LastLoginAt, touch)
		}
	}
	if id, err := s.GetIdentity(ctx, w.a1.Issuer, w.a1.Subject); err != nil || !id.LastLoginAt.Equal(touch) {
		t.Errorf("a's touched identity: %+v, %v; want LastLoginAt %v", id, err, touch)
	}
	if id, err := s.GetIdentity(ctx, w.b1.Issuer, w.b1.Subject); err != nil || !id.LastLoginAt.Equal(w.t0) {
		t.Errorf("the replay touched b's identity: %+v, %v", id, err)
	}
	// k1 and k2 are recorded; k4, of the refused sign-in, is not.
	now := w.t0.Add(2 * time.Minute)
	for key, recorded := range map[string]bool{ins[0].CredentialKey: true, ins[1].CredentialKey: true, ins[3].CredentialKey: false} {
		err := s.RecordCredential(ctx, key, now.Add(time.Hour), now)
		if recorded && !errors.Is(err, storage.ErrConflict) || !recorded && err != nil {
			t.Errorf("credential %s: RecordCredential = %v; recorded by the sign-ins: %v", key, err, recorded)
		}
	}
	if n := countLive(t, s, w.a.ID, now); n != 3 {
		t.Errorf("a has %d live sessions, want 3", n)
	}
}

func countLive(tb testing.TB, s *Store, userID string, at time.Time) int {
	tb.Helper()
	ss, err := s.ListSessions(tb.Context(), userID)
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, x := range ss {
		if !x.Revoked() && !x.Expired(at) {
			n++
		}
	}
	return n
}

func newSignInWrites(tb testing.TB, ins []storage.SignIn) []*signInWrite {
	tb.Helper()
	ws := make([]*signInWrite, len(ins))
	for i, in := range ins {
		w, err := newSignInWrite(in)
		if err != nil {
			tb.Fatal(err)
		}
		ws[i] = &w
	}
	return ws
}

// A group runs its sign-ins in identity order whatever order they came
// in: a's through a2 came first, but a1's issuer sorts first, so a1's
// counts before a2's and a2's sees its session.
func TestWriteSignInsIdentityOrder(t *testing.T) {
	s := openGrouped(t)
	w := newSignInWorld(t, s, time.Now().UTC().Truncate(time.Microsecond), "order")
	ws := newSignInWrites(t, []storage.SignIn{w.signIn(w.a, w.a2, "o2"), w.signIn(w.a, w.a1, "o1")})
	if err := s.writeSignIns(t.Context(), ws); err != nil {
		t.Fatalf("writeSignIns: %v", err)
	}
	viaA2, viaA1 := ws[0], ws[1]
	if !viaA1.written || !viaA2.written || viaA1.out.LiveSessions != 1 || viaA2.out.LiveSessions != 2 {
		t.Fatalf("through a1: written %v, %d live; through a2: written %v, %d live; want both written, 1 then 2 (a1's first)",
			viaA1.written, viaA1.out.LiveSessions, viaA2.written, viaA2.out.LiveSessions)
	}
}

// writeSignIns of several sign-ins in one batch answers each as they
// would be answered one after the other, and writes what they would.
func TestWriteSignInsTogether(t *testing.T) {
	s := openGrouped(t)
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	t.Run("together", func(t *testing.T) {
		w := newSignInWorld(t, s, t0, "together")
		ins := w.signIns()
		ws := newSignInWrites(t, ins)
		if err := s.writeSignIns(t.Context(), ws); err != nil {
			t.Fatalf("writeSignIns: %v", err)
		}
		checkSignIns(t, s, w, ins, ws)
	})
	t.Run("one after the other", func(t *testing.T) {
		w := newSignInWorld(t, s, t0, "alone")
		ins := w.signIns()
		ws := newSignInWrites(t, ins)
		for _, x := range ws {
			if err := s.writeSignIns(t.Context(), []*signInWrite{x}); err != nil {
				t.Fatalf("writeSignIns: %v", err)
			}
		}
		checkSignIns(t, s, w, ins, ws)
	})
}

// When a group's batch fails for one sign-in's sake (its session id is
// taken), signInGroup writes each of the others alone, and that one
// alone fails.
func TestSignInGroupRetriesAlone(t *testing.T) {
	s := openGrouped(t)
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	w := newSignInWorld(t, s, t0, "retry")
	good1, bad, good2 := w.signIn(w.a, w.a1, "r1"), w.signIn(w.a, w.a2, "r2"), w.signIn(w.b, w.b1, "r3")
	bad.Session.ID = w.live // taken
	ins := []storage.SignIn{good1, bad, good2}
	var items []*groupItem[signInWrite]
	for _, in := range ins {
		x, err := newSignInWrite(in)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, &groupItem[signInWrite]{ctx: t.Context(), req: x})
	}
	s.signInGroup(t.Context(), items)
	for i, it := range items {
		if i == 1 {
			if !errors.Is(it.err, storage.ErrConflict) {
				t.Errorf("the sign-in with a taken session id: %v, want ErrConflict", it.err)
			}
			continue
		}
		if it.err != nil || !it.req.matched || !it.req.written {
			t.Errorf("sign-in %d: err %v, matched %v, written %v", i, it.err, it.req.matched, it.req.written)
		}
		if _, err := s.GetSession(t.Context(), ins[i].Session.ID); err != nil {
			t.Errorf("sign-in %d's session: %v", i, err)
		}
	}
	if items[0].req.out.LiveSessions != 1 || items[2].req.out.LiveSessions != 0 {
		t.Errorf("live counts %d and %d, want 1 and 0", items[0].req.out.LiveSessions, items[2].req.out.LiveSessions)
	}
	now := t0.Add(2 * time.Minute)
	if err := s.RecordCredential(t.Context(), bad.CredentialKey, now.Add(time.Hour), now); err != nil {
		t.Errorf("the failed sign-in recorded its credential: %v", err)
	}
	evs, err := s.ListAudit(t.Context(), storage.AuditFilter{UserID: w.a.ID})
	if err != nil || len(evs) != 1 || evs[0].ID != good1.Audit[0].ID {
		t.Errorf("a's audit events %+v, %v; want only the first sign-in's", evs, err)
	}
}

// Through the public API, 64 goroutines rotate sessions (four to a
// session, racing) and sign in (eight to a user, all racing for one
// credential once); every answer agrees with the rows left.
func TestGroupedConcurrent(t *testing.T) {
	s := openGrouped(t)
	ctx := t.Context()
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	const goroutines, ops, sessions, users = 64, 16, 8, 4
	owner, _ := mkUser(t, s, t0, "owner", false)
	var sessIDs [sessions]string
	for i := range sessIDs {
		sess := newSess(owner, t0, nil)
		mkSess(t, s, sess)
		sessIDs[i] = sess.ID
	}
	var us [users]storage.User
	var ids [users]storage.Identity
	for i := range us {
		us[i], ids[i] = mkUser(t, s, t0, fmt.Sprintf("signer-%d", i), false)
	}

	var mu sync.Mutex
	var wins [sessions]int
	var signedIn, refused [users][]string
	var mostLive [users]int
	sharedWins := 0
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			<-start
			if g%2 == 0 {
				k := g / 2 % sessions
				for range ops {
					cur, err := s.GetSession(ctx, sessIDs[k])
					if err != nil {
						t.Errorf("GetSession: %v", err)
						return
					}
					at := time.Now().UTC()
					got, u, err := s.RotateSessionOfEnabledUser(ctx, sessIDs[k], "web", cur.Generation, at, at.Add(time.Hour))
					switch {
					case err == nil:
						if got.Generation != cur.Generation+1 || got.ID != sessIDs[k] || u.ID != owner.ID {
							t.Errorf("rotation from %d: %+v of %s", cur.Generation, got, u.ID)
						}
						mu.Lock()
						wins[k]++
						mu.Unlock()
					case !errors.Is(err, storage.ErrStale):
						t.Errorf("rotation: %v", err)
					}
				}
				return
			}
			k := g / 2 % users
			for j := range ops {
				now := time.Now().UTC().Truncate(time.Microsecond)
				sess := newSess(us[k], now, nil)
				in := storage.SignIn{Session: sess, Issuer: ids[k].Issuer, Subject: ids[k].Subject, Now: now, CountLive: true,
					CredentialKey: fmt.Sprintf("key-%d-%d", g, j), CredentialExpiresAt: now.Add(time.Hour),
					Audit: []storage.AuditEvent{{ID: uuid.NewString(), Time: now, Type: "session.started", UserID: us[k].ID, SessionID: sess.ID}}}
				if j == 0 {
					in.CredentialKey = "shared"
				}
				if j%4 == 1 {
					in.TouchAt = now
				}
				out, err := s.WriteSignIn(ctx, in)
				mu.Lock()
				switch {
				case err == nil:
					signedIn[k] = append(signedIn[k], sess.ID)
					mostLive[k] = max(mostLive[k], out.LiveSessions)
					if j == 0 {
						sharedWins++
					}
				case errors.Is(err, storage.ErrConflict):
					refused[k] = append(refused[k], sess.ID)
					if j != 0 {
						t.Errorf("sign-in with a credential of its own: %v", err)
					}
				default:
					t.Errorf("sign-in: %v", err)
				}
				mu.Unlock()
			}
		})
	}
	deadlocks := func() (n int64) {
		if err := s.db.QueryRow(ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := deadlocks()
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d goroutines x %d calls in %v, %d deadlocks", goroutines, ops, time.Since(began), deadlocks()-before)

	for k, id := range sessIDs {
		if got, err := s.GetSession(ctx, id); err != nil || got.Generation != uint64(1+wins[k]) {
			t.Errorf("session %d at generation %d, %v; %d rotations succeeded", k, got.Generation, err, wins[k])
		}
	}
	if sharedWins != 1 {
		t.Errorf("%d sign-ins with one credential succeeded, want 1", sharedWins)
	}
	end := time.Now().UTC()
	for k := range us {
		for _, id := range signedIn[k] {
			if got, err := s.GetSession(ctx, id); err != nil || got.UserID != us[k].ID {
				t.Errorf("a successful sign-in's session: %+v, %v", got, err)
			}
		}
		for _, id := range refused[k] {
			if _, err := s.GetSession(ctx, id); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("a refused sign-in's session: %v, want ErrNotFound", err)
			}
		}
		n := countLive(t, s, us[k].ID, end)
		if n != len(signedIn[k]) || mostLive[k] != n {
			t.Errorf("user %d: %d live sessions, %d sign-ins succeeded, the most any counted %d; want all equal", k, n, len(signedIn[k]), mostLive[k])
		}
		if evs, err := s.ListAudit(ctx, storage.AuditFilter{UserID: us[k].ID}); err != nil || len(evs) != len(signedIn[k]) {
			t.Errorf("user %d: %d audit events, %v; want %d", k, len(evs), err, len(signedIn[k]))
		}
	}
}

// A group of rotations whose callers' deadlines all pass while it waits
// on the database fails as a lone rotation past its deadline does: with
// an error exchange reports as the store unavailable (503), not as an
// internal error (500).
func TestRotateGroupPastDeadline(t *testing.T) {
	s := openGrouped(t)
	ctx := t.Context()
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	u, _ := mkUser(t, s, t0, "u", false)
	sess := newSess(u, t0, nil)
	mkSess(t, s, sess)
	// Another transaction holds the session's row, so every rotation
	// waits until its context ends.
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE`, sess.ID); err != nil {
		t.Fatal(err)
	}

	const lone, grouped = groupsRunning, 3
	errs := make([]error, lone+grouped)
	var wg sync.WaitGroup
	rotate := func(i int, timeout time.Duration) {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			_, _, errs[i] = s.RotateSessionOfEnabledUser(ctx, sess.ID, "", 1, t0.Add(time.Minute), t0.Add(day))
		})
	}
	for i := range lone {
		rotate(i, 300*time.Millisecond)
	}
	waitRunning(t, s.rotations, lone)
	for i := range grouped {
		rotate(lone+i, 600*time.Millisecond)
		waitQueued(t, s.rotations, i+1)
	}
	wg.Wait()
	for i, err := range errs {
		what := "alone"
		if i >= lone {
			what = "in a group"
		}
		// exchange's storeError: these two are KindStoreUnavailable.
		if !errors.Is(err, storage.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("rotation %d (%s) past its deadline: %v; want ErrUnavailable or context.DeadlineExceeded", i, what, err)
		}
	}
}

// waitRunning waits until n groups run in g.
func waitRunning[T any](tb testing.TB, g *group[T], n int) {
	tb.Helper()
	waitUntil(tb, "groups running", n, 100*time.Microsecond, func() int {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.running
	})
}

// holdRows begins a transaction on its own connection that runs lockSQL
// (which locks rows), and returns its backend's pid and a release that
// ends it. release also runs when tb ends.
func holdRows(tb testing.TB, s *Store, lockSQL string, args ...any) (pid int32, release func()) {
	tb.Helper()
	ctx := tb.Context()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	release = sync.OnceFunc(func() { tx.Rollback(context.Background()) })
	tb.Cleanup(release)
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		tb.Fatal(err)
	}
	if _, err := tx.Exec(ctx, lockSQL, args...); err != nil {
		tb.Fatal(err)
	}
	return pid, release
}

// waitBlockedBy waits until n backends wait for pid's transaction, for
// its locks or, in turn, for another waiter's (of two that wait for one
// row, the second waits for the first).
func waitBlockedBy(tb testing.TB, s *Store, pid int32, n int) {
	tb.Helper()
	waitUntil(tb, "backends waiting for the lock holder", n, time.Millisecond, func() int {
		var blocked int
		err := s.pool.QueryRow(tb.Context(), `WITH RECURSIVE waits (pid) AS (
				SELECT $1::int
				UNION
				SELECT a.pid FROM pg_stat_activity a, waits w WHERE w.pid = ANY(pg_blocking_pids(a.pid))
			) SELECT count(*) - 1 FROM waits`, pid).Scan(&blocked)
		if err != nil {
			tb.Fatal(err)
		}
		return blocked
	})
}

// deadlockTimeout is the server's deadlock_timeout: how long a deadlock
// stalls its transactions before the server breaks it.
func deadlockTimeout(tb testing.TB, s *Store) time.Duration {
	tb.Helper()
	var ms float64
	if err := s.pool.QueryRow(tb.Context(), `SELECT setting::float8 FROM pg_settings WHERE name = 'deadlock_timeout'`).Scan(&ms); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// Two groups of rotations of the same two sessions, named in opposite
// orders, that start together (here: both waiting for a transaction that
// held both rows) must not deadlock: alone, each rotation is a one-row
// UPDATE, which never waits for a row while holding another. A deadlock
// is broken, and the group retried, only after deadlock_timeout. Each
// group is full (groupMaxSize, the others sessions of their own), as
// groups are under load: then the plan joins the sessions to the
// rotations in the rotations' order, and locks them so.
func TestRotateGroupsNeverDeadlock(t *testing.T) {
	s := openGrouped(t)
	ctx := t.Context()
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	u, _ := mkUser(t, s, t0, "u", false)
	a, b := newSess(u, t0, nil), newSess(u, t0, nil)
	mkSess(t, s, a)
	mkSess(t, s, b)
	stall := deadlockTimeout(t, s)

	item := func(id string) *groupItem[rotationCall] {
		return &groupItem[rotationCall]{ctx: ctx, req: rotationCall{rotation: rotation{id: id, from: 1, at: t0.Add(time.Minute), idleExpiresAt: t0.Add(day)}}}
	}
	group := func(first, last string) []*groupItem[rotationCall] {
		g := []*groupItem[rotationCall]{item(first)}
		for range groupMaxSize - 2 {
			other := newSess(u, t0, nil)
			mkSess(t, s, other)
			g = append(g, item(other.ID))
		}
		return append(g, item(last))
	}
	groups := [][]*groupItem[rotationCall]{group(a.ID, b.ID), group(b.ID, a.ID)}
	pid, release := holdRows(t, s, `SELECT 1 FROM sessions WHERE id IN ($1, $2) FOR UPDATE`, a.ID, b.ID)
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Go(func() { rotateGroup(ctx, s, g) })
	}
	waitBlockedBy(t, s, pid, 2)
	began := time.Now()
	release()
	wg.Wait()
	took := time.Since(began)

	won := map[string]int{}
	for _, g := range groups {
		for _, it := range g {
			if it.err != nil {
				t.Fatalf("rotation of %s: %v", it.req.id, it.err)
			}
			if it.req.rotated {
				won[it.req.id]++
			}
		}
	}
	if won[a.ID] != 1 || won[b.ID] != 1 || len(won) != 2*groupMaxSize-2 {
		t.Errorf("rotations that won: %d of a's, %d of b's, %d sessions in all; want one each, %d", won[a.ID], won[b.ID], len(won), 2*groupMaxSize-2)
	}
	if took >= stall {
		t.Errorf("the two groups took %v once the rows were free, at least deadlock_timeout (%v): they deadlocked", took, stall)
	}
}

// Two batches of sign-ins that touch the same two identities, in
// opposite orders, and start together must not deadlock either: alone,
// each sign-in locks one identity.
func TestSignInGroupsNeverDeadlock(t *testing.T) {
	s := openGrouped(t)
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	w := newSignInWorld(t, s, t0, "deadlock")

	pid, release := holdRows(t, s, `SELECT 1 FROM identities WHERE id IN ($1, $2) FOR UPDATE`, w.a1.ID, w.b1.ID)
	touching := func(u storage.User, ident storage.Identity) storage.SignIn {
		in := w.signIn(u, ident, "")
		in.CountLive, in.TouchAt = false, in.Now // the default: no session cap
		return in
	}
	batches := [][]*signInWrite{
		newSignInWrites(t, []storage.SignIn{touching(w.a, w.a1), touching(w.b, w.b1)}),
		newSignInWrites(t, []storage.SignIn{touching(w.b, w.b1), touching(w.a, w.a1)}),
	}
	raceSignInBatches(t, s, pid, release, batches)
}

// One identity's plain sign-in (FOR SHARE) and touching one (FOR NO KEY
// UPDATE) in each of two groups: a group that took the weaker lock first
// would wait for the stronger one while the other group held its weaker
// one, and the two would deadlock. touchFirst orders the touch first.
func TestSignInGroupsNeverDeadlockShareThenTouch(t *testing.T) {
	s := openGrouped(t)
	w := newSignInWorld(t, s, time.Now().UTC().Truncate(time.Microsecond), "upgrade")
	pid, release := holdRows(t, s, `SELECT 1 FROM identities WHERE id = $1 FOR UPDATE`, w.a1.ID)
	signIn := func(touch bool) storage.SignIn {
		in := w.signIn(w.a, w.a1, "")
		in.CountLive = false
		if touch {
			in.TouchAt = in.Now
		}
		return in
	}
	batches := [][]*signInWrite{
		newSignInWrites(t, []storage.SignIn{signIn(false), signIn(true)}),
		newSignInWrites(t, []storage.SignIn{signIn(false), signIn(true)}),
	}
	raceSignInBatches(t, s, pid, release, batches)
}

// The grouped reads answer each key as the single statement does: found
// or not, duplicates each answered, nothing mixed up.
func TestGroupedReads(t *testing.T) {
	s := openGrouped(t)
	ctx := t.Context()
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	w := newSignInWorld(t, s, t0, "reads")
	keys := [][2]string{{w.a1.Issuer, w.a1.Subject}, {w.b1.Issuer, w.b1.Subject}, {w.a1.Issuer, "nobody"},
		{w.a2.Issuer, w.a2.Subject}, {w.a1.Issuer, w.a1.Subject}, {"https://elsewhere.example", w.a1.Subject}}
	idItems := make([]*groupItem[answer[[2]string, identityUser]], len(keys))
	for i, k := range keys {
		idItems[i] = &groupItem[answer[[2]string, identityUser]]{ctx: ctx, req: answer[[2]string, identityUser]{key: k}}
	}
	if err := identityUserLookup.runMany(ctx, s, idItems); err != nil {
		t.Fatalf("identities: %v", err)
	}
	for i, k := range keys {
		alone := answer[[2]string, identityUser]{key: k}
		if err := identityUserLookup.runOne(ctx, s, &alone); err != nil {
			t.Fatal(err)
		}
		got := idItems[i].req
		if got.found != alone.found || got.val.ident != alone.val.ident || got.val.user.ID != alone.val.user.ID ||
			got.val.user.Email != alone.val.user.Email || !got.val.user.CreatedAt.Equal(alone.val.user.CreatedAt) {
			t.Errorf("identity %v: grouped %+v, alone %+v", k, got, alone)
		}
	}
	if !idItems[0].req.found || idItems[2].req.found || idItems[5].req.found || idItems[3].req.val.user.ID != w.a.ID {
		t.Errorf("identities found: %v %v %v, a2's user %q", idItems[0].req.found, idItems[2].req.found, idItems[5].req.found, idItems[3].req.val.user.ID)
	}

	live, other := newSess(w.a, t0, nil), newSess(w.b, t0, nil)
	mkSess(t, s, live)
	mkSess(t, s, other)
	ids := []string{live.ID, "missing", other.ID, live.ID}
	sessItems := make([]*groupItem[answer[string, sessionUser]], len(ids))
	for i, id := range ids {
		sessItems[i] = &groupItem[answer[string, sessionUser]]{ctx: ctx, req: answer[string, sessionUser]{key: id}}
	}
	if err := sessionUserLookup.runMany(ctx, s, sessItems); err != nil {
		t.Fatalf("sessions: %v", err)
	}
	for i, id := range ids {
		alone := answer[string, sessionUser]{key: id}
		if err := sessionUserLookup.runOne(ctx, s, &alone); err != nil {
			t.Fatal(err)
		}
		got := sessItems[i].req
		if got.found != alone.found || got.val.sess != alone.val.sess || got.val.user.ID != alone.val.user.ID {
			t.Errorf("session %q: grouped %+v, alone %+v", id, got, alone)
		}
	}
	if !sessItems[0].req.found || sessItems[1].req.found || sessItems[2].req.val.user.ID != w.b.ID {
		t.Errorf("sessions found: %v %v, other's user %q", sessItems[0].req.found, sessItems[1].req.found, sessItems[2].req.val.user.ID)
	}
}

// raceSignInBatches writes batches at once while the rows the holder
// (pid) locks keep them waiting, frees the rows, and fails unless every
// sign-in is written well within deadlock_timeout (two batches that
// deadlocked would wait for the detector).
func raceSignInBatches(t *testing.T, s *Store, pid int32, release func(), batches [][]*signInWrite) {
	t.Helper()
	stall := deadlockTimeout(t, s)
	errs := make([]error, len(batches))
	var wg sync.WaitGroup
	for i, ws := range batches {
		wg.Go(func() { errs[i] = s.writeSignIns(t.Context(), ws) })
	}
	waitBlockedBy(t, s, pid, len(batches))
	began := time.Now()
	release()
	wg.Wait()
	took := time.Since(began)
	for i, ws := range batches {
		if errs[i] != nil {
			t.Fatalf("batch %d: %v", i, errs[i])
		}
		for _, x := range ws {
			if !x.matched || !x.written {
				t.Errorf("batch %d: a sign-in matched %v, written %v", i, x.matched, x.written)
			}
		}
	}
	if took >= stall {
		t.Errorf("the batches took %v once the rows were free, at least deadlock_timeout (%v): they deadlocked", took, stall)
	}
}

// rotationCall is a rotation with its answer, as the tests read them.
type rotationCall struct {
	rotation
	rotated bool
	sess    storage.Session
	user    storage.User
}

// rotateGroup runs calls as one group of s.rotations would, without its
// fallback: one rotateOfEnabledUserSQL for one, one rotateGroupSQL for
// several (a failure of that statement is every call's error, so a broken
// grouped statement cannot pass for the single one).
func rotateGroup(ctx context.Context, s *Store, calls []*groupItem[rotationCall]) {
	items := make([]*groupItem[answer[rotation, sessionUser]], len(calls))
	for i, c := range calls {
		items[i] = &groupItem[answer[rotation, sessionUser]]{ctx: c.ctx, req: answer[rotation, sessionUser]{key: c.req.rotation}}
	}
	if len(items) == 1 {
		items[0].err = rotationLookup.runOne(ctx, s, &items[0].req)
	} else if err := rotationLookup.runMany(ctx, s, items); err != nil {
		for _, it := range items {
			it.err = err
		}
	}
	for i, c := range calls {
		a := items[i].req
		c.req.rotated, c.req.sess, c.req.user, c.err = a.found, a.val.sess, a.val.user, items[i].err
	}
}

// rotateOne runs c alone: rotateOfEnabledUserSQL.
func rotateOne(ctx context.Context, s *Store, c *rotationCall) error {
	a := answer[rotation, sessionUser]{key: c.rotation}
	err := rotationLookup.runOne(ctx, s, &a)
	c.rotated, c.sess, c.user = a.found, a.val.sess, a.val.user
	return err
}
