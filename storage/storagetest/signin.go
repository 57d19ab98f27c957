package storagetest

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/authex/authex/storage"
)

// The hot paths' capabilities (storage/signin.go): both backends offer
// them, and each must do exactly what the Store methods it folds do.

// signInFor is a sign-in of ident (of u) at t0 with a credential key.
func signInFor(u storage.User, ident storage.Identity, key string, t0 time.Time) storage.SignIn {
	return storage.SignIn{
		Session: newSession(u, t0), Issuer: ident.Issuer, Subject: ident.Subject,
		CredentialKey: key, CredentialExpiresAt: t0.Add(time.Hour), Now: t0,
		Audit: []storage.AuditEvent{{ID: uuid.NewString(), Time: t0, Type: "session.started", UserID: u.ID, Provider: ident.Provider}},
	}
}

// testWriteSignIn: one write creates the session, records the credential,
// touches the identity, appends the audit events, counts the live
// sessions and lists the identities.
func testWriteSignIn(t *testing.T, s storage.Store) {
	w := mustOffer[storage.SignInWriter](t, s)
	ctx, t0 := t.Context(), epoch()
	u, ident := mustCreateAda(t, s, t0)
	second := newIdentity(u, "corp", "c-1", t0.Add(time.Second))
	mustAddIdentity(t, s, second)
	// One live session and one revoked: the count sees the live one.
	mustCreateSession(t, s, newSession(u, t0))
	revoked := newSession(u, t0)
	mustCreateSession(t, s, revoked)
	if err := s.RevokeSession(ctx, revoked.ID, t0, "test"); err != nil {
		t.Fatal(err)
	}

	in := signInFor(u, ident, "iss jti-1", t0.Add(time.Minute))
	in.TouchAt, in.CountLive = t0.Add(time.Minute), true
	out, err := w.WriteSignIn(ctx, in)
	if err != nil {
		t.Fatalf("WriteSignIn: %v", err)
	}
	if out.LiveSessions != 2 {
		t.Errorf("LiveSessions = %d, want 2 (one before, the new one)", out.LiveSessions)
	}
	if len(out.Identities) != 2 || out.Identities[0].ID != ident.ID || out.Identities[1].ID != second.ID {
		t.Errorf("Identities = %+v, want %s then %s", out.Identities, ident.ID, second.ID)
	}
	if !out.Identities[0].LastLoginAt.Equal(in.TouchAt) {
		t.Errorf("the listed identity's LastLoginAt = %v, want the touch %v", out.Identities[0].LastLoginAt, in.TouchAt)
	}
	got, err := s.GetSession(ctx, in.Session.ID)
	if err != nil {
		t.Fatalf("the session was not written: %v", err)
	}
	if got.UserID != u.ID || got.Generation != 1 || !got.IdleExpiresAt.Equal(in.Session.IdleExpiresAt) || got.IP != in.Session.IP {
		t.Errorf("session = %+v, want %+v", got, in.Session)
	}
	if id, err := s.GetIdentity(ctx, ident.Issuer, ident.Subject); err != nil || !id.LastLoginAt.Equal(in.TouchAt) {
		t.Errorf("identity after the touch = %+v, %v; want LastLoginAt %v", id, err, in.TouchAt)
	}
	if evs, err := s.ListAudit(ctx, storage.AuditFilter{UserID: u.ID}); err != nil || len(evs) != 1 || evs[0].ID != in.Audit[0].ID {
		t.Errorf("audit = %+v, %v; want the one event", evs, err)
	}
	if err := s.RecordCredential(ctx, in.CredentialKey, t0.Add(time.Hour), t0.Add(2*time.Minute)); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("the credential was not recorded: RecordCredential = %v, want ErrConflict", err)
	}

	// Without a credential, a touch or a count: only the session (and audit).
	bare := storage.SignIn{Session: newSession(u, t0), Issuer: ident.Issuer, Subject: ident.Subject, Now: t0}
	if out, err := w.WriteSignIn(ctx, bare); err != nil || out.LiveSessions != 0 || len(out.Identities) != 2 {
		t.Fatalf("bare WriteSignIn = %+v, %v", out, err)
	}
	if _, err := s.GetSession(ctx, bare.Session.ID); err != nil {
		t.Fatalf("bare sign-in's session: %v", err)
	}
}

