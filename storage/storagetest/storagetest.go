// Package storagetest is the conformance suite for storage.Store. Every
// backend runs Run unchanged from its own short test file; a backend is
// correct when the suite passes.
//
// The suite must never assume a backend: no file paths, no sleeping for
// background work, no timing. Its times are a year ahead of the wall clock
// (so a backend's background sweep never touches its sessions), in a
// non-UTC location, with microsecond precision, the least a backend may
// keep.
package storagetest

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/authex/authex/storage"
)

// Run runs the suite. open must return a new, empty store on every call and
// close it when the test ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		test func(t *testing.T, s storage.Store)
	}{
		{"CreateUser", testCreateUser},
		{"CreateUserDuplicateID", testCreateUserDuplicateID},
		{"CreateUserIdentityTaken", testCreateUserIdentityTaken},
		{"CreateUserEmailTaken", testCreateUserEmailTaken},
		{"CreateUserConcurrent", testCreateUserConcurrent},
		{"VerifiedEmailIndex", testVerifiedEmailIndex},
		{"PasswordEmailIndex", testPasswordEmailIndex},
		{"PasswordEmailTaken", testPasswordEmailTaken},
		{"PasswordEmailFollowsUpdates", testPasswordEmailFollowsUpdates},
		{"PasswordEmailDeleted", testPasswordEmailDeleted},
		{"UpdateUser", testUpdateUser},
		{"UpdateUserMovesEmail", testUpdateUserMovesEmail},
		{"UpdateUserEmailTaken", testUpdateUserEmailTaken},
		{"ModifyUser", testModifyUser},
		{"ModifyUserNotFound", testModifyUserNotFound},
		{"ModifyUserFnError", testModifyUserFnError},
		{"ModifyUserConflicts", testModifyUserConflicts},
		{"ModifyUserConcurrent", testModifyUserConcurrent},
		{"DeleteUserCascades", testDeleteUserCascades},
		{"ListUsersPaging", testListUsersPaging},
		{"ListUsersFilters", testListUsersFilters},
		{"CountUsers", testCountUsers},
		{"AddIdentity", testAddIdentity},
		{"AddIdentityTaken", testAddIdentityTaken},
		{"DeleteIdentity", testDeleteIdentity},
		{"TouchIdentity", testTouchIdentity},
		{"CreateSession", testCreateSession},
		{"ListSessions", testListSessions},
		{"RotateSession", testRotateSession},
		{"RotateSessionStale", testRotateSessionStale},
		{"RotateSessionConcurrent", testRotateSessionConcurrent},
		{"RevokeSession", testRevokeSession},
		{"RevokeUserSessions", testRevokeUserSessions},
		{"DeleteExpiredSessions", testDeleteExpiredSessions},
		{"DeleteExpiredSessionsFollowsWrites", testDeleteExpiredSessionsFollowsWrites},
		{"SigningKeys", testSigningKeys},
		{"EnsureSecret", testEnsureSecret},
		{"EnsureSecretConcurrent", testEnsureSecretConcurrent},
		{"KeyMaterial", testKeyMaterial},
		{"Audit", testAudit},
		{"TimesAreUTC", testTimesAreUTC},
		{"NotFound", testNotFound},
		{"NoAliasing", testNoAliasing},
		{"Ping", testPing},
		{"Credentials", testCredentials}, // credentials.go
		{"EmailVerifiedBy", testEmailVerifiedBy},
		{"EmailKeyIndexes", testEmailKeyIndexes},
		{"InTxCommits", testInTxCommits}, {"InTxRollsBack", testInTxRollsBack}, // tx.go
		{"UsernameIndex", testUsernameIndex}, {"UsernameTaken", testUsernameTaken}, {"UsernameFollowsUpdates", testUsernameFollowsUpdates}, {"ListUsersByUsername", testListUsersByUsername}, {"UsernameConcurrent", testUsernameConcurrent}, // usernames.go
		{"Outbox", testOutbox}, {"OutboxClaimOrder", testOutboxClaimOrder}, {"OutboxInTx", testOutboxInTx}, {"OutboxClaimConcurrent", testOutboxClaimConcurrent}, // outbox.go
		{"EmailTokens", testEmailTokens},                                                                                                         // emailtokens.go
		{"SetIdentityEmail", testSetIdentityEmail},                                                                                               // identityemail.go
		{"WriteSignIn", testWriteSignIn}, {"WriteSignInRefusals", testWriteSignInRefusals}, {"WriteSignInConcurrent", testWriteSignInConcurrent}, // signin.go
		{"HotReads", testHotReads}, {"RotateSessionOfEnabledUser", testRotateSessionOfEnabledUser}, {"RevokeSessionOnce", testRevokeSessionOnce},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, open(t)) })
	}
}

const day = 24 * time.Hour

var (
	// zone and zoneWest are where the suite writes its times: not UTC, so a
	// backend that forgets to convert shows it.
	zone     = time.FixedZone("UTC+05:30", 5*60*60+30*60)
	zoneWest = time.FixedZone("UTC-07:00", -7*60*60)
)

// epoch is the suite's "now": a year ahead of the wall clock, not in UTC,
// with microseconds and nothing finer.
func epoch() time.Time {
	return time.Now().Add(365 * day).Truncate(time.Second).Add(123456 * time.Microsecond).In(zone)
}

