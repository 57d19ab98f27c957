package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/authex/authex/storage"
)

// The hot paths' capabilities (storage/signin.go). Each is one round trip:
// a single statement, or a pgx batch, which the server runs as one
// implicit transaction (all its statements commit together, or none does)
// and which pgx sends at once.

var (
	_ storage.SignInWriter       = (*Store)(nil)
	_ storage.HotReader          = (*Store)(nil)
	_ storage.EnabledUserRotator = (*Store)(nil)
	_ storage.SessionRevoker     = (*Store)(nil)
)

// qualified prefixes every column of a column list with a table alias.
func qualified(alias, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = alias + "." + c
	}
	return strings.Join(cols, ", ")
}

// sessionLockKey names the transaction advisory lock that makes the
// sign-ins of one user count its live sessions in turn. Two users sharing
// a key only wait for each other.
func sessionLockKey(userID string) int64 {
	h := fnv.New64a()
	io.WriteString(h, "authex:sessions:"+userID)
	return int64(h.Sum64())
}

// signInSQL writes a sign-in and reads back what the caller needs, in one
// statement. ident locks the identity (FOR SHARE) while it is still the
// user's, so an unlink or a move waits for this transaction, and one that
// committed first leaves ident empty: then nothing below writes, as each
// write hangs off ident.
//
// cred records the credential as RecordCredential does: the primary key
// makes concurrent records of one key queue, and the conditional DO UPDATE
// replaces only a record expired at $25, so of concurrent sign-ins with one
// key exactly one gets a row back. The session insert hangs off that row
// (when there is a key), and the touch and the audit rows off the session:
// a live record means nothing is written, which the caller tells from a
// stale identity by ident having matched.
//
// live counts the user's live sessions when $26. The statement's snapshot
// is taken when it starts, after the lock statement before it (READ
// COMMITTED), so it sees every earlier sign-in of the user, but not its
// own session: the caller adds that one.
//
// The final SELECT lists the user's identities while ident matched, the
// touched one with its new last_login_at (the snapshot predates the
// touch), each row followed by whether the session was written and the
// live count.
//
// $1 issuer, $2 subject, $3..$15 the session (sessionColumns), $16
// credential key hash (NULL: none), $17 its expiry, $18..$24 the audit
// events' columns as arrays, $25 now, $26 whether to count, and with a
// touch $27 its time.
//
// With a touch, ident takes the row lock the touch needs (FOR NO KEY
// UPDATE) at once: two concurrent sign-ins of one identity that each held
// FOR SHARE and then both wanted to update the row would deadlock. Without
// one (the common case: the touch is hourly), the statement has no touch
// at all: an UPDATE the plan carries costs the server its start-up (the
// table and its four indexes opened) even when it updates nothing.
var (
	signInSQL      = signInStatement(false)
	signInTouchSQL = signInStatement(true)
)

func signInStatement(touch bool) string {
	lock, touchCTE, from, lastLogin := "FOR SHARE", "", "identities i", "i.last_login_at"
	if touch {
		lock = "FOR NO KEY UPDATE"
		touchCTE = `
), touch AS (
	UPDATE identities SET last_login_at = $27
	WHERE id = (SELECT id FROM ident) AND EXISTS (SELECT 1 FROM sess)
	RETURNING id, last_login_at`
		// The snapshot of the statement predates the touch.
		from, lastLogin = "identities i LEFT JOIN touch t ON t.id = i.id", "coalesce(t.last_login_at, i.last_login_at)"
	}
	columns := strings.Replace(qualified("i", identityColumns), "i.last_login_at", lastLogin, 1)
	return `WITH ident AS (
	SELECT id FROM identities WHERE issuer = $1 AND subject = $2 AND user_id = $4 ` + lock + `
), cred AS (
	INSERT INTO credentials (key_hash, expires_at) SELECT $16, $17 FROM ident WHERE $16::bytea IS NOT NULL
	ON CONFLICT (key_hash) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE credentials.expires_at <= $25
	RETURNING 1
), sess AS (
	INSERT INTO sessions (` + sessionColumns + `, sweep_at)
	SELECT $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, ` + sweepAtOf("$10", "$11", "$12") + ` FROM ident
	WHERE $16::bytea IS NULL OR EXISTS (SELECT 1 FROM cred)
	RETURNING id` + touchCTE + `
), audit AS (
	INSERT INTO audit_events (id, time, type, user_id, session_id, provider, detail)
	SELECT a.* FROM sess, unnest($18::text[], $19::timestamptz[], $20::text[], $21::text[], $22::text[], $23::text[], $24::text[])
		AS a (id, time, type, user_id, session_id, provider, detail)
), live AS (
	SELECT count(*) AS n FROM sessions
	WHERE $26::boolean AND user_id = $4 AND revoked_at IS NULL AND idle_expires_at > $25 AND expires_at > $25
)
SELECT ` + columns + `, EXISTS (SELECT 1 FROM sess), (SELECT n FROM live)
FROM ` + from + `
WHERE i.user_id = $4 AND EXISTS (SELECT 1 FROM ident)
ORDER BY i.created_at, i.id`
}

