package bolt

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
)

// The hot paths' capabilities (storage/signin.go). A sign-in is one write
// through Batch: one commit, shared with concurrent writes, where the
// separate methods took one each (credential, session, audit, touch).

var (
	_ storage.SignInWriter       = (*Store)(nil)
	_ storage.HotReader          = (*Store)(nil)
	_ storage.EnabledUserRotator = (*Store)(nil)
	_ storage.SessionRevoker     = (*Store)(nil)
)

// identityBySubject looks (issuer, subject) up in identity_keys.
func identityBySubject(tx *bolt.Tx, issuer, subject string) (storage.Identity, error) {
	id := tx.Bucket(bucketKeyIdentityKeys).Get(identityKey(issuer, subject))
	if id == nil {
		return storage.Identity{}, errNotFound("identity", issuer+" "+subject)
	}
	v := tx.Bucket(bucketKeyIdentities).Get(id)
	if v == nil {
		return storage.Identity{}, fmt.Errorf("%w: identity_keys names missing identity %q", errCorrupt, id)
	}
	return decodeIdentity(v)
}

// identitiesOf returns the user's identities, oldest first.
func identitiesOf(tx *bolt.Tx, userID string) ([]storage.Identity, error) {
	var out []storage.Identity
	identities := tx.Bucket(bucketKeyIdentities)
	for _, id := range childIDs(tx.Bucket(bucketKeyUserIdentities), userID) {
		v := identities.Get([]byte(id))
		if v == nil {
			return nil, fmt.Errorf("%w: user_identities names missing identity %q", errCorrupt, id)
		}
		ident, err := decodeIdentity(v)
		if err != nil {
			return nil, err
		}
		out = append(out, ident)
	}
	slices.SortFunc(out, func(a, b storage.Identity) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// createEncodedSession writes a session (encoded by the caller before it
// holds the one writer's lock) and its user_sessions and session_sweep
// entries; the outcome is ErrNotFound for a missing user and ErrConflict
// for a taken id, apart from the error that must roll the write back.
func createEncodedSession(tx *bolt.Tx, sess storage.Session, encoded []byte) (outcome, err error) {
	id := []byte(sess.ID)
	sessions := tx.Bucket(bucketKeySessions)
	switch {
	case tx.Bucket(bucketKeyUsers).Get([]byte(sess.UserID)) == nil:
		return errNotFound("user", sess.UserID), nil
	case sessions.Get(id) != nil:
		return fmt.Errorf("bolt: create session %q: %w: session id exists", sess.ID, storage.ErrConflict), nil
	}
	if err := sessions.Put(id, encoded); err != nil {
		return nil, err
	}
	if err := tx.Bucket(bucketKeySessionSweep).Put(sweepKey(sess), nil); err != nil {
		return nil, err
	}
	return nil, tx.Bucket(bucketKeyUserSessions).Put(childKey(sess.UserID, sess.ID), nil)
}

// countLive counts the user's sessions live at now.
func countLive(tx *bolt.Tx, userID string, now time.Time) (int, error) {
	// One cursor on the sessions, reused for every seek (Bucket.Get makes
	// a new one each time), in id order as the index lists them.
	sessions := tx.Bucket(bucketKeySessions).Cursor()
	prefix := ownerPrefix(userID)
	n := 0
	c := tx.Bucket(bucketKeyUserSessions).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id := k[len(prefix):]
		sk, v := sessions.Seek(id)
		if v == nil || !bytes.Equal(sk, id) {
			return 0, errNotFound("session", string(id))
		}
		sess, err := decodeSessionLimits(v)
		if err != nil {
			return 0, err
		}
		if live(sess, now) {
			n++
		}
	}
	return n, nil
}

// WriteSignIn implements storage.SignInWriter in one Batch write, then one
// read. Every check comes before the first put, so an outcome writes
// nothing.
func (s *Store) WriteSignIn(ctx context.Context, in storage.SignIn) (storage.SignedIn, error) {
	if err := ctx.Err(); err != nil {
		return storage.SignedIn{}, err
	}
	sess := in.Session
	if sess.ID == "" {
		return storage.SignedIn{}, errEmpty("session id")
	}
	var credKey, credExp []byte
	if in.CredentialKey != "" {
		credKey, credExp = credentialKey(in.CredentialKey), timeKey(in.CredentialExpiresAt.UTC())
	}
	now := in.Now.UTC()
	// What does not depend on the transaction's reads is made here, outside
	// the one writer's lock. The fn below may run more than once (its group
	// rolled back and committed again, or itself run alone after a
	// failure), so it only reads these.
	nowKey, encodedSession := timeKey(now), encodeSession(sess)
	audit := make([][2][]byte, len(in.Audit))
	for i, e := range in.Audit {
		if e.ID == "" || e.Time.IsZero() {
			return storage.SignedIn{}, fmt.Errorf("bolt: write sign-in: audit event %q without id or time", e.Type)
		}
		audit[i] = [2][]byte{append(timeKey(e.Time), e.ID...), encodeAuditEvent(e)}
	}
	var (
		out     storage.SignedIn
		outcome error
	)
	err := s.batch(func(tx *bolt.Tx) error {
		outcome = nil
		ident, err := identityBySubject(tx, in.Issuer, in.Subject)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if err != nil || ident.UserID != sess.UserID {
			outcome = fmt.Errorf("bolt: write sign-in %q: identity %s %s is not user %q's: %w", sess.ID, in.Issuer, in.Subject, sess.UserID, storage.ErrStale)
			return nil
		}
		if credKey != nil {
			if credentialLive(tx.Bucket(bucketKeyCredentials).Get(credKey), nowKey) {
				outcome = fmt.Errorf("bolt: credential already recorded: %w", storage.ErrConflict)
				return nil
			}
		}
		if outcome, err = createEncodedSession(tx, sess, encodedSession); outcome != nil || err != nil {
			return err
		}
		if credKey != nil {
			// Checked above: recordCredential writes.
			if _, err := recordCredential(tx, credKey, credExp, nowKey); err != nil {
				return err
			}
		}
		if !in.TouchAt.IsZero() {
			ident.LastLoginAt = in.TouchAt.UTC()
			if err := tx.Bucket(bucketKeyIdentities).Put([]byte(ident.ID), encodeIdentity(ident)); err != nil {
				return err
			}
		}
		for _, a := range audit {
			if err := tx.Bucket(bucketKeyAudit).Put(a[0], a[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return storage.SignedIn{}, fmt.Errorf("bolt: write sign-in %q: %w", sess.ID, err)
	}
	if outcome != nil {
		return storage.SignedIn{}, outcome
	}
	// The count and the list read after the commit, outside the one
	// writer's lock (a count decodes every session of the user). Each
	// sign-in reads after its own commit, so the last to read sees every
	// other's session.
	err = s.view(func(tx *bolt.Tx) error {
		var err error
		if in.CountLive {
			if out.LiveSessions, err = countLive(tx, sess.UserID, now); err != nil {
				return err
			}
		}
		out.Identities, err = identitiesOf(tx, sess.UserID)
		return err
	})
	if err != nil {
		return storage.SignedIn{}, fmt.Errorf("bolt: write sign-in %q: %w", sess.ID, err)
	}
	return out, nil
}

// GetIdentityUser reads an identity and its user in one read transaction.
func (s *Store) GetIdentityUser(ctx context.Context, issuer, subject string) (storage.Identity, storage.User, error) {
	if err := ctx.Err(); err != nil {
		return storage.Identity{}, storage.User{}, err
	}
	var ident storage.Identity
	var u storage.User
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		if ident, err = identityBySubject(tx, issuer, subject); err != nil {
			return err
		}
		u, err = getUser(tx, ident.UserID)
		return err
	})
	return ident, u, err
}

// GetSessionUser reads a session and its user in one read transaction.
func (s *Store) GetSessionUser(ctx context.Context, id string) (storage.Session, storage.User, error) {
	if err := ctx.Err(); err != nil {
		return storage.Session{}, storage.User{}, err
	}
	var sess storage.Session
	var u storage.User
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		if sess, err = getSession(tx, id); err != nil {
			return err
		}
		u, err = getUser(tx, sess.UserID)
		return err
	})
	return sess, u, err
}

// RotateSessionOfEnabledUser is RotateSession's compare-and-swap with the
// user read in the same Batch write.
func (s *Store) RotateSessionOfEnabledUser(ctx context.Context, id, clientID string, from uint64, at, idleExpiresAt time.Time) (storage.Session, storage.User, error) {
	if err := ctx.Err(); err != nil {
		return storage.Session{}, storage.User{}, err
	}
	var (
		sess  storage.Session
		u     storage.User
		stale bool // the rotation lost: nothing was written
	)
	// The batch function holds bbolt's writer: it only reads, decides and
	// writes; the refusal's error is built after the commit.
	err := s.batch(func(tx *bolt.Tx) error {
		sess, u, stale = storage.Session{}, storage.User{}, false
		old, err := getSession(tx, id)
		if err != nil {
			stale = true
			return nil
		}
		otherClient := clientID != "" && old.ClientID != "" && old.ClientID != clientID
		if u, err = getUser(tx, old.UserID); err != nil || u.Disabled || otherClient || old.Generation != from || !live(old, at) {
			stale = true
			return nil
		}
		idle := idleExpiresAt.UTC()
		if old.ExpiresAt.Before(idle) { // as PostgreSQL's LEAST($4, expires_at)
			idle = old.ExpiresAt
		}
		sess, err = rotate(tx, old, at, idle)
		return err
	})
	if err != nil {
		return storage.Session{}, storage.User{}, fmt.Errorf("bolt: rotate session %q: %w", id, err)
	}
	if stale {
		return storage.Session{}, storage.User{}, fmt.Errorf("bolt: rotate session %q from %d: %w", id, from, storage.ErrStale)
	}
	return sess, u, nil
}

// RevokeSessionOnce reads and revokes in one write transaction.
func (s *Store) RevokeSessionOnce(ctx context.Context, id string, at time.Time, reason string) (storage.Session, bool, error) {
	if err := ctx.Err(); err != nil {
		return storage.Session{}, false, err
	}
	var before storage.Session
	var revoked bool
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		if before, err = getSession(tx, id); err != nil || before.Revoked() {
			return err
		}
		revoked = true
		return revoke(tx, before, at, reason)
	})
	return before, revoked, err
}
