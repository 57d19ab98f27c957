package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/authex/authex/storage"
)

const userColumns = `id, email, email_verified, name, picture, roles, disabled, password_hash, created_at, updated_at, email_verified_by, username, given_name, family_name`

func scanUser(row pgx.Row) (storage.User, error) {
	var u storage.User
	var p pendingScan
	err := row.Scan(p.targets(&u)...)
	p.finish(&u)
	return u, err
}

func roles(r []string) []string {
	if r == nil {
		return []string{}
	}
	return r
}

const identityColumns = `id, user_id, provider, issuer, subject, email, email_verified, created_at, last_login_at`

func scanIdentity(row pgx.Row) (storage.Identity, error) {
	var id storage.Identity
	var created, last pgtype.Timestamptz
	err := row.Scan(&id.ID, &id.UserID, &id.Provider, &id.Issuer, &id.Subject, &id.Email, &id.EmailVerified, &created, &last)
	id.CreatedAt, id.LastLoginAt = fromTS(created), fromTS(last)
	return id, err
}

const insertIdentitySQL = `INSERT INTO identities (` + identityColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

func identityArgs(id storage.Identity) []any {
	return []any{id.ID, id.UserID, id.Provider, id.Issuer, id.Subject, id.Email, id.EmailVerified, ts(id.CreatedAt), ts(id.LastLoginAt)}
}

func queueInsertIdentity(b *pgx.Batch, id storage.Identity) {
	b.Queue(insertIdentitySQL, identityArgs(id)...)
}

// CreateUser inserts the user and its first identity in one batch (one
// round trip; the server runs it as one implicit transaction). The
// unique constraints decide a race between instances: the loser gets
// ErrIdentityTaken or ErrEmailTaken and nothing of it is written.
func (s *Store) CreateUser(ctx context.Context, u storage.User, first storage.Identity) error {
	first, err := storage.CheckNewUser(u, first)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	err = s.do(ctx, func() error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO users (id, email, email_lower, email_verified, name, picture, roles, disabled, password_hash, created_at, updated_at, email_verified_by,
			                   username, username_key, given_name, family_name)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			u.ID, u.Email, emailKey(u.Email), u.EmailVerified, u.Name, u.Picture, roles(u.Roles), u.Disabled, u.PasswordHash, ts(u.CreatedAt), ts(u.UpdatedAt), u.EmailVerifiedBy,
			u.Username, storage.UsernameKey(u.Username), u.GivenName, u.FamilyName)
		queueInsertIdentity(b, first)
		return s.db.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("postgres: create user %q: %w", u.ID, err)
	}
	return nil
}

// GetUser returns the user with id.
func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	return s.getUserWhere(ctx, `id = $1`, id, "user", id)
}

// GetUserByVerifiedEmail looks the partial unique index up.
func (s *Store) GetUserByVerifiedEmail(ctx context.Context, email string) (storage.User, error) {
	if email == "" {
		return storage.User{}, errNotFound("verified email", email)
	}
	return s.getUserWhere(ctx, `email_lower = $1 AND email_verified AND email_lower <> ''`, emailKey(email), "verified email", email)
}

// GetUserByPasswordEmail looks the password-email partial unique index up.
func (s *Store) GetUserByPasswordEmail(ctx context.Context, email string) (storage.User, error) {
	if email == "" {
		return storage.User{}, errNotFound("password email", email)
	}
	return s.getUserWhere(ctx, `email_lower = $1 AND password_hash <> '' AND email_lower <> ''`, emailKey(email), "password email", email)
}

// GetUserByUsername looks the username partial unique index up.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (storage.User, error) {
	if username == "" {
		return storage.User{}, errNotFound("username", username)
	}
	return s.getUserWhere(ctx, `username_key = $1 AND username_key <> ''`, storage.UsernameKey(username), "username", username)
}

