package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
)

// CreateUser writes u, its first identity and their index entries in one
// transaction, through Batch.
func (s *Store) CreateUser(ctx context.Context, u storage.User, first storage.Identity) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	first, err := storage.CheckNewUser(u, first)
	if err != nil {
		return fmt.Errorf("bolt: %w", err)
	}
	// Encode before the transaction: the writer lock is held for less.
	userID, userRec := []byte(u.ID), encodeUser(u)
	identityID, identityRec := []byte(first.ID), encodeIdentity(first)
	ikey := identityKey(first.Issuer, first.Subject)
	ekey := verifiedEmailKey(u)
	pkey := passwordEmailKey(u)
	ukey := usernameKey(u)

	var outcome error
	err = s.batch(func(tx *bolt.Tx) error {
		outcome = nil
		users := tx.Bucket(bucketKeyUsers)
		identities := tx.Bucket(bucketKeyIdentities)
		identityKeys := tx.Bucket(bucketKeyIdentityKeys)
		emails := tx.Bucket(bucketKeyEmails)
		passwordEmails := tx.Bucket(bucketKeyPasswordEmails)
		// Every check before any write: a conflict must write nothing, and
		// this transaction commits other callers' work anyway.
		switch {
		case users.Get(userID) != nil:
			outcome = fmt.Errorf("bolt: create user %q: %w: user id exists", u.ID, storage.ErrConflict)
		case identityKeys.Get(ikey) != nil:
			outcome = fmt.Errorf("bolt: create user %q: %w", u.ID, storage.ErrIdentityTaken)
		case identities.Get(identityID) != nil:
			outcome = fmt.Errorf("bolt: create user %q: %w: identity id exists", u.ID, storage.ErrConflict)
		case ekey != nil && emails.Get(ekey) != nil:
			outcome = fmt.Errorf("bolt: create user %q: %w", u.ID, storage.ErrEmailTaken)
		case pkey != nil && passwordEmails.Get(pkey) != nil:
			outcome = fmt.Errorf("bolt: create user %q: %w", u.ID, storage.ErrPasswordEmailTaken)
		case ukey != nil && tx.Bucket(bucketKeyUsernames).Get(ukey) != nil:
			outcome = fmt.Errorf("bolt: create user %q: %w", u.ID, storage.ErrUsernameTaken)
		}
		if outcome != nil {
			return nil
		}
		if err := users.Put(userID, userRec); err != nil {
			return err
		}
		if ekey != nil {
			if err := emails.Put(ekey, userID); err != nil {
				return err
			}
		}
		if pkey != nil {
			if err := passwordEmails.Put(pkey, userID); err != nil {
				return err
			}
		}
		if ukey != nil {
			if err := tx.Bucket(bucketKeyUsernames).Put(ukey, userID); err != nil {
				return err
			}
		}
		if err := putIdentity(tx, first.ID, u.ID, ikey, identityRec); err != nil {
			return err
		}
		return addUsers(tx, 1)
	})
	if err != nil {
		return fmt.Errorf("bolt: create user %q: %w", u.ID, err)
	}
	return outcome
}

// putIdentity writes an identity record and its two index entries.
func putIdentity(tx *bolt.Tx, identityID, userID string, ikey, rec []byte) error {
	if err := tx.Bucket(bucketKeyIdentities).Put([]byte(identityID), rec); err != nil {
		return err
	}
	if err := tx.Bucket(bucketKeyIdentityKeys).Put(ikey, []byte(identityID)); err != nil {
		return err
	}
	return tx.Bucket(bucketKeyUserIdentities).Put(childKey(userID, identityID), nil)
}

// addUsers moves the user count by delta.
func addUsers(tx *bolt.Tx, delta int) error {
	meta := tx.Bucket(bucketKeyMeta)
	n, ok := readU64(meta.Get(metaKeyUsers))
	if !ok {
		return fmt.Errorf("%w: user count", errCorrupt)
	}
	return meta.Put(metaKeyUsers, u64(uint64(int64(n)+int64(delta))))
}

func getUser(tx *bolt.Tx, id string) (storage.User, error) {
	v := tx.Bucket(bucketKeyUsers).Get([]byte(id))
	if v == nil {
		return storage.User{}, errNotFound("user", id)
	}
	return decodeUser(v)
}

// GetUser returns the user with id.
func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	if err := ctx.Err(); err != nil {
		return storage.User{}, err
	}
	var u storage.User
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		u, err = getUser(tx, id)
		return err
	})
	return u, err
}

// GetUserByVerifiedEmail looks the emails index up.
func (s *Store) GetUserByVerifiedEmail(ctx context.Context, email string) (storage.User, error) {
	return s.getUserByEmail(ctx, bucketKeyEmails, "verified email", email)
}