// testWriteSignInRefusals: a recorded credential (ErrConflict) and an
// identity that is not the user's (ErrStale) write nothing at all; an
// expired record is replaced.
func testWriteSignInRefusals(t *testing.T, s storage.Store) {
	w := mustOffer[storage.SignInWriter](t, s)
	ctx, t0 := t.Context(), epoch()
	u, ident := mustCreateAda(t, s, t0)
	other := newUser(t0, "bob@example.com", true)
	otherIdent := newIdentity(other, "google", "g-2", t0)
	mustCreateUser(t, s, other, otherIdent)
	if err := s.RecordCredential(ctx, "spent", t0.Add(time.Hour), t0); err != nil {
		t.Fatal(err)
	}

	nothingWritten := func(t *testing.T, in storage.SignIn) {
		t.Helper()
		if _, err := s.GetSession(ctx, in.Session.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("a refused sign-in wrote its session: %v", err)
		}
		if evs, _ := s.ListAudit(ctx, storage.AuditFilter{UserID: u.ID}); len(evs) != 0 {
			t.Errorf("a refused sign-in wrote audit events: %+v", evs)
		}
		if id, _ := s.GetIdentity(ctx, ident.Issuer, ident.Subject); !id.LastLoginAt.Equal(ident.LastLoginAt) {
			t.Errorf("a refused sign-in touched the identity: %v", id.LastLoginAt)
		}
	}
	for _, tc := range []struct {
		name string
		edit func(in *storage.SignIn)
		want error
	}{
		{"recorded credential", func(in *storage.SignIn) { in.CredentialKey = "spent" }, storage.ErrConflict},
		{"another user's identity", func(in *storage.SignIn) { in.Subject = otherIdent.Subject }, storage.ErrStale},
		{"absent identity", func(in *storage.SignIn) { in.Subject = "nobody" }, storage.ErrStale},
		{"absent user", func(in *storage.SignIn) { in.Session.UserID = uuid.NewString() }, storage.ErrStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := signInFor(u, ident, "fresh-"+tc.name, t0.Add(time.Minute))
			in.TouchAt, in.CountLive = t0.Add(time.Minute), true
			tc.edit(&in)
			if _, err := w.WriteSignIn(ctx, in); !errors.Is(err, tc.want) {
				t.Fatalf("WriteSignIn = %v, want %v", err, tc.want)
			}
			nothingWritten(t, in)
			if in.CredentialKey != "spent" {
				// The credential was not recorded either.
				if err := s.RecordCredential(ctx, in.CredentialKey, t0.Add(time.Hour), t0); err != nil {
					t.Errorf("a refused sign-in recorded its credential: %v", err)
				}
			}
		})
	}

	// A record expired at Now is replaced, and holds afterwards.
	in := signInFor(u, ident, "spent", t0.Add(time.Hour))
	in.CredentialExpiresAt = t0.Add(2 * time.Hour)
	if _, err := w.WriteSignIn(ctx, in); err != nil {
		t.Fatalf("sign-in with an expired record of its key: %v", err)
	}
	if err := s.RecordCredential(ctx, "spent", t0.Add(3*time.Hour), t0.Add(90*time.Minute)); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("the replaced record does not hold: %v", err)
	}
}

// testWriteSignInConcurrent: of 20 concurrent sign-ins with one
// credential exactly one writes; of 10 with their own credentials every
// one writes, and the last to count sees them all.
func testWriteSignInConcurrent(t *testing.T, s storage.Store) {
	w := mustOffer[storage.SignInWriter](t, s)
	ctx, t0 := t.Context(), epoch()
	u, ident := mustCreateAda(t, s, t0)

	var won, lost atomic.Int32
	atOnce(20, func(int) {
		in := signInFor(u, ident, "one-token", t0)
		switch _, err := w.WriteSignIn(ctx, in); {
		case err == nil:
			won.Add(1)
		case errors.Is(err, storage.ErrConflict):
			lost.Add(1)
		default:
			t.Errorf("concurrent sign-in: %v", err)
		}
	})
	if won.Load() != 1 || lost.Load() != 19 {
		t.Fatalf("20 concurrent sign-ins with one credential: %d won, %d replays; want 1 and 19", won.Load(), lost.Load())
	}
	if ss, err := s.ListSessions(ctx, u.ID); err != nil || len(ss) != 1 {
		t.Fatalf("sessions after the race: %d, %v; want 1", len(ss), err)
	}

	// Concurrent sign-ins of one identity that each touch it (an hour
	// since the last) all succeed.
	var most atomic.Int32
	atOnce(10, func(i int) {
		in := signInFor(u, ident, fmt.Sprintf("token-%d", i), t0)
		in.CountLive, in.TouchAt = true, t0.Add(time.Duration(i)*time.Second)
		out, err := w.WriteSignIn(ctx, in)
		if err != nil {
			t.Errorf("sign-in %d: %v", i, err)
			return
		}
		for {
			m := most.Load()
			if int32(out.LiveSessions) <= m || most.CompareAndSwap(m, int32(out.LiveSessions)) {
				break
			}
		}
	})
	if most.Load() != 11 {
		t.Fatalf("the most live sessions any of 10 concurrent sign-ins counted = %d, want 11 (the last sees every other)", most.Load())
	}
}

