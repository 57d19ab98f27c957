package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
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

// signInSQL writes a sign-in in one statement. ident locks the identity
// (FOR SHARE) while it is still the user's, so an unlink or a move waits
// for this transaction, and one that committed first leaves ident empty:
// then nothing below writes, as each write hangs off the session insert.
// A recorded credential fails the statement (the primary key), which
// undoes the whole batch. The expired record of the key, if any, was
// deleted by the statement before (the sub-statements of one WITH run in
// no set order, so they could not do both).
// $1 issuer, $2 subject, $3..$15 the session (sessionColumns), $16 touch
// time (NULL: none), $17 credential key hash (NULL: none), $18 its
// expiry, $19..$25 the audit events' columns as arrays.
//
// With a touch, ident takes the row lock the touch needs (FOR NO KEY
// UPDATE) at once: two concurrent sign-ins of one identity that each held
// FOR SHARE and then both wanted to update the row would deadlock.
var (
	signInSQL      = signInStatement("FOR SHARE")
	signInTouchSQL = signInStatement("FOR NO KEY UPDATE")
)

func signInStatement(lock string) string {
	return `WITH ident AS (
	SELECT id FROM identities WHERE issuer = $1 AND subject = $2 AND user_id = $4 ` + lock + `
), sess AS (
	INSERT INTO sessions (` + sessionColumns + `)
	SELECT $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 FROM ident
	RETURNING id
), touch AS (
	UPDATE identities SET last_login_at = $16
	WHERE $16::timestamptz IS NOT NULL AND id = (SELECT id FROM ident) AND EXISTS (SELECT 1 FROM sess)
), cred AS (
	INSERT INTO credentials (key_hash, expires_at) SELECT $17, $18 FROM sess WHERE $17::bytea IS NOT NULL
), audit AS (
	INSERT INTO audit_events (id, time, type, user_id, session_id, provider, detail)
	SELECT a.* FROM sess, unnest($19::text[], $20::timestamptz[], $21::text[], $22::text[], $23::text[], $24::text[], $25::text[])
		AS a (id, time, type, user_id, session_id, provider, detail)
)
SELECT count(*) FROM sess`
}

// WriteSignIn implements storage.SignInWriter in one batch: [the user's
// session lock,] [the key's expired record deleted,] the sign-in,
// [the live sessions counted,] the identities listed. In READ COMMITTED
// each statement sees what committed before it started, so the count,
// after the lock, sees every concurrent sign-in of the user that went
// before.
func (s *Store) WriteSignIn(ctx context.Context, in storage.SignIn) (storage.SignedIn, error) {
	sess := in.Session
	if sess.ID == "" {
		return storage.SignedIn{}, errEmpty("session id")
	}
	var credKey []byte
	if in.CredentialKey != "" {
		credKey = hashKey(in.CredentialKey)
	}
	n := len(in.Audit)
	ids, types, users, sids, provs, details := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	times := make([]pgtype.Timestamptz, n)
	for i, e := range in.Audit {
		if e.ID == "" || e.Time.IsZero() {
			return storage.SignedIn{}, fmt.Errorf("postgres: write sign-in: audit event %q without id or time", e.Type)
		}
		ids[i], times[i], types[i], users[i], sids[i], provs[i], details[i] = e.ID, ts(e.Time), e.Type, e.UserID, e.SessionID, e.Provider, e.Detail
	}
	stmt := signInSQL
	if !in.TouchAt.IsZero() {
		stmt = signInTouchSQL
	}
	args := []any{in.Issuer, in.Subject,
		sess.ID, sess.UserID, sess.Provider, sess.ClientID, int64(sess.Generation), ts(sess.RotatedAt), ts(sess.CreatedAt),
		ts(sess.IdleExpiresAt), ts(sess.ExpiresAt), ts(sess.RevokedAt), sess.RevokedReason, sess.UserAgent, sess.IP,
		ts(in.TouchAt), credKey, ts(in.CredentialExpiresAt),
		ids, times, types, users, sids, provs, details,
	}
	var out storage.SignedIn
	var written int
	// s.do may run the fn again; it only reads what is made above.
	err := s.do(ctx, func() error {
		out, written = storage.SignedIn{}, 0
		b := &pgx.Batch{}
		if in.CountLive {
			b.Queue(`SELECT pg_advisory_xact_lock($1)`, sessionLockKey(sess.UserID))
		}
		if credKey != nil {
			b.Queue(`DELETE FROM credentials WHERE key_hash = $1 AND expires_at <= $2`, credKey, ts(in.Now))
		}
		b.Queue(stmt, args...).QueryRow(func(row pgx.Row) error { return row.Scan(&written) })
		if in.CountLive {
			b.Queue(`SELECT count(*) FROM sessions
				WHERE user_id = $1 AND revoked_at IS NULL AND idle_expires_at > $2 AND expires_at > $2`, sess.UserID, ts(in.Now),
			).QueryRow(func(row pgx.Row) error { return row.Scan(&out.LiveSessions) })
		}
		b.Queue(`SELECT `+identityColumns+` FROM identities WHERE user_id = $1 ORDER BY created_at, id`, sess.UserID).Query(func(rows pgx.Rows) error {
			var err error
			out.Identities, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Identity, error) { return scanIdentity(r) })
			return err
		})
		return s.db.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return storage.SignedIn{}, fmt.Errorf("postgres: write sign-in %q: %w", sess.ID, err)
	}
	if written == 0 {
		return storage.SignedIn{}, fmt.Errorf("postgres: write sign-in %q: identity %s %s is not user %q's: %w",
			sess.ID, in.Issuer, in.Subject, sess.UserID, storage.ErrStale)
	}
	return out, nil
}

