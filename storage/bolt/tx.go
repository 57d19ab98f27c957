package bolt

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
)

var _ storage.Transactor = (*Store)(nil)

// InTx runs fn against a Store whose every method runs inside one bbolt
// Update: what fn writes through it commits when fn returns nil, and
// nothing does when fn returns an error (or the commit fails). Called on a
// view, it runs fn in the view's transaction.
//
// bbolt has one writer for the whole file, so fn holds every other write
// until it returns: it must do no network I/O and no slow work (password
// hashing), and must not use the Store InTx was called on (its writes
// would wait for this one for ever). bbolt has no savepoints: a method that
// fails inside the view may have written part of its work, so fn must
// return the error it got (undoing everything) rather than carry on.
// Writes that go through the group committer elsewhere run in the view's
// transaction directly.
func (s *Store) InTx(ctx context.Context, fn func(tx storage.Store) error) error {
	if s.tx != nil {
		return fn(s)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		return fn(&Store{db: s.db, log: s.log, tx: tx})
	})
}