// atOnce runs f(0) ... f(n-1) in n goroutines released together, and
// returns when all have returned.
func atOnce(n int, f func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			f(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

// Records. IDs are UUIDs, so a backend may store them in a uuid column.

func issuer(provider string) string { return "https://" + provider + ".example.com" }

func newUser(t0 time.Time, email string, verified bool) storage.User {
	return storage.User{
		ID:            uuid.NewString(),
		Email:         email,
		EmailVerified: verified,
		Name:          "Ada Lovelace",
		Picture:       "https://example.com/ada.png",
		Roles:         []string{"member"},
		CreatedAt:     t0,
		UpdatedAt:     t0,
	}
}

func newIdentity(u storage.User, provider, subject string, at time.Time) storage.Identity {
	return storage.Identity{
		ID:            uuid.NewString(),
		UserID:        u.ID,
		Provider:      provider,
		Issuer:        issuer(provider),
		Subject:       subject,
		Email:         u.Email,
		EmailVerified: u.EmailVerified,
		CreatedAt:     at,
		LastLoginAt:   at,
	}
}

func newSession(u storage.User, t0 time.Time) storage.Session {
	return storage.Session{
		ID:            uuid.NewString(),
		UserID:        u.ID,
		Provider:      "google",
		ClientID:      "web",
		Generation:    1,
		RotatedAt:     t0,
		CreatedAt:     t0,
		IdleExpiresAt: t0.Add(14 * day),
		ExpiresAt:     t0.Add(90 * day),
		UserAgent:     "Mozilla/5.0",
		IP:            "192.0.2.1",
	}
}

// unsortedIDs returns three new UUIDs in an order that is neither ascending
// nor descending, so a list that should be ordered by time cannot pass by
// being ordered by ID.
func unsortedIDs() [3]string {
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	slices.Sort(ids)
	return [3]string{ids[1], ids[0], ids[2]}
}

// Helpers.

// signUp creates a user with email and one identity at provider.
func signUp(tb testing.TB, s storage.Store, t0 time.Time, email string, verified bool, provider, subject string) (storage.User, storage.Identity) {
	tb.Helper()
	u := newUser(t0, email, verified)
	id := newIdentity(u, provider, subject, t0)
	mustCreateUser(tb, s, u, id)
	return u, id
}

// mustOffer is s as the optional capability T, which both backends must
// offer; the test stops when s does not.
func mustOffer[T any](tb testing.TB, s storage.Store) T {
	tb.Helper()
	c, ok := storage.As[T](s)
	if !ok {
		tb.Fatalf("the backend %T has no %v (both backends must)", s, reflect.TypeFor[T]())
	}
	return c
}

func mustCreateUser(tb testing.TB, s storage.Store, u storage.User, first storage.Identity) {
	tb.Helper()
	if err := s.CreateUser(tb.Context(), u, first); err != nil {
		tb.Fatalf("CreateUser(%q, %s %s): %v", u.Email, first.Issuer, first.Subject, err)
	}
}

func mustAddIdentity(tb testing.TB, s storage.Store, id storage.Identity) {
	tb.Helper()
	if err := s.AddIdentity(tb.Context(), id); err != nil {
		tb.Fatalf("AddIdentity(%s %s): %v", id.Issuer, id.Subject, err)
	}
}

// mustCreateAda creates the user ada@example.com (verified) with her
// google identity g-1, as of t0.
func mustCreateAda(tb testing.TB, s storage.Store, t0 time.Time) (storage.User, storage.Identity) {
	tb.Helper()
	u := newUser(t0, "ada@example.com", true)
	ident := newIdentity(u, "google", "g-1", t0)
	mustCreateUser(tb, s, u, ident)
	return u, ident
}

func mustCreateSession(tb testing.TB, s storage.Store, sess storage.Session) {
	tb.Helper()
	if err := s.CreateSession(tb.Context(), sess); err != nil {
		tb.Fatalf("CreateSession: %v", err)
	}
}

func mustGetUser(tb testing.TB, s storage.Store, id string) storage.User {
	tb.Helper()
	u, err := s.GetUser(tb.Context(), id)
	if err != nil {
		tb.Fatalf("GetUser(%s): %v", id, err)
	}
	return u
}

func mustGetSession(tb testing.TB, s storage.Store, id string) storage.Session {
	tb.Helper()
	sess, err := s.GetSession(tb.Context(), id)
	if err != nil {
		tb.Fatalf("GetSession(%s): %v", id, err)
	}
	return sess
}

func mustListUsers(tb testing.TB, s storage.Store, f storage.UserFilter) []storage.User {
	tb.Helper()
	us, err := s.ListUsers(tb.Context(), f)
	if err != nil {
		tb.Fatalf("ListUsers(%+v): %v", f, err)
	}
	return us
}

func mustListIdentities(tb testing.TB, s storage.Store, userID string) []storage.Identity {
	tb.Helper()
	ids, err := s.ListIdentities(tb.Context(), userID)
	if err != nil {
		tb.Fatalf("ListIdentities: %v", err)
	}
	return ids
}

func mustListSessions(tb testing.TB, s storage.Store, userID string) []storage.Session {
	tb.Helper()
	ss, err := s.ListSessions(tb.Context(), userID)
	if err != nil {
		tb.Fatalf("ListSessions: %v", err)
	}
	return ss
}

// wantCount checks CountUsers.
func wantCount(tb testing.TB, s storage.Store, want int) {
	tb.Helper()
	n, err := s.CountUsers(tb.Context())
	if err != nil {
		tb.Fatalf("CountUsers: %v", err)
	}
	if n != want {
		tb.Errorf("CountUsers = %d, want %d", n, want)
	}
}

// wantErr checks that err is (or wraps) target.
func wantErr(tb testing.TB, what string, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Errorf("%s: err = %v, want %v", what, err, target)
	}
}

// wantNoUser checks that no user with id exists.
func wantNoUser(tb testing.TB, s storage.Store, id string) {
	tb.Helper()
	_, err := s.GetUser(tb.Context(), id)
	wantErr(tb, "GetUser of a user that must not exist", err, storage.ErrNotFound)
}

// wantVerifiedEmail checks what the verified-email index says of email:
// the user with userID, or nothing when userID is empty.
func wantVerifiedEmail(tb testing.TB, s storage.Store, email, userID string) {
	tb.Helper()
	u, err := s.GetUserByVerifiedEmail(tb.Context(), email)
	switch {
	case userID == "":
		if !errors.Is(err, storage.ErrNotFound) {
			tb.Errorf("GetUserByVerifiedEmail(%q) = %q, %v; want ErrNotFound", email, u.ID, err)
		}
	case err != nil:
		tb.Errorf("GetUserByVerifiedEmail(%q): %v", email, err)
	case u.ID != userID:
		tb.Errorf("GetUserByVerifiedEmail(%q) = user %s, want %s", email, u.ID, userID)
	}
}

// wantIdentityOwner checks which user (issuer, subject) belongs to, or that
// it is absent when userID is empty.
func wantIdentityOwner(tb testing.TB, s storage.Store, id storage.Identity, userID string) {
	tb.Helper()
	got, err := s.GetIdentity(tb.Context(), id.Issuer, id.Subject)
	switch {
	case userID == "":
		if !errors.Is(err, storage.ErrNotFound) {
			tb.Errorf("GetIdentity(%s) = user %q, %v; want ErrNotFound", id.Subject, got.UserID, err)
		}
	case err != nil:
		tb.Errorf("GetIdentity(%s): %v", id.Subject, err)
	case got.UserID != userID:
		tb.Errorf("GetIdentity(%s) belongs to %s, want %s", id.Subject, got.UserID, userID)
	}
}

func userIDs(us []storage.User) []string {
	ids := make([]string, len(us))
	for i, u := range us {
		ids[i] = u.ID
	}
	return ids
}

func sortedIDs(us ...storage.User) []string {
	ids := userIDs(us)
	slices.Sort(ids)
	return ids
}

// check compares records (or slices of them) with go-cmp: times with
// Equal and required to be in UTC, nil and empty slices alike, everything
// else field by field.
func check(tb testing.TB, what string, got, want any) {
	tb.Helper()
	utc := &utcReporter{}
	if !gocmp.Equal(want, got, recordOpts, gocmp.Reporter(utc)) {
		tb.Errorf("%s (-want +got):\n%s", what, gocmp.Diff(want, got, recordOpts))
	}
	for _, p := range utc.bad {
		tb.Errorf("%s: %s: location not UTC", what, p)
	}
}

var recordOpts = gocmp.Options{
	cmpopts.EquateEmpty(),
	gocmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
}

var timeType = reflect.TypeFor[time.Time]()

// utcReporter notes every time on the got side (cmp's y) that is not in
// UTC; a Comparer must be symmetric, so the location is checked here.
type utcReporter struct {
	path gocmp.Path
	bad  []string
}

func (r *utcReporter) PushStep(ps gocmp.PathStep) { r.path = append(r.path, ps) }
func (r *utcReporter) PopStep()                   { r.path = r.path[:len(r.path)-1] }
func (r *utcReporter) Report(gocmp.Result) {
	_, got := r.path.Last().Values()
	if got.IsValid() && got.Type() == timeType && got.CanInterface() {
		if got.Interface().(time.Time).Location() != time.UTC {
			r.bad = append(r.bad, r.path.String())
		}
	}
}

// Users.

func testCreateUser(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	u := newUser(t0, "Ada@Example.com", true)
	u.Roles = []string{"admin", "member"}
	u.PasswordHash = "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA"
	id := newIdentity(u, "google", "g-ada", t0)
	mustCreateUser(t, s, u, id)

	check(t, "GetUser", mustGetUser(t, s, u.ID), u)
	got, err := s.GetIdentity(ctx, id.Issuer, id.Subject)
	if err != nil {
		t.Fatalf("GetIdentity: %v", err)
	}
	check(t, "GetIdentity", got, id)
	byEmail, err := s.GetUserByVerifiedEmail(ctx, "ada@example.com")
	if err != nil {
		t.Fatalf("GetUserByVerifiedEmail: %v", err)
	}
	check(t, "GetUserByVerifiedEmail", byEmail, u)
	check(t, "ListIdentities", mustListIdentities(t, s, u.ID), []storage.Identity{id})
	check(t, "ListUsers", mustListUsers(t, s, storage.UserFilter{}), []storage.User{u})
	wantCount(t, s, 1)
}

func testCreateUserDuplicateID(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	u, _ := signUp(t, s, t0, "ada@example.com", true, "google", "g-ada")

	dup := newUser(t0, "bob@example.com", true)
	dup.ID, dup.Name = u.ID, "Bob"
	dupID := newIdentity(dup, "google", "g-bob", t0)
	wantErr(t, "CreateUser with a taken user id", s.CreateUser(ctx, dup, dupID), storage.ErrConflict)

	check(t, "GetUser after the conflict", mustGetUser(t, s, u.ID), u)
	wantIdentityOwner(t, s, dupID, "")
	wantVerifiedEmail(t, s, "bob@example.com", "")
	wantCount(t, s, 1)
}

func testCreateUserIdentityTaken(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	a, aID := signUp(t, s, t0, "a@example.com", true, "google", "g-1")

	b := newUser(t0, "b@example.com", true)
	bID := newIdentity(b, "google", "g-1", t0) // a's (issuer, subject)
	err := s.CreateUser(ctx, b, bID)
	wantErr(t, "CreateUser with a taken identity", err, storage.ErrIdentityTaken)
	wantErr(t, "CreateUser with a taken identity", err, storage.ErrConflict)

	// Nothing written.
	wantCount(t, s, 1)
	wantNoUser(t, s, b.ID)
	wantVerifiedEmail(t, s, "b@example.com", "")
	wantIdentityOwner(t, s, bID, a.ID)
	got, err := s.GetIdentity(ctx, aID.Issuer, aID.Subject)
	if err != nil {
		t.Fatalf("GetIdentity: %v", err)
	}
	check(t, "GetIdentity of the taken identity", got, aID)
	if ids := mustListIdentities(t, s, b.ID); len(ids) != 0 {
		t.Errorf("ListIdentities of the refused user = %d identities, want none", len(ids))
	}
	check(t, "ListUsers", userIDs(mustListUsers(t, s, storage.UserFilter{})), []string{a.ID})

	// And nothing left behind that blocks the same user with another identity.
	mustCreateUser(t, s, b, newIdentity(b, "google", "g-2", t0))
	wantVerifiedEmail(t, s, "b@example.com", b.ID)
	wantCount(t, s, 2)
}

func testCreateUserEmailTaken(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	a, _ := signUp(t, s, t0, "ada@example.com", true, "google", "g-ada")

	b := newUser(t0, "ADA@example.COM", true)
	bID := newIdentity(b, "apple", "ap-ada", t0)
	err := s.CreateUser(ctx, b, bID)
	wantErr(t, "CreateUser with a taken verified email", err, storage.ErrEmailTaken)
	wantErr(t, "CreateUser with a taken verified email", err, storage.ErrConflict)

	wantCount(t, s, 1)
	wantNoUser(t, s, b.ID)
	wantIdentityOwner(t, s, bID, "")
	wantVerifiedEmail(t, s, "ada@example.com", a.ID)

	// The same address unverified proves nothing and conflicts with nothing.
	b.EmailVerified = false
	mustCreateUser(t, s, b, bID)
	wantVerifiedEmail(t, s, "ada@example.com", a.ID)
	wantCount(t, s, 2)
}

func testCreateUserConcurrent(t *testing.T, s storage.Store) {
	const n = 100
	ctx, t0 := t.Context(), epoch()
	users := make([]storage.User, n)
	errs := make([]error, n)
	firsts := make([]storage.Identity, n)
	for i := range n {
		users[i] = newUser(t0, fmt.Sprintf("user%d@example.com", i), true)
		firsts[i] = newIdentity(users[i], "google", "same-subject", t0)
	}
	atOnce(n, func(i int) { errs[i] = s.CreateUser(ctx, users[i], firsts[i]) })

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("CreateUser %d and %d both succeeded with one identity", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, storage.ErrIdentityTaken):
			t.Errorf("CreateUser %d: err = %v, want nil or ErrIdentityTaken", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no CreateUser succeeded")
	}
	wantCount(t, s, 1)
	wantIdentityOwner(t, s, storage.Identity{Issuer: issuer("google"), Subject: "same-subject"}, users[winner].ID)
	for i, u := range users {
		if i != winner {
			wantVerifiedEmail(t, s, u.Email, "")
		}
	}
}

func testVerifiedEmailIndex(t *testing.T, s storage.Store) {
	t0 := epoch()
	u1, _ := signUp(t, s, t0, "sam@example.com", false, "google", "g-1")
	u2, _ := signUp(t, s, t0, "Sam@Example.com", false, "apple", "ap-2")
	// Two users may share an unverified address, and it is never indexed.
	wantVerifiedEmail(t, s, "sam@example.com", "")
	wantVerifiedEmail(t, s, "Sam@Example.com", "")

	// Unverified holders do not block a verified one.
	u3, _ := signUp(t, s, t0, "SAM@example.com", true, "corp", "c-3")
	for _, e := range []string{"sam@example.com", "SAM@EXAMPLE.COM", "Sam@Example.com"} {
		wantVerifiedEmail(t, s, e, u3.ID)
	}
	wantVerifiedEmail(t, s, "", "")
	wantVerifiedEmail(t, s, "sam@example.org", "")
	check(t, "unverified users", []storage.User{mustGetUser(t, s, u1.ID), mustGetUser(t, s, u2.ID)}, []storage.User{u1, u2})
	wantCount(t, s, 3)
}

func testUpdateUser(t *testing.T, s storage.Store) {
	t0 := epoch()
	u, id := signUp(t, s, t0, "ada@example.com", true, "google", "g-ada")

	upd := u
	upd.Name = "Ada King"
	upd.Picture = "https://example.com/ada-king.png"
	upd.Roles = []string{"admin"}
	upd.Disabled = true
	upd.PasswordHash = "$argon2id$v=19$m=65536,t=3,p=2$bmV3$bmV3"
	upd.UpdatedAt = t0.Add(time.Hour).In(zoneWest)
	upd.CreatedAt = t0.Add(5 * time.Hour) // not mutable: must be ignored
	if err := s.UpdateUser(t.Context(), upd); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	want := upd
	want.CreatedAt = u.CreatedAt
	check(t, "GetUser after UpdateUser", mustGetUser(t, s, u.ID), want)
	check(t, "ListIdentities after UpdateUser", mustListIdentities(t, s, u.ID), []storage.Identity{id})

	upd.Roles, upd.Disabled, upd.PasswordHash = nil, false, ""
	if err := s.UpdateUser(t.Context(), upd); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	want = upd
	want.CreatedAt = u.CreatedAt
	check(t, "GetUser after clearing fields", mustGetUser(t, s, u.ID), want)
	wantCount(t, s, 1)
}

func testUpdateUserMovesEmail(t *testing.T, s storage.Store) {
	t0 := epoch()
	u, _ := signUp(t, s, t0, "a@example.com", true, "google", "g-u")
	other, _ := signUp(t, s, t0, "d@example.com", false, "google", "g-other")

	steps := []struct {
		email    string
		verified bool
		indexed  []string // addresses that must find u
		gone     []string // addresses that must find nobody
	}{
		{"B@example.com", true, []string{"b@example.com", "B@EXAMPLE.COM"}, []string{"a@example.com"}},
		{"b@example.com", false, nil, []string{"b@example.com", "a@example.com"}},
		{"c@example.com", true, []string{"c@example.com"}, []string{"b@example.com"}},
		{"C@EXAMPLE.COM", true, []string{"c@example.com", "C@Example.com"}, nil},
		{"", false, nil, []string{"c@example.com", ""}},
		// Another user's unverified address is free to verify.
		{"d@example.com", true, []string{"D@example.com"}, nil},
	}
	for _, st := range steps {
		u.Email, u.EmailVerified = st.email, st.verified
		u.UpdatedAt = u.UpdatedAt.Add(time.Minute)
		if err := s.UpdateUser(t.Context(), u); err != nil {
			t.Fatalf("UpdateUser(%q, verified %v): %v", st.email, st.verified, err)
		}
		check(t, "GetUser after UpdateUser", mustGetUser(t, s, u.ID), u)
		for _, e := range st.indexed {
			wantVerifiedEmail(t, s, e, u.ID)
		}
		for _, e := range st.gone {
			wantVerifiedEmail(t, s, e, "")
		}
	}
	check(t, "the other user", mustGetUser(t, s, other.ID), other)
}

func testUpdateUserEmailTaken(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	u, _ := signUp(t, s, t0, "a@example.com", true, "google", "g-u")
	v, _ := signUp(t, s, t0, "b@example.com", true, "google", "g-v")

	upd := u
	upd.Email, upd.Name = "B@Example.com", "Someone Else"
	err := s.UpdateUser(ctx, upd)
	wantErr(t, "UpdateUser to a taken verified email", err, storage.ErrEmailTaken)
	wantErr(t, "UpdateUser to a taken verified email", err, storage.ErrConflict)
	check(t, "GetUser after the refused update", mustGetUser(t, s, u.ID), u)
	wantVerifiedEmail(t, s, "a@example.com", u.ID)
	wantVerifiedEmail(t, s, "b@example.com", v.ID)

	// Unverified, the same address is no conflict; u's old entry goes.
	upd.EmailVerified = false
	if err := s.UpdateUser(ctx, upd); err != nil {
		t.Fatalf("UpdateUser to an unverified address: %v", err)
	}
	wantVerifiedEmail(t, s, "a@example.com", "")
	wantVerifiedEmail(t, s, "b@example.com", v.ID)
}

func testDeleteUserCascades(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	a, aGoogle := signUp(t, s, t0, "a@example.com", true, "google", "g-a")
	aApple := newIdentity(a, "apple", "ap-a", t0.Add(time.Minute))
	mustAddIdentity(t, s, aApple)
	aSessions := []storage.Session{newSession(a, t0), newSession(a, t0.Add(time.Minute))}
	for _, sess := range aSessions {
		mustCreateSession(t, s, sess)
	}
	b, bGoogle := signUp(t, s, t0, "b@example.com", true, "google", "g-b")
	bSession := newSession(b, t0)
	mustCreateSession(t, s, bSession)

	if err := s.DeleteUser(ctx, a.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	wantNoUser(t, s, a.ID)
	wantIdentityOwner(t, s, aGoogle, "")
	wantIdentityOwner(t, s, aApple, "")
	if ids := mustListIdentities(t, s, a.ID); len(ids) != 0 {
		t.Errorf("ListIdentities of a deleted user: %d identities, want none", len(ids))
	}
	for _, sess := range aSessions {
		_, err := s.GetSession(ctx, sess.ID)
		wantErr(t, "GetSession of a deleted user's session", err, storage.ErrNotFound)
	}
	if ss := mustListSessions(t, s, a.ID); len(ss) != 0 {
		t.Errorf("ListSessions of a deleted user: %d sessions, want none", len(ss))
	}
	wantVerifiedEmail(t, s, "a@example.com", "")
	wantCount(t, s, 1)
	wantErr(t, "DeleteUser again", s.DeleteUser(ctx, a.ID), storage.ErrNotFound)

	// b is untouched.
	check(t, "GetUser(b)", mustGetUser(t, s, b.ID), b)
	wantIdentityOwner(t, s, bGoogle, b.ID)
	check(t, "GetSession(b)", mustGetSession(t, s, bSession.ID), bSession)
	wantVerifiedEmail(t, s, "b@example.com", b.ID)

	// a's identity and verified email are free again.
	c := newUser(t0, "A@example.com", true)
	cID := newIdentity(c, "google", "g-a", t0)
	mustCreateUser(t, s, c, cID)
	mustAddIdentity(t, s, newIdentity(c, "apple", "ap-a", t0))
	wantIdentityOwner(t, s, aGoogle, c.ID)
	wantVerifiedEmail(t, s, "a@example.com", c.ID)
	check(t, "ListUsers by a's old identity", userIDs(mustListUsers(t, s, storage.UserFilter{Provider: "google", Subject: "g-a"})), []string{c.ID})
	wantCount(t, s, 2)
}

func testListUsersPaging(t *testing.T, s storage.Store) {
	t0 := epoch()
	var all []storage.User
	for i := range 25 {
		u, _ := signUp(t, s, t0, fmt.Sprintf("user%d@example.com", i), i%2 == 0, "google", fmt.Sprintf("g-%d", i))
		all = append(all, u)
	}
	slices.SortFunc(all, func(a, b storage.User) int { return cmp.Compare(a.ID, b.ID) })

	check(t, "ListUsers with no limit", mustListUsers(t, s, storage.UserFilter{}), all)

	var paged []storage.User
	after := ""
	for _, want := range []int{10, 10, 5, 0} {
		page := mustListUsers(t, s, storage.UserFilter{After: after, Limit: 10})
		if len(page) != want {
			t.Fatalf("ListUsers(After %q, Limit 10) = %d users, want %d", after, len(page), want)
		}
		if len(page) > 0 {
			after = page[len(page)-1].ID
		}
		paged = append(paged, page...)
	}
	check(t, "ListUsers pages", paged, all)
	check(t, "ListUsers after the fifth", userIDs(mustListUsers(t, s, storage.UserFilter{After: all[4].ID, Limit: 3})), userIDs(all[5:8]))
}

func testListUsersFilters(t *testing.T, s storage.Store) {
	t0 := epoch()
	a, _ := signUp(t, s, t0, "a@example.com", true, "google", "g-a")
	b, _ := signUp(t, s, t0, "Shared@Example.com", false, "google", "g-b")
	mustAddIdentity(t, s, newIdentity(b, "apple", "ap-b", t0))
	c, _ := signUp(t, s, t0, "shared@example.com", true, "corp", "c-c")
	d, _ := signUp(t, s, t0, "d@example.com", false, "apple", "g-a") // same subject as a, other issuer

	apple := sortedIDs(b, d)
	tests := []struct {
		name   string
		filter storage.UserFilter
		want   []string
	}{
		{"email, any case, verified or not", storage.UserFilter{Email: "SHARED@example.com"}, sortedIDs(b, c)},
		{"email nobody has", storage.UserFilter{Email: "nobody@example.com"}, nil},
		{"provider", storage.UserFilter{Provider: "google"}, sortedIDs(a, b)},
		{"second provider", storage.UserFilter{Provider: "apple"}, apple},
		{"subject", storage.UserFilter{Subject: "g-a"}, sortedIDs(a, d)},
		{"provider and subject of one identity", storage.UserFilter{Provider: "google", Subject: "g-a"}, []string{a.ID}},
		{"provider and subject of different identities", storage.UserFilter{Provider: "google", Subject: "ap-b"}, nil},
		{"email and provider", storage.UserFilter{Email: "shared@example.com", Provider: "google"}, []string{b.ID}},
		{"provider, limit", storage.UserFilter{Provider: "apple", Limit: 1}, apple[:1]},
		{"provider, after", storage.UserFilter{Provider: "apple", After: apple[0]}, apple[1:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, fmt.Sprintf("ListUsers(%+v)", tt.filter), userIDs(mustListUsers(t, s, tt.filter)), tt.want)
		})
	}
}

func testCountUsers(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	wantCount(t, s, 0)
	var users []storage.User
	for i := range 3 {
		u, _ := signUp(t, s, t0, fmt.Sprintf("u%d@example.com", i), true, "google", fmt.Sprintf("g-%d", i))
		users = append(users, u)
	}
	wantCount(t, s, 3)
	dup := newUser(t0, "dup@example.com", false)
	wantErr(t, "CreateUser with a taken identity", s.CreateUser(ctx, dup, newIdentity(dup, "google", "g-0", t0)), storage.ErrIdentityTaken)
	wantCount(t, s, 3)
	if err := s.DeleteUser(ctx, users[1].ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	wantCount(t, s, 2)
}

// Identities.

func testAddIdentity(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	ids := unsortedIDs()
	u := newUser(t0, "ada@example.com", true)
	google := newIdentity(u, "google", "g-ada", t0)
	google.ID = ids[0]
	mustCreateUser(t, s, u, google)
	apple := newIdentity(u, "apple", "ap-ada", t0.Add(time.Minute))
	apple.ID = ids[1]
	apple.Email, apple.EmailVerified = "relay@privaterelay.appleid.com", false
	corp := newIdentity(u, "corp", "c-ada", t0.Add(2*time.Minute).In(zoneWest))
	corp.ID = ids[2]
	mustAddIdentity(t, s, corp) // added out of order: the list is by CreatedAt
	mustAddIdentity(t, s, apple)

	got, err := s.GetIdentity(ctx, apple.Issuer, apple.Subject)
	if err != nil {
		t.Fatalf("GetIdentity: %v", err)
	}
	check(t, "GetIdentity", got, apple)
	check(t, "ListIdentities, oldest first", mustListIdentities(t, s, u.ID), []storage.Identity{google, apple, corp})
	check(t, "GetUser", mustGetUser(t, s, u.ID), u)
	wantCount(t, s, 1)
}

func testAddIdentityTaken(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	u, uID := signUp(t, s, t0, "u@example.com", true, "google", "g-u")
	v, vID := signUp(t, s, t0, "v@example.com", true, "google", "g-v")

	steal := newIdentity(v, "google", "g-u", t0)
	err := s.AddIdentity(ctx, steal)
	wantErr(t, "AddIdentity of another user's identity", err, storage.ErrIdentityTaken)
	wantErr(t, "AddIdentity of another user's identity", err, storage.ErrConflict)
	check(t, "ListIdentities(v)", mustListIdentities(t, s, v.ID), []storage.Identity{vID})
	check(t, "ListIdentities(u)", mustListIdentities(t, s, u.ID), []storage.Identity{uID})
	wantIdentityOwner(t, s, uID, u.ID)

	again := newIdentity(u, "google", "g-u", t0)
	wantErr(t, "AddIdentity of the user's own identity", s.AddIdentity(ctx, again), storage.ErrIdentityTaken)
	check(t, "ListIdentities(u)", mustListIdentities(t, s, u.ID), []storage.Identity{uID})
}

func testDeleteIdentity(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	u, google := signUp(t, s, t0, "u@example.com", true, "google", "g-u")
	apple := newIdentity(u, "apple", "ap-u", t0.Add(time.Minute))
	mustAddIdentity(t, s, apple)
	v, _ := signUp(t, s, t0, "v@example.com", true, "google", "g-v")

	wantErr(t, "DeleteIdentity of another user's identity", s.DeleteIdentity(ctx, v.ID, apple.ID), storage.ErrNotFound)
	wantIdentityOwner(t, s, apple, u.ID)

	if err := s.DeleteIdentity(ctx, u.ID, apple.ID); err != nil {
		t.Fatalf("DeleteIdentity: %v", err)
	}
	wantIdentityOwner(t, s, apple, "")
	check(t, "ListIdentities after DeleteIdentity", mustListIdentities(t, s, u.ID), []storage.Identity{google})
	wantErr(t, "DeleteIdentity again", s.DeleteIdentity(ctx, u.ID, apple.ID), storage.ErrNotFound)
	check(t, "GetUser after DeleteIdentity", mustGetUser(t, s, u.ID), u)

	// The pair is free again.
	moved := newIdentity(v, "apple", "ap-u", t0.Add(2*time.Minute))
	mustAddIdentity(t, s, moved)
	wantIdentityOwner(t, s, moved, v.ID)
}

func testTouchIdentity(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	_, id := signUp(t, s, t0, "u@example.com", true, "google", "g-u")
	at := t0.Add(3 * time.Hour).In(zoneWest)
	if err := s.TouchIdentity(ctx, id.ID, at); err != nil {
		t.Fatalf("TouchIdentity: %v", err)
	}
	want := id
	want.LastLoginAt = at
	got, err := s.GetIdentity(ctx, id.Issuer, id.Subject)
	if err != nil {
		t.Fatalf("GetIdentity: %v", err)
	}
	check(t, "GetIdentity after TouchIdentity", got, want)
}

// Sessions.

func testCreateSession(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	u, _ := signUp(t, s, t0, "u@example.com", true, "google", "g-u")
	sess := newSession(u, t0)
	mustCreateSession(t, s, sess)
	got := mustGetSession(t, s, sess.ID)
	check(t, "GetSession", got, sess)
	if got.Revoked() || got.Expired(t0) {
		t.Errorf("new session: Revoked %v, Expired %v; want neither", got.Revoked(), got.Expired(t0))
	}

	dup := newSession(u, t0.Add(time.Minute))
	dup.ID, dup.ClientID = sess.ID, "other"
	wantErr(t, "CreateSession with a taken id", s.CreateSession(ctx, dup), storage.ErrConflict)
	check(t, "GetSession after the conflict", mustGetSession(t, s, sess.ID), sess)

	orphan := newSession(storage.User{ID: uuid.NewString()}, t0)
	wantErr(t, "CreateSession for a missing user", s.CreateSession(ctx, orphan), storage.ErrNotFound)
	_, err := s.GetSession(ctx, orphan.ID)
	wantErr(t, "GetSession of the refused session", err, storage.ErrNotFound)
}

func testListSessions(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	u, _ := signUp(t, s, t0, "u@example.com", true, "google", "g-u")
	v, _ := signUp(t, s, t0, "v@example.com", true, "google", "g-v")
	ids := unsortedIDs()
	var sessions []storage.Session
	for i, id := range ids {
		sess := newSession(u, t0.Add(time.Duration(i)*time.Minute))
		sess.ID = id
		sessions = append(sessions, sess)
	}
	for _, i := range []int{2, 0, 1} {
		mustCreateSession(t, s, sessions[i])
	}
	mustCreateSession(t, s, newSession(v, t0))
	revokedAt := t0.Add(time.Hour)
	if err := s.RevokeSession(ctx, sessions[1].ID, revokedAt, "logout"); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	sessions[1].RevokedAt, sessions[1].RevokedReason = revokedAt, "logout"

	want := []storage.Session{sessions[2], sessions[1], sessions[0]}
	check(t, "ListSessions, newest first", mustListSessions(t, s, u.ID), want)
	if ss := mustListSessions(t, s, uuid.NewString()); len(ss) != 0 {
		t.Errorf("ListSessions of an unknown user: %d sessions, want none", len(ss))
	}
}

func testRotateSession(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	u, _ := signUp(t, s, t0, "u@example.com", true, "google", "g-u")
	sess := newSession(u, t0)
	mustCreateSession(t, s, sess)

	want := sess
	for gen := sess.Generation; gen < sess.Generation+3; gen++ {
		at := t0.Add(time.Duration(gen) * time.Hour).In(zoneWest)
		idle := at.Add(14 * day)
		got, err := s.RotateSession(ctx, sess.ID, gen, at, idle)
		if err != nil {
			t.Fatalf("RotateSession from %d: %v", gen, err)
		}
		want.Generation, want.RotatedAt, want.IdleExpiresAt = gen+1, at, idle
		check(t, fmt.Sprintf("RotateSession from %d", gen), got, want)
		check(t, fmt.Sprintf("GetSession after rotating from %d", gen), mustGetSession(t, s, sess.ID), want)
	}
}

func testRotateSessionStale(t *testing.T, s storage.Store) {
	t0 := epoch()
	u, _ := signUp(t, s, t0, "u@example.com", true, "google", "g-u")
	at := t0.Add(time.Hour)

	tests := []struct {
		name  string
		setup func(t *testing.T, sess *storage.Session) // may change the stored session; keeps *sess in step
		from  func(sess storage.Session) uint64
		at    func(sess storage.Session) time.Time
	}{
		{
			name: "previous generation",
			setup: func(t *testing.T, sess *storage.Session) {
				rotated, err := s.RotateSession(t.Context(), sess.ID, sess.Generation, at, at.Add(14*day))
				if err != nil {
					t.Fatalf("RotateSession: %v", err)
				}
				*sess = rotated
			},
			from: func(sess storage.Session) uint64 { return sess.Generation - 1 },
		},
		{
			name: "future generation",
			from: func(sess storage.Session) uint64 { return sess.Generation + 1 },
		},
		{
			name: "revoked",
			setup: func(t *testing.T, sess *storage.Session) {
				if err := s.RevokeSession(t.Context(), sess.ID, t0.Add(time.Minute), "logout"); err != nil {
					t.Fatalf("RevokeSession: %v", err)
				}
				sess.RevokedAt, sess.RevokedReason = t0.Add(time.Minute), "logout"
			},
		},
		{
			name: "idle limit reached",
			at:   func(sess storage.Session) time.Time { return sess.IdleExpiresAt },
		},
		{
			name: "absolute limit reached",
			at:   func(sess storage.Session) time.Time { return sess.ExpiresAt },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sess := newSession(u, t0)
			if tt.name == "absolute limit reached" {
				sess.ExpiresAt = t0.Add(time.Hour) // before the idle limit
			}
			mustCreateSession(t, s, sess)
			if tt.setup != nil {
				tt.setup(t, &sess)
			}
			from, rotateAt := sess.Generation, at
			if tt.from != nil {
				from = tt.from(sess)
			}
			if tt.at != nil {
				rotateAt = tt.at(sess)
			}
			got, err := s.RotateSession(t.Context(), sess.ID, from, rotateAt, rotateAt.Add(14*day))
			wantErr(t, "RotateSession", err, storage.ErrStale)
			check(t, "session returned with ErrStale", got, sess)
			check(t, "GetSession after ErrStale", mustGetSession(t, s, sess.ID), sess)
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := s.RotateSession(t.Context(), uuid.NewString(), 1, at, at.Add(14*day))
		wantErr(t, "RotateSession of a missing session", err, storage.ErrNotFound)
	})
}

func testRotateSessionConcurrent(t *testing.T, s storage.Store) {
	const n = 100
	ctx, t0 := t.Context(), epoch()
	u, _ := signUp(t, s, t0, "u@example.com", true, "google", "g-u")
	sess := newSession(u, t0)
	mustCreateSession(t, s, sess)

	type result struct {
		sess storage.Session
		err  error
	}
	results := make([]result, n)
	atOnce(n, func(i int) {
		at := t0.Add(time.Duration(i+1) * time.Second)
		got, err := s.RotateSession(ctx, sess.ID, sess.Generation, at, at.Add(14*day))
		results[i] = result{got, err}
	})

	winner := -1
	for i, r := range results {
		switch {
		case r.err == nil && winner >= 0:
			t.Errorf("rotations %d and %d both won from generation %d", winner, i, sess.Generation)
		case r.err == nil:
			winner = i
		case !errors.Is(r.err, storage.ErrStale):
			t.Errorf("rotation %d: err = %v, want nil or ErrStale", i, r.err)
		}
	}
	if winner < 0 {
		t.Fatal("no rotation won")
	}
	won := results[winner].sess
	if won.Generation != sess.Generation+1 {
		t.Errorf("winner's generation = %d, want %d", won.Generation, sess.Generation+1)
	}
	stored := mustGetSession(t, s, sess.ID)
	check(t, "GetSession after the race", stored, won)
	for i, r := range results {
		if i != winner && errors.Is(r.err, storage.ErrStale) {
			check(t, fmt.Sprintf("session returned to loser %d", i), r.sess, won)
		}
	}
}

func testRevokeSession(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	u, _ := signUp(t, s, t0, "u@example.com", true, "google", "g-u")
	sess := newSession(u, t0)
	mustCreateSession(t, s, sess)

	at := t0.Add(time.Hour).In(zoneWest)
	if err := s.RevokeSession(ctx, sess.ID, at, "logout"); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	want := sess
	want.RevokedAt, want.RevokedReason = at, "logout"
	got := mustGetSession(t, s, sess.ID)
	check(t, "GetSession after RevokeSession", got, want)
	if !got.Revoked() {
		t.Error("Revoked() = false after RevokeSession")
	}

	// Idempotent: the first time and reason stay.
	if err := s.RevokeSession(ctx, sess.ID, at.Add(time.Hour), "reused"); err != nil {
		t.Fatalf("RevokeSession again: %v", err)
	}
	check(t, "GetSession after revoking twice", mustGetSession(t, s, sess.ID), want)
}

func testRevokeUserSessions(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	u, _ := signUp(t, s, t0, "u@example.com", true, "google", "g-u")
	v, _ := signUp(t, s, t0, "v@example.com", true, "google", "g-v")
	var live []storage.Session
	for i := range 3 {
		sess := newSession(u, t0.Add(time.Duration(i)*time.Minute))
		mustCreateSession(t, s, sess)
		live = append(live, sess)
	}
	old := newSession(u, t0)
	mustCreateSession(t, s, old)
	if err := s.RevokeSession(ctx, old.ID, t0.Add(time.Minute), "logout"); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	old.RevokedAt, old.RevokedReason = t0.Add(time.Minute), "logout"
	at := t0.Add(time.Hour)
	expired := newSession(u, t0)
	expired.IdleExpiresAt = at.Add(-time.Second)
	mustCreateSession(t, s, expired)
	others := newSession(v, t0)
	mustCreateSession(t, s, others)

	n, err := s.RevokeUserSessions(ctx, u.ID, live[0].ID, at, "password changed")
	if err != nil {
		t.Fatalf("RevokeUserSessions: %v", err)
	}
	if n != 2 {
		t.Errorf("RevokeUserSessions revoked %d sessions, want 2", n)
	}
	check(t, "the excepted session", mustGetSession(t, s, live[0].ID), live[0])
	for _, sess := range live[1:] {
		want := sess
		want.RevokedAt, want.RevokedReason = at, "password changed"
		check(t, "a revoked session", mustGetSession(t, s, sess.ID), want)
	}
	check(t, "the session revoked before", mustGetSession(t, s, old.ID), old)
	check(t, "the expired session", mustGetSession(t, s, expired.ID), expired)
	check(t, "another user's session", mustGetSession(t, s, others.ID), others)

	n, err = s.RevokeUserSessions(ctx, u.ID, "", at.Add(time.Minute), "signed out everywhere")
	if err != nil || n != 1 {
		t.Errorf("RevokeUserSessions with no exception = %d, %v; want 1, nil", n, err)
	}
	n, err = s.RevokeUserSessions(ctx, uuid.NewString(), "", at, "x")
	if err != nil || n != 0 {
		t.Errorf("RevokeUserSessions of an unknown user = %d, %v; want 0, nil", n, err)
	}
}

func testDeleteExpiredSessions(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	u, _ := signUp(t, s, t0, "u@example.com", true, "google", "g-u")
	v, _ := signUp(t, s, t0, "v@example.com", true, "google", "g-v")
	now := t0.Add(day)

	live := newSession(u, t0)
	otherLive := newSession(v, t0)
	idleExpired := newSession(u, t0)
	idleExpired.IdleExpiresAt = t0.Add(time.Hour)
	idleAtNow := newSession(u, t0)
	idleAtNow.IdleExpiresAt = now
	absExpired := newSession(v, t0)
	absExpired.ExpiresAt = t0.Add(12 * time.Hour)
	revoked := newSession(u, t0)
	for _, sess := range []storage.Session{live, otherLive, idleExpired, idleAtNow, absExpired, revoked} {
		mustCreateSession(t, s, sess)
	}
	if err := s.RevokeSession(ctx, revoked.ID, t0.Add(time.Hour), "logout"); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}

	n, err := s.DeleteExpiredSessions(ctx, now)
	if err != nil {
		t.Fatalf("DeleteExpiredSessions: %v", err)
	}
	if n != 4 {
		t.Errorf("DeleteExpiredSessions removed %d sessions, want 4", n)
	}
	for _, sess := range []storage.Session{idleExpired, idleAtNow, absExpired, revoked} {
		_, err := s.GetSession(ctx, sess.ID)
		wantErr(t, "GetSession of a removed session", err, storage.ErrNotFound)
	}
	check(t, "ListSessions(u) after the sweep", mustListSessions(t, s, u.ID), []storage.Session{live})
	check(t, "ListSessions(v) after the sweep", mustListSessions(t, s, v.ID), []storage.Session{otherLive})

	n, err = s.DeleteExpiredSessions(ctx, now)
	if err != nil || n != 0 {
		t.Errorf("DeleteExpiredSessions again = %d, %v; want 0, nil", n, err)
	}
	// The index entries went with the records: deleting the user still works.
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatalf("DeleteUser after the sweep: %v", err)
	}
}