// GetIdentityUser reads an identity and its user in one join.
func (s *Store) GetIdentityUser(ctx context.Context, issuer, subject string) (storage.Identity, storage.User, error) {
	var ident storage.Identity
	var u storage.User
	err := s.do(ctx, func() error {
		var err error
		ident, u, err = scanIdentityUser(s.db.QueryRow(ctx, `SELECT `+qualified("i", identityColumns)+`, `+qualified("u", userColumns)+`
			FROM identities i JOIN users u ON u.id = i.user_id WHERE i.issuer = $1 AND i.subject = $2`, issuer, subject))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return ident, u, errNotFound("identity", issuer+" "+subject)
	}
	return ident, u, err
}

// GetSessionUser reads a session and its user in one join.
func (s *Store) GetSessionUser(ctx context.Context, id string) (storage.Session, storage.User, error) {
	var sess storage.Session
	var u storage.User
	err := s.do(ctx, func() error {
		var err error
		sess, u, err = scanSessionUser(s.db.QueryRow(ctx, `SELECT `+qualified("s", sessionColumns)+`, `+qualified("u", userColumns)+`
			FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1`, id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return sess, u, errNotFound("session", id)
	}
	return sess, u, err
}

// RotateSessionOfEnabledUser is RotateSession's conditional UPDATE joined
// to the user: the same row lock and re-check make one rotation win.
func (s *Store) RotateSessionOfEnabledUser(ctx context.Context, id, clientID string, from uint64, at, idleExpiresAt time.Time) (storage.Session, storage.User, error) {
	var sess storage.Session
	var u storage.User
	err := s.do(ctx, func() error {
		var err error
		sess, u, err = scanSessionUser(s.db.QueryRow(ctx, `UPDATE sessions s
			SET generation = s.generation + 1, rotated_at = $3, idle_expires_at = LEAST($4, s.expires_at)
			FROM users u
			WHERE s.id = $1 AND u.id = s.user_id AND NOT u.disabled AND ($5 = '' OR s.client_id IN ('', $5))
			  AND s.generation = $2 AND s.revoked_at IS NULL AND s.idle_expires_at > $3 AND s.expires_at > $3
			RETURNING `+qualified("s", sessionColumns)+`, `+qualified("u", userColumns), id, int64(from), ts(at), ts(idleExpiresAt), clientID))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Session{}, storage.User{}, fmt.Errorf("postgres: rotate session %q from %d: %w", id, from, storage.ErrStale)
	}
	if err != nil {
		return storage.Session{}, storage.User{}, fmt.Errorf("postgres: rotate session %q: %w", id, err)
	}
	return sess, u, nil
}

// RevokeSessionOnce reads the session and revokes it in one statement. The
// UPDATE re-checks revoked_at on the newest row version, so of concurrent
// calls only one touches the row and reports revoked.
func (s *Store) RevokeSessionOnce(ctx context.Context, id string, at time.Time, reason string) (storage.Session, bool, error) {
	var before storage.Session
	var revoked bool
	err := s.do(ctx, func() error {
		row := s.db.QueryRow(ctx, `WITH before AS (SELECT `+sessionColumns+` FROM sessions WHERE id = $1),
			revoked AS (UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL RETURNING 1)
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