// testHotReads: GetIdentityUser and GetSessionUser read what GetIdentity,
// GetSession and GetUser read; ErrNotFound when absent.
func testHotReads(t *testing.T, s storage.Store) {
	r := mustOffer[storage.HotReader](t, s)
	ctx, t0 := t.Context(), epoch()
	u := newUser(t0, "ada@example.com", true)
	u.Username, u.GivenName = "ada", "Ada"
	ident := newIdentity(u, "google", "g-1", t0)
	mustCreateUser(t, s, u, ident)
	sess := newSession(u, t0)
	mustCreateSession(t, s, sess)
	wantUser := mustGetUser(t, s, u.ID)

	gotIdent, gotUser, err := r.GetIdentityUser(ctx, ident.Issuer, ident.Subject)
	if err != nil {
		t.Fatalf("GetIdentityUser: %v", err)
	}
	wantIdent, _ := s.GetIdentity(ctx, ident.Issuer, ident.Subject)
	check(t, "GetIdentityUser identity", gotIdent, wantIdent)
	check(t, "GetIdentityUser user", gotUser, wantUser)
	gotSess, gotUser, err := r.GetSessionUser(ctx, sess.ID)
	if err != nil {
		t.Fatalf("GetSessionUser: %v", err)
	}
	wantSess, _ := s.GetSession(ctx, sess.ID)
	check(t, "GetSessionUser session", gotSess, wantSess)
	check(t, "GetSessionUser user", gotUser, wantUser)
	if _, _, err := r.GetIdentityUser(ctx, ident.Issuer, "nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetIdentityUser of an absent identity: %v, want ErrNotFound", err)
	}
	if _, _, err := r.GetSessionUser(ctx, uuid.NewString()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetSessionUser of an absent session: %v, want ErrNotFound", err)
	}
}