// Signing keys, secrets, audit.

func testSigningKeys(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	if ks, err := s.ListSigningKeys(ctx); err != nil || len(ks) != 0 {
		t.Fatalf("ListSigningKeys of an empty store = %d keys, %v; want none", len(ks), err)
	}
	k1 := storage.SigningKey{ID: "kid-b", Algorithm: "ES256", PrivateKey: []byte{0x30, 0x81, 0x87, 0x02, 0x01, 0x00}, CreatedAt: t0, NotBefore: t0.Add(time.Hour)}
	k2 := storage.SigningKey{ID: "kid-c", Algorithm: "EdDSA", PrivateKey: []byte{0x30, 0x2e, 0x02, 0x01}, CreatedAt: t0.Add(-time.Hour), NotBefore: t0.Add(-time.Hour)}
	k3 := storage.SigningKey{ID: "kid-a", Algorithm: "RS256", PrivateKey: []byte{0x30, 0x82, 0x04, 0xbd}, CreatedAt: t0.Add(time.Hour), NotBefore: t0.Add(2 * time.Hour)}
	for _, k := range []storage.SigningKey{k1, k2, k3} {
		if err := s.CreateSigningKey(ctx, k); err != nil {
			t.Fatalf("CreateSigningKey(%s): %v", k.ID, err)
		}
	}
	list := func(what string, want ...storage.SigningKey) {
		t.Helper()
		got, err := s.ListSigningKeys(ctx)
		if err != nil {
			t.Fatalf("ListSigningKeys: %v", err)
		}
		check(t, what, got, want)
	}
	list("ListSigningKeys, oldest first", k2, k1, k3)

	dup := k1
	dup.Algorithm, dup.PrivateKey = "RS256", []byte{1}
	wantErr(t, "CreateSigningKey with a taken id", s.CreateSigningKey(ctx, dup), storage.ErrConflict)
	list("ListSigningKeys after the conflict", k2, k1, k3)

	upd := k1
	upd.NotBefore = t0.Add(10 * time.Minute).In(zoneWest)
	upd.RetiredAt = t0.Add(30 * day)
	upd.ExpiresAt = t0.Add(31 * day)
	upd.Algorithm, upd.PrivateKey = "RS256", []byte{9, 9, 9} // not times: must be ignored
	if err := s.UpdateSigningKey(ctx, upd); err != nil {
		t.Fatalf("UpdateSigningKey: %v", err)
	}
	k1.NotBefore, k1.RetiredAt, k1.ExpiresAt = upd.NotBefore, upd.RetiredAt, upd.ExpiresAt
	list("ListSigningKeys after UpdateSigningKey", k2, k1, k3)

	if err := s.DeleteSigningKey(ctx, k2.ID); err != nil {
		t.Fatalf("DeleteSigningKey: %v", err)
	}
	list("ListSigningKeys after DeleteSigningKey", k1, k3)
	wantErr(t, "DeleteSigningKey again", s.DeleteSigningKey(ctx, k2.ID), storage.ErrNotFound)
	wantErr(t, "UpdateSigningKey of a deleted key", s.UpdateSigningKey(ctx, k2), storage.ErrNotFound)
}

