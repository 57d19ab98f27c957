package postgres

import (
	"cmp"
	"context"
	"log/slog"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/authex/authex/storage"
)

// goMigrations are the parts of a migration that SQL cannot do. Each runs
// in its migration's transaction, right after its SQL file.
var goMigrations = map[int]func(ctx context.Context, tx pgx.Tx, log *slog.Logger) error{
	4: migrateEmailTrust, // migrations/0004_email_trust.sql
}

// emailKey is what email_lower holds (schema version 4; before it,
// strings.ToLower).
func emailKey(email string) string {
	k, _ := storage.EmailKey(email)
	return k
}

// migrateEmailTrust fills email_verified_by and recomputes email_lower as
// the bbolt backend's schema version 3 does (storage/bolt/emailtrust.go):
// a verified user's email_verified_by is the provider of its oldest
// identity whose verified email has the user's key (” if none), and on a
// key two users now share the oldest keeps it; a younger verified owner
// loses its verified flag, a younger password owner is left out of both
// indexes (email_lower ”). Both are logged by user id.
func migrateEmailTrust(ctx context.Context, tx pgx.Tx, log *slog.Logger) error {
	type row struct {
		id, email, oldKey, key, by string
		verified, password         bool
		created                    pgtype.Timestamptz
	}
	rows, err := tx.Query(ctx, `SELECT id, email, email_lower, email_verified, password_hash <> '', created_at FROM users`)
	if err != nil {
		return err
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var u row
		err := r.Scan(&u.id, &u.email, &u.oldKey, &u.verified, &u.password, &u.created)
		return u, err
	})
	if err != nil {
		return err
	}
	// Oldest first, identities and users alike.
	rows, err = tx.Query(ctx, `SELECT user_id, provider, email FROM identities
		WHERE email_verified AND email <> '' ORDER BY created_at NULLS FIRST, id`)
	if err != nil {
		return err
	}
	type ident struct{ userID, provider, email string }
	idents, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ident, error) {
		var i ident
		err := r.Scan(&i.userID, &i.provider, &i.email)
		return i, err
	})
	if err != nil {
		return err
	}
	byUser := map[string][]ident{}
	for _, i := range idents {
		byUser[i.userID] = append(byUser[i.userID], i)
	}
	slices.SortFunc(users, func(a, b row) int {
		return cmp.Or(fromTS(a.created).Compare(fromTS(b.created)), cmp.Compare(a.id, b.id))
	})
	verifiedOwner, passwordOwner := map[string]string{}, map[string]string{}
	var ids, keys, bys []string
	var verified []bool
	for _, u := range users {
		u.key = emailKey(u.email)
		if u.verified && u.key != "" {
			for _, i := range byUser[u.id] {
				if emailKey(i.email) == u.key {
					u.by = i.provider
					break
				}
			}
			if owner, taken := verifiedOwner[u.key]; taken {
				log.Warn("email index migration: two users verified one address; the younger is no longer verified",
					"kept_user_id", owner, "user_id", u.id)
				u.verified, u.by = false, ""
			} else {
				verifiedOwner[u.key] = u.id
			}
		}
		if u.password && u.key != "" {
			if owner, taken := passwordOwner[u.key]; taken {
				log.Warn("email index migration: two password accounts share one address; the younger cannot sign in with its password until its email is changed",
					"kept_user_id", owner, "user_id", u.id)
				u.key = ""
			} else {
				passwordOwner[u.key] = u.id
			}
		}
		ids, keys, verified, bys = append(ids, u.id), append(keys, u.key), append(verified, u.verified), append(bys, u.by)
	}
	// Every changed key leaves the unique indexes first, so that no
	// intermediate state of the update below meets a key not yet moved.
	if _, err := tx.Exec(ctx, `UPDATE users u SET email_lower = '' FROM unnest($1::text[], $2::text[]) AS v(id, k)
		WHERE u.id = v.id AND u.email_lower <> v.k`, ids, keys); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE users u SET email_lower = v.k, email_verified = v.verified, email_verified_by = v.by
		FROM unnest($1::text[], $2::text[], $3::boolean[], $4::text[]) AS v(id, k, verified, by)
		WHERE u.id = v.id`, ids, keys, verified, bys)
	return err
}