// WriteSignIn implements storage.SignInWriter in one round trip: with
// CountLive, a batch of the user's session lock then signInSQL, which the
// server runs as one implicit transaction; else signInSQL alone. The lock
// is a statement of its own because a READ COMMITTED statement sees what
// committed before it started: taken inside signInSQL, the lock would be
// granted after the snapshot, and a sign-in of the user that committed
// while this one waited would be missing from the count.
//
// Concurrent calls are grouped (s.signIns): several sign-ins go as one
// batch, one transaction: the session locks of their users in one
// statement, in key order, then each sign-in's signInSQL in the order of
// their identities (so two groups, on any instances, never wait for each
// other's locks in a circle). A later statement of the transaction sees
// what an earlier one wrote, so two sign-ins of one user in a group count
// each other's sessions, and of two with one credential key the later
// finds it recorded, as they would one after the other.
func (s *Store) WriteSignIn(ctx context.Context, in storage.SignIn) (storage.SignedIn, error) {
	sess := in.Session
	if sess.ID == "" {
		return storage.SignedIn{}, errEmpty("session id")
	}
	w, err := newSignInWrite(in)
	if err != nil {
		return storage.SignedIn{}, err
	}
	if s.signIns == nil { // a view: its own transaction
		err = s.writeSignIns(ctx, []*signInWrite{&w})
	} else {
		item := s.signIns.do(ctx, w)
		w, err = item.req, item.err
	}
	if err != nil {
		return storage.SignedIn{}, fmt.Errorf("postgres: write sign-in %q: %w", sess.ID, err)
	}
	if !w.matched {
		return storage.SignedIn{}, fmt.Errorf("postgres: write sign-in %q: identity %s %s is not user %q's: %w",
			sess.ID, in.Issuer, in.Subject, sess.UserID, storage.ErrStale)
	}
	if !w.written {
		return storage.SignedIn{}, fmt.Errorf("postgres: write sign-in %q: credential already recorded: %w", sess.ID, storage.ErrConflict)
	}
	out := w.out
	if in.CountLive {
		out.LiveSessions++ // the new session, which the count's snapshot predates
	}
	return out, nil
}

// signInWrite is one call of WriteSignIn: its statement, and its answer.
type signInWrite struct {
	stmt    string
	args    []any
	lock    bool // the user's session lock first (CountLive)
	lockKey int64
	// The identity whose row the statement locks, and whether it touches
	// it (FOR NO KEY UPDATE, else FOR SHARE).
	issuer, subject string
	touch           bool

	out              storage.SignedIn
	matched, written bool
}