func testEnsureSecret(t *testing.T, s storage.Store) {
	ctx := t.Context()
	ensure := func(name, value, want string) {
		t.Helper()
		got, err := s.EnsureSecret(ctx, name, []byte(value))
		if err != nil {
			t.Fatalf("EnsureSecret(%s): %v", name, err)
		}
		if string(got) != want {
			t.Errorf("EnsureSecret(%s, %q) = %q, want %q", name, value, got, want)
		}
	}
	ensure("refresh-mac", "first", "first")
	ensure("refresh-mac", "second", "first")
	ensure("link-token", "other", "other")
	ensure("refresh-mac", "third", "first")
}

func testEnsureSecretConcurrent(t *testing.T, s storage.Store) {
	const n = 20
	ctx := t.Context()
	got := make([][]byte, n)
	errs := make([]error, n)
	offered := map[string]bool{}
	values := make([]string, n)
	for i := range n {
		values[i] = fmt.Sprintf("value-%02d", i)
		offered[values[i]] = true
	}
	atOnce(n, func(i int) { got[i], errs[i] = s.EnsureSecret(ctx, "refresh-mac", []byte(values[i])) })

	for i, err := range errs {
		if err != nil {
			t.Fatalf("EnsureSecret %d: %v", i, err)
		}
	}
	winner := string(got[0])
	if !offered[winner] {
		t.Fatalf("EnsureSecret returned %q, which nobody offered", winner)
	}
	for i, v := range got {
		if string(v) != winner {
			t.Errorf("EnsureSecret %d = %q, caller 0 got %q: the first writer must win for everyone", i, v, winner)
		}
	}
	later, err := s.EnsureSecret(ctx, "refresh-mac", []byte("late"))
	if err != nil || string(later) != winner {
		t.Errorf("EnsureSecret afterwards = %q, %v; want %q", later, err, winner)
	}
}