// GetUserByPasswordEmail looks the password_emails index up.
func (s *Store) GetUserByPasswordEmail(ctx context.Context, email string) (storage.User, error) {
	return s.getUserByEmail(ctx, bucketKeyPasswordEmails, "password email", email)
}

// GetUserByUsername looks the usernames index up.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (storage.User, error) {
	if err := ctx.Err(); err != nil {
		return storage.User{}, err
	}
	if username == "" {
		return storage.User{}, errNotFound("username", username)
	}
	var u storage.User
	err := s.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketKeyUsernames).Get([]byte(storage.UsernameKey(username)))
		if id == nil {
			return errNotFound("username", username)
		}
		var err error
		u, err = getUser(tx, string(id))
		return err
	})
	return u, err
}

// getUserByEmail looks email up in the email index bucket, which ErrNotFound
// names as what.
func (s *Store) getUserByEmail(ctx context.Context, bucket []byte, what, email string) (storage.User, error) {
	if err := ctx.Err(); err != nil {
		return storage.User{}, err
	}
	if email == "" {
		return storage.User{}, errNotFound(what, email)
	}
	var u storage.User
	err := s.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucket).Get(emailKey(email))
		if id == nil {
			return errNotFound(what, email)
		}
		var err error
		u, err = getUser(tx, string(id))
		return err
	})
	return u, err
}

// UpdateUser replaces every field of the user but ID and CreatedAt, and
// moves its emails and password_emails entries along.
func (s *Store) UpdateUser(ctx context.Context, u storage.User) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		old, err := getUser(tx, u.ID)
		if err != nil {
			return err
		}
		_, err = putUser(tx, old, u)
		return err
	})
}

// ModifyUser runs fn inside the one write transaction bbolt allows at a
// time, so no other write can come between its read and its write.
func (s *Store) ModifyUser(ctx context.Context, id string, fn func(*storage.User) error) (storage.User, error) {
	if err := ctx.Err(); err != nil {
		return storage.User{}, err
	}
	var rec []byte
	var fnErr error
	err := s.update(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketKeyUsers).Get([]byte(id))
		if v == nil {
			return errNotFound("user", id)
		}
		old, err := decodeUser(v)
		if err != nil {
			return err
		}
		u, _ := decodeUser(v) // a second decoding: fn must not alias old's slices
		if fnErr = fn(&u); fnErr != nil {
			return fnErr
		}
		u.ID = id
		rec, err = putUser(tx, old, u)
		return err
	})
	if fnErr != nil {
		return storage.User{}, fnErr
	}
	if err != nil {
		return storage.User{}, err
	}
	// Decoded from the record written, after the writer lock is released:
	// as GetUser will answer (UTC, stored precision).
	return decodeUser(rec)
}

// putUser writes u over old (same ID) and moves its entries in the email
// indexes; a conflict writes nothing. It returns the record written.
func putUser(tx *bolt.Tx, old, u storage.User) ([]byte, error) {
	u.CreatedAt = old.CreatedAt
	emails := tx.Bucket(bucketKeyEmails)
	passwordEmails := tx.Bucket(bucketKeyPasswordEmails)
	oldKey, newKey := verifiedEmailKey(old), verifiedEmailKey(u)
	oldPKey, newPKey := passwordEmailKey(old), passwordEmailKey(u)
	// Both checks before any write: a conflict writes nothing.
	if newKey != nil {
		if owner := emails.Get(newKey); owner != nil && string(owner) != u.ID {
			return nil, fmt.Errorf("bolt: update user %q: %w", u.ID, storage.ErrEmailTaken)
		}
	}
	if newPKey != nil {
		if owner := passwordEmails.Get(newPKey); owner != nil && string(owner) != u.ID {
			return nil, fmt.Errorf("bolt: update user %q: %w", u.ID, storage.ErrPasswordEmailTaken)
		}
	}
	usernames := tx.Bucket(bucketKeyUsernames)
	oldUKey, newUKey := usernameKey(old), usernameKey(u)
	if newUKey != nil {
		if owner := usernames.Get(newUKey); owner != nil && string(owner) != u.ID {
			return nil, fmt.Errorf("bolt: update user %q: %w", u.ID, storage.ErrUsernameTaken)
		}
	}
	if err := moveIndexEntry(usernames, u.ID, oldUKey, newUKey); err != nil {
		return nil, err
	}
	if err := moveIndexEntry(emails, u.ID, oldKey, newKey); err != nil {
		return nil, err
	}
	if err := moveIndexEntry(passwordEmails, u.ID, oldPKey, newPKey); err != nil {
		return nil, err
	}
	rec := encodeUser(u)
	return rec, tx.Bucket(bucketKeyUsers).Put([]byte(u.ID), rec)
}