func newSignInWrite(in storage.SignIn) (signInWrite, error) {
	sess := in.Session
	var credKey []byte
	if in.CredentialKey != "" {
		credKey = hashKey(in.CredentialKey)
	}
	n := len(in.Audit)
	ids, types, users, sids, provs, details := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	times := make([]pgtype.Timestamptz, n)
	for i, e := range in.Audit {
		if e.ID == "" || e.Time.IsZero() {
			return signInWrite{}, fmt.Errorf("postgres: write sign-in: audit event %q without id or time", e.Type)
		}
		ids[i], times[i], types[i], users[i], sids[i], provs[i], details[i] = e.ID, ts(e.Time), e.Type, e.UserID, e.SessionID, e.Provider, e.Detail
	}
	w := signInWrite{stmt: signInSQL, lock: in.CountLive, lockKey: sessionLockKey(sess.UserID), issuer: in.Issuer, subject: in.Subject}
	w.args = []any{in.Issuer, in.Subject,
		sess.ID, sess.UserID, sess.Provider, sess.ClientID, int64(sess.Generation), ts(sess.RotatedAt), ts(sess.CreatedAt),
		ts(sess.IdleExpiresAt), ts(sess.ExpiresAt), ts(sess.RevokedAt), sess.RevokedReason, sess.UserAgent, sess.IP,
		credKey, ts(in.CredentialExpiresAt),
		ids, times, types, users, sids, provs, details,
		ts(in.Now), in.CountLive,
	}
	if !in.TouchAt.IsZero() {
		w.stmt, w.touch = signInTouchSQL, true
		w.args = append(w.args, ts(in.TouchAt))
	}
	return w, nil
}

// signInGroup is the group's run: the sign-ins in one transaction, or,
// when that fails (aloneAfter), each in its own.
func (s *Store) signInGroup(ctx context.Context, items []*groupItem[signInWrite]) {
	ws := make([]*signInWrite, len(items))
	for i, it := range items {
		ws[i] = &it.req
	}
	err := s.writeSignIns(ctx, ws)
	for _, it := range items {
		switch {
		case err == nil:
		case len(items) > 1 && aloneAfter(ctx, err):
			it.err = s.writeSignIns(ctx, []*signInWrite{&it.req})
		default:
			it.err = err
		}
	}
}

// inIdentityOrder is ws ordered by identity (issuer, subject), one
// identity's sign-ins those that touch it first (touchFirst), then in the
// order they came: the order in which a
// group's statements lock the identities' rows. Two groups with rows in
// common then take them in one order; in the order the sign-ins came,
// each could hold one row the other's next statement waits for (a
// touch's FOR NO KEY UPDATE against a FOR SHARE) until the deadlock
// detector broke one (TestSignInGroupsNeverDeadlock). Sign-ins of
// different identities are concurrent requests: any order is one they
// could have had.
func inIdentityOrder(ws []*signInWrite) []*signInWrite {
	if len(ws) < 2 {
		return ws
	}
	ws = slices.Clone(ws)
	slices.SortStableFunc(ws, func(a, b *signInWrite) int {
		return cmp.Or(cmp.Compare(a.issuer, b.issuer), cmp.Compare(a.subject, b.subject), touchFirst(a, b))
	})
	return ws
}

// touchFirst orders one identity's sign-ins that touch it before those
// that do not: a group whose first statement on the row took FOR SHARE
// and whose later one wanted FOR NO KEY UPDATE would hold the weaker lock
// while waiting for the stronger, and two such groups would each wait for
// the other (TestSignInGroupsNeverDeadlock, "share then touch").
func touchFirst(a, b *signInWrite) int {
	switch {
	case a.touch == b.touch:
		return 0
	case a.touch:
		return -1
	}
	return 1
}

