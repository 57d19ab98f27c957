package web_test

import (
	"context"
	"net/http"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authex/authex/storage"
)

// raceStore runs a test's hook at exactly the point where a sign-in races a
// credential change: just before the next session is written (the sign-in
// has checked its credential and not yet written its session), or just
// after the next revocation of all of a user's sessions with a given
// reason. Each hook runs once.
type raceStore struct {
	storage.Store
	beforeCreateSession atomic.Pointer[func()]
	afterRevokeAll      atomic.Pointer[func(reason string) bool]
}

func (s *raceStore) CreateSession(ctx context.Context, sess storage.Session) error {
	if f := s.beforeCreateSession.Swap(nil); f != nil {
		(*f)()
	}
	return s.Store.CreateSession(ctx, sess)
}

func (s *raceStore) RevokeUserSessions(ctx context.Context, userID, except string, at time.Time, reason string) (int, error) {
	n, err := s.Store.RevokeUserSessions(ctx, userID, except, at, reason)
	if f := s.afterRevokeAll.Load(); f != nil && (*f)(reason) {
		s.afterRevokeAll.CompareAndSwap(f, nil)
	}
	return n, err
}

func withRaceStore(rs *raceStore) harnessOption {
	return func(c *harnessConfig) {
		c.wrap = func(s storage.Store) storage.Store { rs.Store = s; return rs }
	}
}

// assertRacedSignIn checks that a sign-in that raced a revocation was
// refused as wanted; if it was not, it first reports whether its tokens
// still work.
func assertRacedSignIn(t *testing.T, h *harness, res response, status int, code, reason string) {
	t.Helper()
	if res.status == http.StatusOK {
		tk := decodeTokens(t, res)
		if me := h.get("/v1/me", tk.AccessToken); me.status == http.StatusOK {
			t.Errorf("the raced sign-in's access token still authenticates (user %s)", tk.User.ID)
		}
		if r := h.postJSON("/v1/token/refresh", map[string]string{"refresh_token": tk.RefreshToken}); r.status == http.StatusOK {
			t.Errorf("the raced sign-in's refresh token still refreshes (user %s)", tk.User.ID)
		}
	}
	assertError(t, res, status, code, reason)
}