// moveIndexEntry moves userID's entry in a unique email index from oldKey
// to newKey (either may be nil), never deleting another user's entry.
func moveIndexEntry(b *bolt.Bucket, userID string, oldKey, newKey []byte) error {
	if oldKey != nil && string(oldKey) != string(newKey) {
		if owner := b.Get(oldKey); string(owner) == userID {
			if err := b.Delete(oldKey); err != nil {
				return err
			}
		}
	}
	if newKey != nil {
		return b.Put(newKey, []byte(userID))
	}
	return nil
}

// DeleteUser removes the user, its identities, its sessions and every index
// entry that names them, in one transaction.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		u, err := getUser(tx, id)
		if err != nil {
			return err
		}
		for _, identityID := range childIDs(tx.Bucket(bucketKeyUserIdentities), id) {
			if err := deleteIdentity(tx, id, identityID); err != nil {
				return err
			}
		}
		for _, sessionID := range childIDs(tx.Bucket(bucketKeyUserSessions), id) {
			sess, err := getSession(tx, sessionID) // its session_sweep key is in the record
			if errors.Is(err, storage.ErrNotFound) {
				sess = storage.Session{ID: sessionID, UserID: id} // only the owner entry is left
			} else if err != nil {
				return err
			}
			if err := deleteSession(tx, sess); err != nil {
				return err
			}
		}
		if err := moveIndexEntry(tx.Bucket(bucketKeyEmails), id, verifiedEmailKey(u), nil); err != nil {
			return err
		}
		if err := moveIndexEntry(tx.Bucket(bucketKeyPasswordEmails), id, passwordEmailKey(u), nil); err != nil {
			return err
		}
		if err := moveIndexEntry(tx.Bucket(bucketKeyUsernames), id, usernameKey(u), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketKeyUsers).Delete([]byte(id)); err != nil {
			return err
		}
		return addUsers(tx, -1)
	})
}

// ListUsers walks users in ID order from f.After. Filters on identities
// read the user's identities, so filtered listings cost a scan; they are
// for administrators, not the sign-in path.
func (s *Store) ListUsers(ctx context.Context, f storage.UserFilter) ([]storage.User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []storage.User
	filterKey := emailKey(f.Email)
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketKeyUsers).Cursor()
		k, v := c.First()
		if f.After != "" {
			k, v = c.Seek([]byte(f.After))
			if k != nil && string(k) == f.After {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if f.Limit > 0 && len(out) >= f.Limit {
				return nil
			}
			u, err := decodeUser(v)
			if err != nil {
				return fmt.Errorf("user %q: %w", k, err)
			}
			if f.Email != "" && !bytes.Equal(emailKey(u.Email), filterKey) {
				continue
			}
			if f.Username != "" && storage.UsernameKey(u.Username) != storage.UsernameKey(f.Username) {
				continue
			}
			if f.Provider != "" || f.Subject != "" {
				ok, err := hasIdentity(tx, u.ID, f.Provider, f.Subject)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
			}
			out = append(out, u)
		}
		return nil
	})
	return out, err
}

// hasIdentity reports whether one identity of the user matches both
// provider and subject (an empty one matches anything).
func hasIdentity(tx *bolt.Tx, userID, provider, subject string) (bool, error) {
	identities := tx.Bucket(bucketKeyIdentities)
	for _, id := range childIDs(tx.Bucket(bucketKeyUserIdentities), userID) {
		v := identities.Get([]byte(id))
		if v == nil {
			continue
		}
		ident, err := decodeIdentity(v)
		if err != nil {
			return false, fmt.Errorf("identity %q: %w", id, err)
		}
		if (provider == "" || ident.Provider == provider) && (subject == "" || ident.Subject == subject) {
			return true, nil
		}
	}
	return false, nil
}

// CountUsers reads the counter CreateUser and DeleteUser keep in meta.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n uint64
	err := s.view(func(tx *bolt.Tx) error {
		var ok bool
		n, ok = readU64(tx.Bucket(bucketKeyMeta).Get(metaKeyUsers))
		if !ok {
			return fmt.Errorf("%w: user count", errCorrupt)
		}
		return nil
	})
	return int(n), err
}