func testAudit(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	u1, u2 := uuid.NewString(), uuid.NewString()
	kinds := []struct{ typ, user string }{
		{"user.created", u1},
		{"session.created", u1},
		{"user.created", u2},
		{"session.reused", u1},
		{"session.created", u2},
		{"identity.linked", u1},
	}
	var events []storage.AuditEvent
	for i, k := range kinds {
		id, err := uuid.NewV7()
		if err != nil {
			t.Fatal(err)
		}
		e := storage.AuditEvent{
			ID:        id.String(),
			Time:      t0.Add(time.Duration(i) * time.Minute),
			Type:      k.typ,
			UserID:    k.user,
			SessionID: uuid.NewString(),
			Provider:  "google",
			Detail:    fmt.Sprintf(`{"n":%d}`, i),
		}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
		events = append(events, e)
	}
	pick := func(is ...int) []storage.AuditEvent {
		var out []storage.AuditEvent
		for _, i := range is {
			out = append(out, events[i])
		}
		return out
	}
	minute := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }

	tests := []struct {
		name   string
		filter storage.AuditFilter
		want   []storage.AuditEvent
	}{
		{"all, newest first", storage.AuditFilter{}, pick(5, 4, 3, 2, 1, 0)},
		{"user", storage.AuditFilter{UserID: u1}, pick(5, 3, 1, 0)},
		{"type", storage.AuditFilter{Type: "session.created"}, pick(4, 1)},
		{"since is inclusive", storage.AuditFilter{Since: minute(2)}, pick(5, 4, 3, 2)},
		{"until is exclusive", storage.AuditFilter{Until: minute(4)}, pick(3, 2, 1, 0)},
		{"since, until and user", storage.AuditFilter{Since: minute(1), Until: minute(4), UserID: u1}, pick(3, 1)},
		{"limit", storage.AuditFilter{Limit: 2}, pick(5, 4)},
		{"limit and user", storage.AuditFilter{UserID: u2, Limit: 2}, pick(4, 2)},
		{"since after the last", storage.AuditFilter{Since: minute(6)}, nil},
		{"until before the first", storage.AuditFilter{Until: minute(0)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListAudit(ctx, tt.filter)
			if err != nil {
				t.Fatalf("ListAudit: %v", err)
			}
			check(t, fmt.Sprintf("ListAudit(%+v)", tt.filter), got, tt.want)
		})
	}
}

