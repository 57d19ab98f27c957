package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/authex/authex/storage"
)

// storage.Transactor: every backend offers it, and Run runs these.

func transactor(t *testing.T, s storage.Store) storage.Transactor {
	t.Helper()
	tr := mustOffer[storage.Transactor](t, s)
	return tr
}

// testInTxCommits: the writes fn makes through the view (of several
// kinds, one reading what an earlier one wrote) are all there once fn
// returns nil, and a nested InTx on the view runs in the same transaction.
func testInTxCommits(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	u := newUser(t0, "ada@example.com", true)
	first := newIdentity(u, "google", "g-ada", t0)
	second := newIdentity(u, "github", "gh-ada", t0)
	sess := newSession(u, t0)
	err := transactor(t, s).InTx(ctx, func(tx storage.Store) error {
		if err := tx.CreateUser(ctx, u, first); err != nil {
			return err
		}
		if got, err := tx.GetUser(ctx, u.ID); err != nil || got.ID != u.ID {
			return fmt.Errorf("the view does not read its own write: %+v, %v", got, err)
		}
		if err := tx.AddIdentity(ctx, second); err != nil {
			return err
		}
		return transactor(t, tx).InTx(ctx, func(inner storage.Store) error {
			return inner.CreateSession(ctx, sess)
		})
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	check(t, "user", mustGetUser(t, s, u.ID), u)
	if ids := mustListIdentities(t, s, u.ID); len(ids) != 2 {
		t.Errorf("identities after commit: %d, want 2", len(ids))
	}
	check(t, "session", mustGetSession(t, s, sess.ID), sess)
	wantCount(t, s, 1)
}

// testInTxRollsBack: when fn returns an error, InTx returns it and none of
// fn's writes is there, also when the error came from a store method (a
// conflict) after other writes succeeded.
func testInTxRollsBack(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	owner, ownerID := signUp(t, s, t0, "grace@example.com", true, "google", "g-grace")
	kept := newIdentity(owner, "github", "gh-grace", t0)
	mustAddIdentity(t, s, kept)
	ownerSess := newSession(owner, t0)
	mustCreateSession(t, s, ownerSess)
	errFn := errors.New("fn gives up")
	for _, tt := range []struct {
		name string
		last func(tx storage.Store, u storage.User) error
		want error
	}{
		{"fn error", func(storage.Store, storage.User) error { return errFn }, errFn},
		{"store error", func(tx storage.Store, u storage.User) error {
			taken := newIdentity(u, "github", kept.Subject, t0) // the owner holds it
			return tx.AddIdentity(ctx, taken)
		}, storage.ErrIdentityTaken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := newUser(t0, "ada-"+tt.name+"@example.com", true)
			sess := newSession(u, t0)
			err := transactor(t, s).InTx(ctx, func(tx storage.Store) error {
				if err := tx.CreateUser(ctx, u, newIdentity(u, "github", "gh-"+tt.name, t0)); err != nil {
					return err
				}
				if err := tx.CreateSession(ctx, sess); err != nil {
					return err
				}
				if _, err := tx.RevokeUserSessions(ctx, owner.ID, "", t0.Add(time.Minute), "test"); err != nil {
					return err
				}
				if err := tx.DeleteIdentity(ctx, owner.ID, ownerID.ID); err != nil {
					return err
				}
				return tt.last(tx, u)
			})
			if !errors.Is(err, tt.want) {
				t.Fatalf("InTx: %v, want %v", err, tt.want)
			}
			wantNoUser(t, s, u.ID)
			if _, err := s.GetSession(ctx, sess.ID); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("session after rollback: %v, want ErrNotFound", err)
			}
			wantIdentityOwner(t, s, ownerID, owner.ID)
			wantIdentityOwner(t, s, kept, owner.ID)
			check(t, "owner's session", mustGetSession(t, s, ownerSess.ID), ownerSess)
			check(t, "owner", mustGetUser(t, s, owner.ID), owner)
			wantCount(t, s, 1)
		})
	}
}