// writeSignIns writes ws in one batch, one transaction: the locks they
// need, in key order, then their statements in identity order
// (inIdentityOrder).
func (s *Store) writeSignIns(ctx context.Context, ws []*signInWrite) error {
	var keys []int64
	for _, w := range ws {
		if w.lock {
			keys = append(keys, w.lockKey)
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	ws = inIdentityOrder(ws)
	return s.doRefusable(ctx, func() error { return s.sendSignIns(ctx, keys, ws) })
}

// sendSignIns is writeSignIns' one batch: the advisory locks of keys,
// then ws' statements in their order. It resets each answer before it
// reads it, as s.do may send it again.
func (s *Store) sendSignIns(ctx context.Context, keys []int64, ws []*signInWrite) error {
	b := &pgx.Batch{}
	switch len(keys) {
	case 0:
	case 1:
		b.Queue(`SELECT pg_advisory_xact_lock($1)`, keys[0])
	default:
		// unnest yields the keys in the array's order.
		b.Queue(`SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k`, keys)
	}
	for _, w := range ws {
		w.out, w.matched, w.written = storage.SignedIn{}, false, false
		b.Queue(w.stmt, w.args...).Query(func(rows pgx.Rows) error {
			var err error
			w.out.Identities, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Identity, error) {
				return scanIdentity(rowWithTail{row: r, tail: []any{&w.written, &w.out.LiveSessions}})
			})
			w.matched = len(w.out.Identities) > 0
			return err
		})
	}
	return s.db.SendBatch(ctx, b).Close()
}

// The joined statements of the hot reads and the refresh, built once.
// rotateOfEnabledUserSQL: $1 session id, $2 the generation it must be at,
// $3 now, $4 the new idle limit, $5 the refreshing client (” when none).
var (
	getIdentityUserSQL = `SELECT ` + qualified("i", identityColumns) + `, ` + qualified("u", userColumns) + `
		FROM identities i JOIN users u ON u.id = i.user_id WHERE i.issuer = $1 AND i.subject = $2`
	getSessionUserSQL = `SELECT ` + qualified("s", sessionColumns) + `, ` + qualified("u", userColumns) + `
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1`
	rotateOfEnabledUserSQL = `UPDATE sessions s
		SET generation = s.generation + 1, rotated_at = $3, idle_expires_at = LEAST($4, s.expires_at), sweep_at = ` + sweepAtLowered("s.", "$4") + `
		FROM users u
		WHERE s.id = $1 AND u.id = s.user_id AND NOT u.disabled AND ($5 = '' OR s.client_id IN ('', $5))
		  AND s.generation = $2 AND s.revoked_at IS NULL AND s.idle_expires_at > $3 AND s.expires_at > $3
		RETURNING ` + qualified("s", sessionColumns) + `, ` + qualified("u", userColumns)
	// rotateGroupSQL is rotateOfEnabledUserSQL for several sessions in one
	// statement: $1..$5 are arrays of its parameters, one element a
	// rotation, and each row returned ends with the rotation's number
	// (from 1). id = ANY($1) lets the primary key find the rows whatever
	// plan the statement gets. Of two rotations of one session, the row is
	// updated once, for one of them (PostgreSQL's UPDATE ... FROM with two
	// matching rows): the other gets no row back, as the loser of two
	// concurrent statements would. locked takes the rows' locks in id
	// order before the update takes any (the plan would take them in its
	// own order, and two groups naming two sessions in opposite orders
	// would each wait for the other's until the deadlock detector broke
	// one: TestRotateGroupsNeverDeadlock).
	rotateGroupSQL = `WITH locked AS (
			SELECT id FROM sessions WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE
		)
		UPDATE sessions s
		SET generation = s.generation + 1, rotated_at = r.at, idle_expires_at = LEAST(r.idle, s.expires_at), sweep_at = ` + sweepAtLowered("s.", "r.idle") + `
		FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::timestamptz[], $5::text[]) WITH ORDINALITY AS r (id, generation, at, idle, client, n), users u
		WHERE s.id = ANY($1::text[]) AND s.id IN (SELECT id FROM locked) AND s.id = r.id COLLATE "C" AND u.id = s.user_id AND NOT u.disabled AND (r.client = '' OR s.client_id IN ('', r.client))
		  AND s.generation = r.generation AND s.revoked_at IS NULL AND s.idle_expires_at > r.at AND s.expires_at > r.at
		RETURNING ` + qualified("s", sessionColumns) + `, ` + qualified("u", userColumns) + `, r.n`
)