// Cross-cutting.

// testTimesAreUTC writes every time field of every record in a non-UTC
// location and reads each back through every method that returns it. check
// fails on any time not in UTC or not equal to the microsecond.
func testTimesAreUTC(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	west := func(d time.Duration) time.Time { return t0.Add(d).In(zoneWest) }

	u := newUser(west(0), "ada@example.com", true)
	u.UpdatedAt = west(time.Minute)
	id := newIdentity(u, "google", "g-ada", west(2*time.Minute))
	id.LastLoginAt = west(3 * time.Minute)
	mustCreateUser(t, s, u, id)
	id2 := newIdentity(u, "apple", "ap-ada", west(4*time.Minute))
	mustAddIdentity(t, s, id2)
	check(t, "GetUser", mustGetUser(t, s, u.ID), u)
	byEmail, err := s.GetUserByVerifiedEmail(ctx, u.Email)
	if err != nil {
		t.Fatalf("GetUserByVerifiedEmail: %v", err)
	}
	check(t, "GetUserByVerifiedEmail", byEmail, u)
	check(t, "ListUsers", mustListUsers(t, s, storage.UserFilter{}), []storage.User{u})
	got, err := s.GetIdentity(ctx, id.Issuer, id.Subject)
	if err != nil {
		t.Fatalf("GetIdentity: %v", err)
	}
	check(t, "GetIdentity", got, id)
	check(t, "ListIdentities", mustListIdentities(t, s, u.ID), []storage.Identity{id, id2})

	sess := newSession(u, west(5*time.Minute))
	mustCreateSession(t, s, sess)
	check(t, "GetSession", mustGetSession(t, s, sess.ID), sess)
	rotated, err := s.RotateSession(ctx, sess.ID, sess.Generation, west(6*time.Minute), west(14*day))
	if err != nil {
		t.Fatalf("RotateSession: %v", err)
	}
	sess.Generation, sess.RotatedAt, sess.IdleExpiresAt = sess.Generation+1, west(6*time.Minute), west(14*day)
	check(t, "RotateSession", rotated, sess)
	stale, err := s.RotateSession(ctx, sess.ID, 0, west(7*time.Minute), west(15*day))
	wantErr(t, "RotateSession from an old generation", err, storage.ErrStale)
	check(t, "RotateSession's stale session", stale, sess)
	if err := s.RevokeSession(ctx, sess.ID, west(8*time.Minute), "logout"); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	sess.RevokedAt, sess.RevokedReason = west(8*time.Minute), "logout"
	check(t, "GetSession of a revoked session", mustGetSession(t, s, sess.ID), sess)
	check(t, "ListSessions", mustListSessions(t, s, u.ID), []storage.Session{sess})

	k := storage.SigningKey{ID: "kid", Algorithm: "ES256", PrivateKey: []byte{1, 2, 3}, CreatedAt: west(0), NotBefore: west(time.Hour), RetiredAt: west(day), ExpiresAt: west(2 * day)}
	if err := s.CreateSigningKey(ctx, k); err != nil {
		t.Fatalf("CreateSigningKey: %v", err)
	}
	keys, err := s.ListSigningKeys(ctx)
	if err != nil {
		t.Fatalf("ListSigningKeys: %v", err)
	}
	check(t, "ListSigningKeys", keys, []storage.SigningKey{k})

	e := storage.AuditEvent{ID: uuid.NewString(), Time: west(9 * time.Minute), Type: "user.created", UserID: u.ID}
	if err := s.AppendAudit(ctx, e); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	events, err := s.ListAudit(ctx, storage.AuditFilter{})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	check(t, "ListAudit", events, []storage.AuditEvent{e})
}