// liveSessions lists the user's sessions not revoked.
func liveSessions(t *testing.T, h *harness, userID string) []storage.Session {
	t.Helper()
	all, err := h.store.ListSessions(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	var live []storage.Session
	for _, s := range all {
		if !s.Revoked() {
			live = append(live, s)
		}
	}
	return live
}

// A pre-registrant's login checks the password, and before it writes its
// session the victim's Google sign-in takes the account over (password
// wiped, every session revoked). The session written after that revocation
// must not survive: the login gives it up and answers invalid_credentials.
func TestLoginRacingTakeover(t *testing.T) {
	rs := &raceStore{}
	h := newHarness(t, withPassword(passwordConfig()), withRaceStore(rs))
	att := h.register("victim@gmail.com", goodPassword, "Not The Victim")

	var victim tokens
	takeover := func() {
		victim = h.exchangeOK("google", h.idToken("victim-google", map[string]any{"email": "victim@gmail.com"}))
	}
	rs.beforeCreateSession.Store(&takeover)
	res := h.login("victim@gmail.com", goodPassword)
	if victim.User.ID != att.User.ID {
		t.Fatalf("the takeover did not run inside the login, or landed elsewhere: %+v", victim.User)
	}
	assertRacedSignIn(t, h, res, http.StatusUnauthorized, "invalid_credentials", "invalid_credentials")
	// The victim's session is the account's only live one.
	live := liveSessions(t, h, victim.User.ID)
	if len(live) != 1 || live[0].ID != victim.SessionID {
		t.Fatalf("live sessions %+v, want only the victim's %s", live, victim.SessionID)
	}
	all, _ := h.store.ListSessions(context.Background(), victim.User.ID)
	found := false
	for _, s := range all {
		found = found || s.RevokedReason == "raced_credential_change"
	}
	if !found {
		t.Fatalf("no session revoked as raced_credential_change: %+v", all)
	}
	if res := h.get("/v1/me", victim.AccessToken); res.status != http.StatusOK {
		t.Fatalf("victim's session: %d %s", res.status, res.body)
	}
}

// The same race at registration: the victim's Google sign-in takes the new
// account over between its creation and its first session.
func TestRegisterRacingTakeover(t *testing.T) {
	rs := &raceStore{}
	h := newHarness(t, withPassword(passwordConfig()), withRaceStore(rs))
	var victim tokens
	takeover := func() {
		victim = h.exchangeOK("google", h.idToken("victim-google", map[string]any{"email": "victim@gmail.com"}))
	}
	rs.beforeCreateSession.Store(&takeover)
	res := h.postJSON("/v1/register", map[string]string{"email": "victim@gmail.com", "password": goodPassword})
	if victim.User.ID == "" {
		t.Fatal("the takeover did not run inside the registration")
	}
	assertRacedSignIn(t, h, res, http.StatusConflict, "account_exists", "email_taken")
	if live := liveSessions(t, h, victim.User.ID); len(live) != 1 || live[0].ID != victim.SessionID {
		t.Fatalf("live sessions %+v, want only the victim's %s", live, victim.SessionID)
	}
}

// A login with the old password races a password change, whose promise is
// that every other session is revoked: the login's session must not
// survive it either.
func TestLoginRacingPasswordChange(t *testing.T) {
	rs := &raceStore{}
	h := newHarness(t, withPassword(passwordConfig()), withRaceStore(rs))
	owner := h.register("owner@example.com", goodPassword, "")

	const newPassword = "a much better passphrase"
	change := func() {
		res := h.postJSON("/v1/me/password", map[string]string{"current_password": goodPassword, "new_password": newPassword},
			bearer(owner.AccessToken)...)
		if res.status != http.StatusOK {
			t.Errorf("password change: %d %s", res.status, res.body)
		}
	}
	rs.beforeCreateSession.Store(&change)
	res := h.login("owner@example.com", goodPassword)
	if rs.beforeCreateSession.Load() != nil {
		t.Fatal("the password change did not run inside the login")
	}
	assertRacedSignIn(t, h, res, http.StatusUnauthorized, "invalid_credentials", "invalid_credentials")
	live := liveSessions(t, h, owner.User.ID)
	if len(live) != 1 || live[0].ID != owner.SessionID {
		t.Fatalf("live sessions %+v, want only the changer's %s", live, owner.SessionID)
	}
	// Without a race, the new password signs in and stays signed in.
	in := h.loginOK("owner@example.com", newPassword)
	if res := h.get("/v1/me", in.AccessToken); res.status != http.StatusOK {
		t.Fatalf("new password's session: %d %s", res.status, res.body)
	}
}

// The pre-registrant also linked an identity of their own. Signing in with
// it while the takeover runs must not give a session in the victim's
// account: not when the sign-in's session is written after the takeover
// (Exchange checks its identity after writing), and not when the whole
// sign-in runs just after the takeover's revocation (the identities are
// unlinked before it).
func TestLinkedIdentityRacingTakeover(t *testing.T) {
	setup := func(t *testing.T) (*harness, *raceStore, tokens) {
		rs := &raceStore{}
		h := newHarness(t, withPassword(passwordConfig()), withRaceStore(rs))
		att := h.register("victim@gmail.com", goodPassword, "Not The Victim")
		if err := h.store.AddIdentity(context.Background(), storage.Identity{ID: "att-corp", UserID: att.User.ID, Provider: "corp",
			Issuer: h.iss.URL(), Subject: "attacker-corp", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		return h, rs, att
	}
	victimToken := func(h *harness) string {
		return h.idToken("victim-google", map[string]any{"email": "victim@gmail.com"})
	}
	attackerToken := func(h *harness) string {
		return h.idToken("attacker-corp", map[string]any{"email": "attacker@example.com"})
	}

	t.Run("session written after the takeover", func(t *testing.T) {
		h, rs, att := setup(t)
		var victim tokens
		takeover := func() { victim = h.exchangeOK("google", victimToken(h)) }
		rs.beforeCreateSession.Store(&takeover)
		res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": attackerToken(h)})
		if victim.User.ID != att.User.ID {
			t.Fatalf("the takeover did not run inside the sign-in: %+v", victim.User)
		}
		assertRacedSignIn(t, h, res, http.StatusUnauthorized, "invalid_token", "revoked")
		if live := liveSessions(t, h, victim.User.ID); len(live) != 1 || live[0].ID != victim.SessionID {
			t.Fatalf("live sessions %+v, want only the victim's %s", live, victim.SessionID)
		}
		// Signing in again, the identity is no longer the victim's.
		if mine := h.exchangeOK("corp", attackerToken(h)); mine.User.ID == victim.User.ID {
			t.Fatal("the attacker's identity still opens the victim's account")
		}
	})

	t.Run("sign-in right after the revocation", func(t *testing.T) {
		h, rs, att := setup(t)
		var res response
		ran := false
		signIn := func(reason string) bool {
			if reason != "claimed_by_verified_identity" {
				return false
			}
			ran = true
			res = h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": attackerToken(h)})
			return true
		}
		rs.afterRevokeAll.Store(&signIn)
		victim := h.exchangeOK("google", victimToken(h))
		if !ran || victim.User.ID != att.User.ID {
			t.Fatalf("the sign-in did not run inside the takeover (ran %v): %+v", ran, victim.User)
		}
		if res.status == http.StatusOK {
			if tk := decodeTokens(t, res); tk.User.ID == victim.User.ID {
				t.Errorf("the attacker's identity signed in to the victim's account after the revocation")
			}
		} else {
			t.Errorf("attacker's sign-in: %d %s, want a user of its own", res.status, res.body)
		}
		if live := liveSessions(t, h, victim.User.ID); len(live) != 1 || live[0].ID != victim.SessionID {
			t.Fatalf("live sessions %+v, want only the victim's %s", live, victim.SessionID)
		}
	})
}

// A login checks the password, and before it writes its session a
// concurrent request rewrites the hash of that same password (a parameter
// upgrade by another login, or a change to the same value). The password
// the login checked still opens the account: it keeps its session.
func TestLoginRacingSamePasswordRehash(t *testing.T) {
	rs := &raceStore{}
	h := newHarness(t, withPassword(passwordConfig()), withRaceStore(rs))
	owner := h.register("rehash@example.com", goodPassword, "")
	rewrite := func() {
		res := h.postJSON("/v1/me/password", map[string]string{"current_password": goodPassword, "new_password": goodPassword},
			bearer(owner.AccessToken)...)
		if res.status != http.StatusOK {
			t.Errorf("rewrite to the same password: %d %s", res.status, res.body)
		}
	}
	rs.beforeCreateSession.Store(&rewrite)
	res := h.login("rehash@example.com", goodPassword)
	if rs.beforeCreateSession.Load() != nil {
		t.Fatal("the rewrite did not run inside the login")
	}
	if res.status != http.StatusOK {
		t.Fatalf("a login with the current password was refused: %d %s", res.status, res.body)
	}
	if me := h.get("/v1/me", decodeTokens(t, res).AccessToken); me.status != http.StatusOK {
		t.Fatalf("its session: %d %s", me.status, me.body)
	}
}

// A user disabled while their login runs is refused as disabled, not as a
// bad password.
func TestLoginRacingDisable(t *testing.T) {
	rs := &raceStore{}
	h := newHarness(t, withPassword(passwordConfig()), withRaceStore(rs))
	owner := h.register("disabled-mid@example.com", goodPassword, "")
	disable := func() {
		if _, err := h.store.ModifyUser(context.Background(), owner.User.ID, func(u *storage.User) error {
			u.Disabled = true
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
	rs.beforeCreateSession.Store(&disable)
	assertRacedSignIn(t, h, h.login("disabled-mid@example.com", goodPassword), http.StatusForbidden, "access_denied", "user_disabled")
}

// identityRaceStore keeps the store's one-write sign-in (Unwrap: the
// exchange finds storage.SignInWriter below it) and runs a test's hook once,
// right after a sign-in's joined read of identity and user.
type identityRaceStore struct {
	storage.Store
	afterRead atomic.Pointer[func()]
}

func (s *identityRaceStore) Unwrap() storage.Store { return s.Store }

func (s *identityRaceStore) GetIdentityUser(ctx context.Context, issuer, subject string) (storage.Identity, storage.User, error) {
	r, _ := storage.As[storage.HotReader](s.Store)
	ident, u, err := r.GetIdentityUser(ctx, issuer, subject)
	if f := s.afterRead.Swap(nil); f != nil {
		(*f)()
	}
	return ident, u, err
}

func (s *identityRaceStore) GetSessionUser(ctx context.Context, id string) (storage.Session, storage.User, error) {
	r, _ := storage.As[storage.HotReader](s.Store)
	return r.GetSessionUser(ctx, id)
}

// A returning user's exchange reads the identity, and before its one write
// the identity is unlinked: the write refuses (the identity is no longer
// the user's), the answer is 401 revoked, no session is written, the
// abandonment is audited, and the id_token is spent all the same.
func TestExchangeRacingUnlink(t *testing.T) {
	rs := &identityRaceStore{}
	h := newHarness(t, func(c *harnessConfig) {
		c.wrap = func(s storage.Store) storage.Store { rs.Store = s; return rs }
	})
	first := h.exchangeOK("corp", h.idToken("ada", nil))
	ctx := context.Background()
	idents, err := h.store.ListIdentities(ctx, first.User.ID)
	if err != nil || len(idents) != 1 {
		t.Fatalf("identities %+v, %v", idents, err)
	}
	var before snapshot
	unlink := func() {
		if err := h.store.DeleteIdentity(ctx, first.User.ID, idents[0].ID); err != nil {
			t.Error(err)
		}
		before = h.snapshot()
	}
	rs.afterRead.Store(&unlink)
	token := h.idToken("ada", nil)
	res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": token})
	assertError(t, res, http.StatusUnauthorized, "invalid_token", "revoked")

	after := h.snapshot()
	if len(after.Audit) != len(before.Audit)+1 || after.Audit[0].Type != "session.abandoned" || after.Audit[0].UserID != first.User.ID {
		t.Fatalf("audit after the refusal: %+v, want one session.abandoned more than %d events", after.Audit, len(before.Audit))
	}
	after.Audit = before.Audit
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("store changed by the refused sign-in:\nbefore %+v\nafter  %+v", before, after)
	}
	// Spent all the same: the same id_token cannot sign in afresh.
	res = h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": token})
	assertError(t, res, http.StatusUnauthorized, "invalid_token", "replayed")
}
