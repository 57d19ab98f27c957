package bolt

import (
	"bytes"
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
)

// migrateEmailTrust is schema version 3 (issue 11, findings 1 and 2).
//
// Every user record is rewritten in userFormat2 with EmailVerifiedBy: for a
// user whose email is verified, the provider of its oldest identity whose
// email has the user's EmailKey and is verified; none gives "" (unknown,
// never trusted for linking by email). Then the emails and password_emails
// indexes are rebuilt under storage.EmailKey, which no longer folds
// non-ASCII letters (strings.ToLower did) and converts domains to their
// A-label. Keys the old fold kept apart may now meet (a@bücher.de and
// a@xn--bcher-kva.de): the oldest user keeps the entry; a younger verified
// owner keeps its address but loses its verified flag (the index holds one
// owner, as a `never` provider's separate user does), and a younger
// password owner is left out of password_emails. Both are logged, by user
// id only, for the operator to settle.
func migrateEmailTrust(tx *bolt.Tx, log *slog.Logger) error {
	verifiedBy := map[string]identityAt{} // user id -> the oldest verifying identity
	users := tx.Bucket(bucketKeyUsers)
	byUser := map[string][]storage.Identity{}
	err := tx.Bucket(bucketKeyIdentities).ForEach(func(k, v []byte) error {
		id, err := decodeIdentity(v)
		if err != nil {
			return fmt.Errorf("identity %q: %w", k, err)
		}
		if id.EmailVerified && id.Email != "" {
			byUser[id.UserID] = append(byUser[id.UserID], id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var all []storage.User
	err = users.ForEach(func(k, v []byte) error {
		u, err := decodeUser(v)
		if err != nil {
			return fmt.Errorf("user %q: %w", k, err)
		}
		u.EmailVerifiedBy = ""
		if key := verifiedEmailKey(u); key != nil {
			for _, id := range byUser[u.ID] {
				if !bytes.Equal(emailKey(id.Email), key) {
					continue
				}
				best, ok := verifiedBy[u.ID]
				if !ok || id.CreatedAt.Before(best.at) || (id.CreatedAt.Equal(best.at) && id.ID < best.id) {
					verifiedBy[u.ID] = identityAt{id: id.ID, at: id.CreatedAt, provider: id.Provider}
				}
			}
			u.EmailVerifiedBy = verifiedBy[u.ID].provider
		}
		all = append(all, u)
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range [][]byte{bucketKeyEmails, bucketKeyPasswordEmails} {
		if err := tx.DeleteBucket(name); err != nil {
			return fmt.Errorf("drop %s: %w", name, err)
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
	}
	emails, passwordEmails := tx.Bucket(bucketKeyEmails), tx.Bucket(bucketKeyPasswordEmails)
	// Oldest first: on a collision the user who had the address first keeps it.
	slices.SortFunc(all, func(a, b storage.User) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	for _, u := range all {
		if key := verifiedEmailKey(u); key != nil {
			if owner := emails.Get(key); owner != nil {
				log.Warn("email index migration: two users verified one address; the younger is no longer verified",
					"kept_user_id", string(owner), "user_id", u.ID)
				u.EmailVerified, u.EmailVerifiedBy = false, ""
			} else if err := emails.Put(key, []byte(u.ID)); err != nil {
				return err
			}
		}
		if key := passwordEmailKey(u); key != nil {
			if owner := passwordEmails.Get(key); owner != nil {
				log.Warn("email index migration: two password accounts share one address; the younger cannot sign in with its password until its email is changed",
					"kept_user_id", string(owner), "user_id", u.ID)
			} else if err := passwordEmails.Put(key, []byte(u.ID)); err != nil {
				return err
			}
		}
		if err := users.Put([]byte(u.ID), encodeUser(u)); err != nil {
			return err
		}
	}
	return nil
}

type identityAt struct {
	id, provider string
	at           time.Time
}