func testNotFound(t *testing.T, s storage.Store) {
	t0 := epoch()
	u, _ := signUp(t, s, t0, "u@example.com", true, "google", "g-u")
	missing := func() string { return uuid.NewString() }
	ghost := storage.User{ID: missing()}

	tests := []struct {
		name string
		call func(t *testing.T) error
	}{
		{"GetUser", func(t *testing.T) error { _, err := s.GetUser(t.Context(), missing()); return err }},
		{"GetUserByVerifiedEmail", func(t *testing.T) error {
			_, err := s.GetUserByVerifiedEmail(t.Context(), "nobody@example.com")
			return err
		}},
		{"UpdateUser", func(t *testing.T) error { return s.UpdateUser(t.Context(), newUser(t0, "x@example.com", true)) }},
		{"DeleteUser", func(t *testing.T) error { return s.DeleteUser(t.Context(), missing()) }},
		{"AddIdentity", func(t *testing.T) error {
			return s.AddIdentity(t.Context(), newIdentity(ghost, "google", "g-ghost", t0))
		}},
		{"GetIdentity", func(t *testing.T) error {
			_, err := s.GetIdentity(t.Context(), issuer("google"), "nobody")
			return err
		}},
		{"GetIdentity of another issuer", func(t *testing.T) error {
			_, err := s.GetIdentity(t.Context(), issuer("apple"), "g-u")
			return err
		}},
		{"DeleteIdentity", func(t *testing.T) error { return s.DeleteIdentity(t.Context(), u.ID, missing()) }},
		{"TouchIdentity", func(t *testing.T) error { return s.TouchIdentity(t.Context(), missing(), t0) }},
		{"CreateSession", func(t *testing.T) error { return s.CreateSession(t.Context(), newSession(ghost, t0)) }},
		{"GetSession", func(t *testing.T) error { _, err := s.GetSession(t.Context(), missing()); return err }},
		{"RotateSession", func(t *testing.T) error {
			_, err := s.RotateSession(t.Context(), missing(), 1, t0, t0.Add(day))
			return err
		}},
		{"RevokeSession", func(t *testing.T) error { return s.RevokeSession(t.Context(), missing(), t0, "logout") }},
		{"UpdateSigningKey", func(t *testing.T) error {
			return s.UpdateSigningKey(t.Context(), storage.SigningKey{ID: "nokid", CreatedAt: t0})
		}},
		{"DeleteSigningKey", func(t *testing.T) error { return s.DeleteSigningKey(t.Context(), "nokid") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, tt.name, tt.call(t), storage.ErrNotFound)
		})
	}
	t.Run("lists are empty", func(t *testing.T) {
		ctx := t.Context()
		if ids := mustListIdentities(t, s, ghost.ID); len(ids) != 0 {
			t.Errorf("ListIdentities of a missing user = %d, want none", len(ids))
		}
		if ss := mustListSessions(t, s, ghost.ID); len(ss) != 0 {
			t.Errorf("ListSessions of a missing user = %d, want none", len(ss))
		}
		if ks, err := s.ListSigningKeys(ctx); err != nil || len(ks) != 0 {
			t.Errorf("ListSigningKeys = %d keys, %v; want none", len(ks), err)
		}
		if es, err := s.ListAudit(ctx, storage.AuditFilter{}); err != nil || len(es) != 0 {
			t.Errorf("ListAudit = %d events, %v; want none", len(es), err)
		}
	})
	// None of the failed calls wrote anything.
	wantCount(t, s, 1)
	check(t, "ListUsers", userIDs(mustListUsers(t, s, storage.UserFilter{})), []string{u.ID})
	check(t, "ListSessions", mustListSessions(t, s, u.ID), []storage.Session(nil))
}