// getUserWhere returns the user that cond, with arg as $1, selects, or
// ErrNotFound naming what and key.
func (s *Store) getUserWhere(ctx context.Context, cond string, arg any, what, key string) (storage.User, error) {
	var u storage.User
	err := s.do(ctx, func() error {
		var err error
		u, err = scanUser(s.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE `+cond, arg))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.User{}, errNotFound(what, key)
	}
	return u, err
}

// updateUserSQL writes every field of a user but ID and CreatedAt, with
// the arguments of updateUserArgs.
const updateUserSQL = `UPDATE users SET email = $2, email_lower = $3, email_verified = $4, name = $5,
	picture = $6, roles = $7, disabled = $8, password_hash = $9, updated_at = $10, email_verified_by = $11,
	username = $12, username_key = $13, given_name = $14, family_name = $15 WHERE id = $1`

func updateUserArgs(id string, u storage.User) []any {
	return []any{id, u.Email, emailKey(u.Email), u.EmailVerified, u.Name, u.Picture, roles(u.Roles), u.Disabled, u.PasswordHash, ts(u.UpdatedAt), u.EmailVerifiedBy,
		u.Username, storage.UsernameKey(u.Username), u.GivenName, u.FamilyName}
}

// UpdateUser replaces every field but ID and CreatedAt; the verified-email
// and password-email indexes follow by themselves.
func (s *Store) UpdateUser(ctx context.Context, u storage.User) error {
	return s.execOne(ctx, "update user", "user", u.ID, updateUserSQL, updateUserArgs(u.ID, u)...)
}

// ModifyUser locks the user's row (SELECT ... FOR UPDATE) for the length
// of one transaction, so concurrent modifications of one user queue up and
// each sees the one before; the retries of tx re-run fn from a fresh read.
func (s *Store) ModifyUser(ctx context.Context, id string, fn func(*storage.User) error) (storage.User, error) {
	var out storage.User
	var fnErr error
	err := s.tx(ctx, func(tx pgx.Tx) error {
		fnErr = nil
		u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return errNotFound("user", id)
		}
		if err != nil {
			return err
		}
		if fnErr = fn(&u); fnErr != nil {
			return fnErr
		}
		out, err = scanUser(tx.QueryRow(ctx, updateUserSQL+` RETURNING `+userColumns, updateUserArgs(id, u)...))
		return err
	})
	if fnErr != nil {
		return storage.User{}, fnErr
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("postgres: modify user %q: %w", id, err)
	}
	return out, nil
}

// DeleteUser deletes the user; identities and sessions go with it (ON
// DELETE CASCADE), in the same statement.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.execOne(ctx, "delete user", "user", id, `DELETE FROM users WHERE id = $1`, id)
}

// ListUsers pages through users in ID (byte) order.
func (s *Store) ListUsers(ctx context.Context, f storage.UserFilter) ([]storage.User, error) {
	var out []storage.User
	err := s.do(ctx, func() error {
		out = nil
		rows, err := s.db.Query(ctx, `SELECT `+userColumns+` FROM users u
			WHERE u.id > $1
			  AND ($2 = '' OR u.email_lower = $2)
			  AND (($3 = '' AND $4 = '') OR EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id
			       AND ($3 = '' OR i.provider = $3) AND ($4 = '' OR i.subject = $4)))
			  AND ($6 = '' OR u.username_key = $6)
			ORDER BY u.id LIMIT $5`,
			f.After, emailKey(f.Email), f.Provider, f.Subject, limit(f.Limit), storage.UsernameKey(f.Username))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.User, error) { return scanUser(r) })
		return err
	})
	return out, err
}

// CountUsers counts the rows of users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.do(ctx, func() error { return s.db.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n) })
	return n, err
}

// AddIdentity inserts an identity; the foreign key answers ErrNotFound for
// a missing user, the unique constraint ErrIdentityTaken.
func (s *Store) AddIdentity(ctx context.Context, id storage.Identity) error {
	if id.ID == "" {
		return errEmpty("identity id")
	}
	err := s.do(ctx, func() error {
		_, err := s.db.Exec(ctx, insertIdentitySQL, identityArgs(id)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: add identity: %w", err)
	}
	return nil
}

// GetIdentity looks (issuer, subject) up.
func (s *Store) GetIdentity(ctx context.Context, issuer, subject string) (storage.Identity, error) {
	var id storage.Identity
	err := s.do(ctx, func() error {
		var err error
		id, err = scanIdentity(s.db.QueryRow(ctx, `SELECT `+identityColumns+` FROM identities WHERE issuer = $1 AND subject = $2`, issuer, subject))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Identity{}, errNotFound("identity", issuer+" "+subject)
	}
	return id, err
}

// ListIdentities returns the user's identities, oldest first.
func (s *Store) ListIdentities(ctx context.Context, userID string) ([]storage.Identity, error) {
	var out []storage.Identity
	err := s.do(ctx, func() error {
		rows, err := s.db.Query(ctx, `SELECT `+identityColumns+` FROM identities WHERE user_id = $1 ORDER BY created_at, id`, userID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Identity, error) { return scanIdentity(r) })
		return err
	})
	return out, err
}

// DeleteIdentity removes one identity of userID.
func (s *Store) DeleteIdentity(ctx context.Context, userID, identityID string) error {
	return s.execOne(ctx, "delete identity", "identity", identityID,
		`DELETE FROM identities WHERE id = $1 AND user_id = $2`, identityID, userID)
}

// TouchIdentity sets LastLoginAt.
func (s *Store) TouchIdentity(ctx context.Context, identityID string, at time.Time) error {
	return s.execOne(ctx, "touch identity", "identity", identityID, `UPDATE identities SET last_login_at = $2 WHERE id = $1`, identityID, ts(at))
}

var _ storage.IdentityEmailSetter = (*Store)(nil)

// SetIdentityEmail implements storage.IdentityEmailSetter.
func (s *Store) SetIdentityEmail(ctx context.Context, identityID, email string, verified bool) error {
	return s.execOne(ctx, "set identity email", "identity", identityID,
		`UPDATE identities SET email = $2, email_verified = $3 WHERE id = $1`, identityID, email, verified)
}