// testRotateSessionOfEnabledUser: it rotates as RotateSession does, with
// the user; a stale generation, a dead session or a disabled user is
// ErrStale and writes nothing; of concurrent rotations one wins.
func testRotateSessionOfEnabledUser(t *testing.T, s storage.Store) {
	rot := mustOffer[storage.EnabledUserRotator](t, s)
	ctx, t0 := t.Context(), epoch()
	u, _ := mustCreateAda(t, s, t0)
	sess := newSession(u, t0)
	mustCreateSession(t, s, sess)

	at, idle := t0.Add(time.Minute), t0.Add(time.Minute+14*day)
	got, gotUser, err := rot.RotateSessionOfEnabledUser(ctx, sess.ID, "", 1, at, idle)
	if err != nil || got.Generation != 2 || !got.RotatedAt.Equal(at) || !got.IdleExpiresAt.Equal(idle) || gotUser.ID != u.ID || gotUser.Email != u.Email {
		t.Fatalf("rotation = %+v, %+v, %v", got, gotUser, err)
	}
	if stored, _ := s.GetSession(ctx, sess.ID); stored.Generation != 2 {
		t.Fatalf("stored generation %d, want 2", stored.Generation)
	}
	// The idle limit never passes the absolute one.
	short := newSession(u, t0)
	short.ExpiresAt = t0.Add(time.Hour)
	mustCreateSession(t, s, short)
	if got, _, err := rot.RotateSessionOfEnabledUser(ctx, short.ID, "", 1, at, idle); err != nil || !got.IdleExpiresAt.Equal(short.ExpiresAt) {
		t.Fatalf("rotation near the absolute limit: idle %v, %v; want %v", got.IdleExpiresAt, err, short.ExpiresAt)
	}
	if _, _, err := rot.RotateSessionOfEnabledUser(ctx, sess.ID, "", 1, at, idle); !errors.Is(err, storage.ErrStale) {
		t.Errorf("a stale generation: %v, want ErrStale", err)
	}
	if _, _, err := rot.RotateSessionOfEnabledUser(ctx, sess.ID, "", 2, t0.Add(100*day), idle); !errors.Is(err, storage.ErrStale) {
		t.Errorf("an expired session: %v, want ErrStale", err)
	}
	if _, _, err := rot.RotateSessionOfEnabledUser(ctx, uuid.NewString(), "", 1, at, idle); !errors.Is(err, storage.ErrStale) {
		t.Errorf("an absent session: %v, want ErrStale", err)
	}
	// Another client's session does not rotate; its own client's does.
	if _, _, err := rot.RotateSessionOfEnabledUser(ctx, sess.ID, "other-client", 2, at, idle); !errors.Is(err, storage.ErrStale) {
		t.Errorf("another client: %v, want ErrStale", err)
	}
	if _, _, err := rot.RotateSessionOfEnabledUser(ctx, short.ID, sess.ClientID, 2, at, idle); err != nil {
		t.Errorf("the session's own client: %v", err)
	}
	disabled := mustGetUser(t, s, u.ID)
	disabled.Disabled = true
	if err := s.UpdateUser(ctx, disabled); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rot.RotateSessionOfEnabledUser(ctx, sess.ID, "", 2, at, idle); !errors.Is(err, storage.ErrStale) {
		t.Errorf("a disabled user: %v, want ErrStale", err)
	}
	if stored, _ := s.GetSession(ctx, sess.ID); stored.Generation != 2 {
		t.Fatalf("a refused rotation wrote: generation %d, want 2", stored.Generation)
	}
	disabled.Disabled = false
	if err := s.UpdateUser(ctx, disabled); err != nil {
		t.Fatal(err)
	}

	var won atomic.Int32
	atOnce(20, func(int) {
		_, _, err := rot.RotateSessionOfEnabledUser(ctx, sess.ID, "", 2, at, idle)
		switch {
		case err == nil:
			won.Add(1)
		case !errors.Is(err, storage.ErrStale):
			t.Errorf("concurrent rotation: %v", err)
		}
	})
	if won.Load() != 1 {
		t.Fatalf("20 concurrent rotations from one generation: %d won, want 1", won.Load())
	}
}

// testRevokeSessionOnce: the first revocation reports true and the
// session as it was; a second reports false and keeps the first reason;
// of concurrent ones exactly one reports true; absent is ErrNotFound.
func testRevokeSessionOnce(t *testing.T, s storage.Store) {
	rv := mustOffer[storage.SessionRevoker](t, s)
	ctx, t0 := t.Context(), epoch()
	u, _ := mustCreateAda(t, s, t0)
	sess := newSession(u, t0)
	mustCreateSession(t, s, sess)

	before, revoked, err := rv.RevokeSessionOnce(ctx, sess.ID, t0.Add(time.Minute), "first")
	if err != nil || !revoked || before.Revoked() || before.UserID != u.ID {
		t.Fatalf("first revocation = %+v, %v, %v", before, revoked, err)
	}
	before, revoked, err = rv.RevokeSessionOnce(ctx, sess.ID, t0.Add(2*time.Minute), "second")
	if err != nil || revoked || before.RevokedReason != "first" {
		t.Fatalf("second revocation = %+v, %v, %v; want not revoked, reason first", before, revoked, err)
	}
	if got, _ := s.GetSession(ctx, sess.ID); got.RevokedReason != "first" || !got.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("stored revocation %v %q, want the first", got.RevokedAt, got.RevokedReason)
	}
	if _, _, err := rv.RevokeSessionOnce(ctx, uuid.NewString(), t0, "x"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("absent session: %v, want ErrNotFound", err)
	}

	race := newSession(u, t0)
	mustCreateSession(t, s, race)
	var won atomic.Int32
	atOnce(20, func(int) {
		_, revoked, err := rv.RevokeSessionOnce(ctx, race.ID, t0.Add(time.Minute), "race")
		if err != nil {
			t.Errorf("concurrent revocation: %v", err)
		}
		if revoked {
			won.Add(1)
		}
	})
	if won.Load() != 1 {
		t.Fatalf("20 concurrent revocations: %d reported revoking, want 1", won.Load())
	}
}