// AddIdentity links id to its (existing) user.
func (s *Store) AddIdentity(ctx context.Context, id storage.Identity) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if id.ID == "" {
		return errEmpty("identity id")
	}
	ikey := identityKey(id.Issuer, id.Subject)
	rec := encodeIdentity(id)
	return s.update(func(tx *bolt.Tx) error {
		switch {
		case tx.Bucket(bucketKeyUsers).Get([]byte(id.UserID)) == nil:
			return errNotFound("user", id.UserID)
		case tx.Bucket(bucketKeyIdentityKeys).Get(ikey) != nil:
			return fmt.Errorf("bolt: add identity: %w", storage.ErrIdentityTaken)
		case tx.Bucket(bucketKeyIdentities).Get([]byte(id.ID)) != nil:
			return fmt.Errorf("bolt: add identity %q: %w: identity id exists", id.ID, storage.ErrConflict)
		}
		return putIdentity(tx, id.ID, id.UserID, ikey, rec)
	})
}

// GetIdentity looks (issuer, subject) up in identity_keys.
func (s *Store) GetIdentity(ctx context.Context, issuer, subject string) (storage.Identity, error) {
	if err := ctx.Err(); err != nil {
		return storage.Identity{}, err
	}
	var ident storage.Identity
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		ident, err = identityBySubject(tx, issuer, subject)
		return err
	})
	return ident, err
}

// ListIdentities returns the user's identities, oldest first.
func (s *Store) ListIdentities(ctx context.Context, userID string) ([]storage.Identity, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []storage.Identity
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = identitiesOf(tx, userID)
		return err
	})
	return out, err
}

// DeleteIdentity removes one identity of userID and its index entries.
func (s *Store) DeleteIdentity(ctx context.Context, userID, identityID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketKeyIdentities).Get([]byte(identityID))
		if v == nil {
			return errNotFound("identity", identityID)
		}
		ident, err := decodeIdentity(v)
		if err != nil {
			return err
		}
		if ident.UserID != userID {
			return errNotFound("identity", identityID)
		}
		return removeIdentity(tx, identityID, userID, identityKey(ident.Issuer, ident.Subject))
	})
}

// deleteIdentity removes an identity record and its index entries.
func deleteIdentity(tx *bolt.Tx, userID, identityID string) error {
	v := tx.Bucket(bucketKeyIdentities).Get([]byte(identityID))
	if v == nil { // only the owner entry is left
		return tx.Bucket(bucketKeyUserIdentities).Delete(childKey(userID, identityID))
	}
	ident, err := decodeIdentity(v)
	if err != nil {
		return err
	}
	return removeIdentity(tx, identityID, userID, identityKey(ident.Issuer, ident.Subject))
}

// removeIdentity undoes putIdentity: it removes the identity record, its
// identity_keys entry ikey (while that still names it) and its
// user_identities entry.
func removeIdentity(tx *bolt.Tx, identityID, userID string, ikey []byte) error {
	keys := tx.Bucket(bucketKeyIdentityKeys)
	if string(keys.Get(ikey)) == identityID {
		if err := keys.Delete(ikey); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketKeyIdentities).Delete([]byte(identityID)); err != nil {
		return err
	}
	return tx.Bucket(bucketKeyUserIdentities).Delete(childKey(userID, identityID))
}

// TouchIdentity sets LastLoginAt, through Batch.
func (s *Store) TouchIdentity(ctx context.Context, identityID string, at time.Time) error {
	return s.modifyIdentity(ctx, identityID, "touch identity", func(ident *storage.Identity) { ident.LastLoginAt = at })
}

var _ storage.IdentityEmailSetter = (*Store)(nil)

// SetIdentityEmail implements storage.IdentityEmailSetter.
func (s *Store) SetIdentityEmail(ctx context.Context, identityID, email string, verified bool) error {
	return s.modifyIdentity(ctx, identityID, "set identity email", func(ident *storage.Identity) {
		ident.Email, ident.EmailVerified = email, verified
	})
}

// modifyIdentity rewrites one identity record through Batch (safe to
// retry: fn sets fields, it does not accumulate). It changes no index, so
// fn must not touch Issuer, Subject or UserID. ErrNotFound when absent.
func (s *Store) modifyIdentity(ctx context.Context, identityID, op string, fn func(*storage.Identity)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key := []byte(identityID)
	var outcome error
	err := s.batch(func(tx *bolt.Tx) error {
		outcome = nil
		b := tx.Bucket(bucketKeyIdentities)
		v := b.Get(key)
		if v == nil {
			outcome = errNotFound("identity", identityID)
			return nil
		}
		ident, err := decodeIdentity(v)
		if err != nil {
			return err
		}
		fn(&ident)
		return b.Put(key, encodeIdentity(ident))
	})
	if err != nil {
		return fmt.Errorf("bolt: %s %q: %w", op, identityID, err)
	}
	return outcome
}