// identityUserLookup reads an identity and its user in one join;
// several at once by issuer and subject pairs, each a lookup of the
// (issuer, subject) key. (ANY conditions on the two columns, as the
// session reads have on the id, let a generic plan scan every identity of
// a group's issuers.)
var identityUserLookup = lookup[[2]string, identityUser]{
	one: getIdentityUserSQL,
	many: `SELECT ` + qualified("i", identityColumns) + `, ` + qualified("u", userColumns) + `, r.n
		FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r (issuer, subject, n)
		JOIN identities i ON i.issuer = r.issuer AND i.subject = r.subject
		JOIN users u ON u.id = i.user_id`,
	args: func(k [2]string) []any { return []any{k[0], k[1]} },
	arrays: func(ks [][2]string) []any {
		issuers, subjects := make([]string, len(ks)), make([]string, len(ks))
		for i, k := range ks {
			issuers[i], subjects[i] = k[0], k[1]
		}
		return []any{issuers, subjects}
	},
	scan: func(row pgx.Row) (identityUser, error) {
		ident, u, err := scanIdentityUser(row)
		return identityUser{ident, u}, err
	},
}

type identityUser struct {
	ident storage.Identity
	user  storage.User
}

// GetIdentityUser reads an identity and its user in one join, grouped
// with concurrent calls (s.identityReads).
func (s *Store) GetIdentityUser(ctx context.Context, issuer, subject string) (storage.Identity, storage.User, error) {
	v, found, err := identityUserLookup.do(ctx, s, s.identityReads, [2]string{issuer, subject})
	if err != nil {
		return storage.Identity{}, storage.User{}, fmt.Errorf("postgres: get identity %s %s: %w", issuer, subject, err)
	}
	if !found {
		return storage.Identity{}, storage.User{}, errNotFound("identity", issuer+" "+subject)
	}
	return v.ident, v.user, nil
}

// sessionUserLookup reads a session and its user in one join; several at
// once by an array of ids.
var sessionUserLookup = lookup[string, sessionUser]{
	one: getSessionUserSQL,
	many: `SELECT ` + qualified("s", sessionColumns) + `, ` + qualified("u", userColumns) + `, r.n
		FROM unnest($1::text[]) WITH ORDINALITY AS r (id, n)
		JOIN sessions s ON s.id = r.id COLLATE "C"
		JOIN users u ON u.id = s.user_id
		WHERE s.id = ANY($1::text[])`,
	args:   func(id string) []any { return []any{id} },
	arrays: func(ids []string) []any { return []any{ids} },
	scan: func(row pgx.Row) (sessionUser, error) {
		sess, u, err := scanSessionUser(row)
		return sessionUser{sess, u}, err
	},
}

// GetSessionUser reads a session and its user in one join, grouped with
// concurrent calls (s.sessionReads).
func (s *Store) GetSessionUser(ctx context.Context, id string) (storage.Session, storage.User, error) {
	v, found, err := sessionUserLookup.do(ctx, s, s.sessionReads, id)
	if err != nil {
		return storage.Session{}, storage.User{}, fmt.Errorf("postgres: get session %q: %w", id, err)
	}
	if !found {
		return storage.Session{}, storage.User{}, errNotFound("session", id)
	}
	return v.sess, v.user, nil
}

// rotation is one call of RotateSessionOfEnabledUser.
type rotation struct {
	id, clientID      string
	from              uint64
	at, idleExpiresAt time.Time
}

type sessionUser struct {
	sess storage.Session
	user storage.User
}

// rotationLookup is rotateOfEnabledUserSQL, and rotateGroupSQL for
// several: a rotation no row answers was refused.
var rotationLookup = lookup[rotation, sessionUser]{
	one:  rotateOfEnabledUserSQL,
	many: rotateGroupSQL,
	args: func(r rotation) []any {
		return []any{r.id, int64(r.from), ts(r.at), ts(r.idleExpiresAt), r.clientID}
	},
	arrays: func(rs []rotation) []any {
		n := len(rs)
		ids, gens, ats, idles, clients := make([]string, n), make([]int64, n), make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n), make([]string, n)
		for i, r := range rs {
			ids[i], gens[i], ats[i], idles[i], clients[i] = r.id, int64(r.from), ts(r.at), ts(r.idleExpiresAt), r.clientID
		}
		return []any{ids, gens, ats, idles, clients}
	},
	scan: sessionUserLookup.scan,
}