// testNoAliasing: what a caller passes in or gets back is its own; changing
// it changes nothing stored.
func testNoAliasing(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	u := newUser(t0, "u@example.com", true)
	u.Roles = []string{"admin", "member"}
	mustCreateUser(t, s, u, newIdentity(u, "google", "g-u", t0))
	u.Roles[0] = "changed after CreateUser"
	got := mustGetUser(t, s, u.ID)
	if got.Roles[0] != "admin" {
		t.Errorf("Roles[0] = %q after changing the caller's slice, want admin", got.Roles[0])
	}
	got.Roles[1] = "changed after GetUser"
	if again := mustGetUser(t, s, u.ID); again.Roles[1] != "member" {
		t.Errorf("Roles[1] = %q after changing a returned slice, want member", again.Roles[1])
	}

	key := []byte{1, 2, 3, 4}
	if err := s.CreateSigningKey(ctx, storage.SigningKey{ID: "kid", Algorithm: "ES256", PrivateKey: key, CreatedAt: t0}); err != nil {
		t.Fatalf("CreateSigningKey: %v", err)
	}
	key[0] = 9
	keys, err := s.ListSigningKeys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("ListSigningKeys = %d keys, %v; want 1", len(keys), err)
	}
	if keys[0].PrivateKey[0] != 1 {
		t.Errorf("PrivateKey[0] = %d after changing the caller's slice, want 1", keys[0].PrivateKey[0])
	}
	keys[0].PrivateKey[1] = 9
	keys, err = s.ListSigningKeys(ctx)
	if err != nil || keys[0].PrivateKey[1] != 2 {
		t.Errorf("PrivateKey[1] after changing a returned slice = %v, %v; want 2", keys[0].PrivateKey[1], err)
	}

	secret := []byte("secret")
	first, err := s.EnsureSecret(ctx, "mac", secret)
	if err != nil {
		t.Fatalf("EnsureSecret: %v", err)
	}
	secret[0], first[1] = 'X', 'X'
	stored, err := s.EnsureSecret(ctx, "mac", []byte("other"))
	if err != nil || string(stored) != "secret" {
		t.Fatalf("EnsureSecret after changing the slices = %q, %v; want %q", stored, err, "secret")
	}
	stored[2] = 'X' // the stored value, returned: still the caller's to change
	if again, err := s.EnsureSecret(ctx, "mac", []byte("other")); err != nil || string(again) != "secret" {
		t.Errorf("EnsureSecret after changing a returned stored value = %q, %v; want %q", again, err, "secret")
	}
}

func testPing(t *testing.T, s storage.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