// RotateSessionOfEnabledUser is RotateSession's conditional UPDATE joined
// to the user: the same row lock and re-check make one rotation win.
// Concurrent calls are grouped (s.rotations): a lone one runs
// rotateOfEnabledUserSQL, several run rotateGroupSQL, one statement and
// one commit for all of them.
func (s *Store) RotateSessionOfEnabledUser(ctx context.Context, id, clientID string, from uint64, at, idleExpiresAt time.Time) (storage.Session, storage.User, error) {
	v, rotated, err := rotationLookup.do(ctx, s, s.rotations,
		rotation{id: id, clientID: clientID, from: from, at: at, idleExpiresAt: idleExpiresAt})
	if err != nil {
		return storage.Session{}, storage.User{}, fmt.Errorf("postgres: rotate session %q: %w", id, err)
	}
	if !rotated {
		return storage.Session{}, storage.User{}, fmt.Errorf("postgres: rotate session %q from %d: %w", id, from, storage.ErrStale)
	}
	return v.sess, v.user, nil
}

// RevokeSessionOnce reads the session and revokes it in one statement. The
// UPDATE re-checks revoked_at on the newest row version, so of concurrent
// calls only one touches the row and reports revoked.
func (s *Store) RevokeSessionOnce(ctx context.Context, id string, at time.Time, reason string) (storage.Session, bool, error) {
	var before storage.Session
	var revoked bool
	err := s.do(ctx, func() error {
		row := s.db.QueryRow(ctx, `WITH before AS (SELECT `+sessionColumns+` FROM sessions WHERE id = $1),
			revoked AS (UPDATE sessions SET revoked_at = $2, revoked_reason = $3, sweep_at = `+sweepAtLowered("", "$2")+`
				WHERE id = $1 AND revoked_at IS NULL RETURNING 1)
			SELECT before.*, EXISTS (SELECT 1 FROM revoked) FROM before`, id, ts(at), reason)
		var err error
		before, err = scanSession(rowWithTail{row: row, tail: []any{&revoked}})
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Session{}, false, errNotFound("session", id)
	}
	if err != nil {
		return storage.Session{}, false, fmt.Errorf("postgres: revoke session %q: %w", id, err)
	}
	return before, revoked, nil
}

// rowWithTail scans a row whose leading columns a scan function reads and
// whose trailing columns go to tail.
type rowWithTail struct {
	row  pgx.Row
	tail []any
}

func (r rowWithTail) Scan(dest ...any) error { return r.row.Scan(append(dest, r.tail...)...) }

// scanIdentityUser scans identityColumns then userColumns.
func scanIdentityUser(row pgx.Row) (storage.Identity, storage.User, error) {
	return scanWithUser(row, scanIdentity)
}

// scanSessionUser scans sessionColumns then userColumns.
func scanSessionUser(row pgx.Row) (storage.Session, storage.User, error) {
	return scanWithUser(row, scanSession)
}

// scanWithUser scans the leading columns with scanLead, then userColumns.
func scanWithUser[T any](row pgx.Row, scanLead func(pgx.Row) (T, error)) (T, storage.User, error) {
	var u storage.User
	var uScan pendingScan
	lead, err := scanLead(rowWithTail{row: row, tail: uScan.targets(&u)})
	uScan.finish(&u)
	return lead, u, err
}

// pendingScan holds the user columns scanUser converts after the scan.
type pendingScan struct {
	created, updated pgtype.Timestamptz
}

// targets are scanUser's scan targets, in userColumns order.
func (p *pendingScan) targets(u *storage.User) []any {
	return []any{&u.ID, &u.Email, &u.EmailVerified, &u.Name, &u.Picture, &u.Roles, &u.Disabled, &u.PasswordHash, &p.created, &p.updated,
		&u.EmailVerifiedBy, &u.Username, &u.GivenName, &u.FamilyName}
}

func (p *pendingScan) finish(u *storage.User) {
	u.CreatedAt, u.UpdatedAt = fromTS(p.created), fromTS(p.updated)
}
