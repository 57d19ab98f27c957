package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/authex/authex/storage"
)

var (
	_ storage.Transactor  = (*Store)(nil)
	_ storage.Snapshotter = (*Store)(nil)
)

// querier is what the Store's methods run their statements on: the pool,
// or one transaction (pgx.Tx; Begin then makes a savepoint, so the
// methods' own transactions nest).
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// InTx runs fn against a Store whose every statement runs in one READ
// COMMITTED transaction, committed when fn returns nil and rolled back
// otherwise. A serialization failure or a lost connection fails the whole
// transaction: InTx does not retry (fn may have done more than SQL).
// Called on a view, it runs fn in the view's transaction.
func (s *Store) InTx(ctx context.Context, fn func(tx storage.Store) error) error {
	if s.inTx {
		return fn(s)
	}
	return s.view(ctx, pgx.TxOptions{}, fn)
}

// Snapshot runs fn against a read-only Store that sees the database as it
// was when Snapshot began (a REPEATABLE READ READ ONLY transaction): what
// other instances commit meanwhile is not seen, and writes through the
// view fail.
func (s *Store) Snapshot(ctx context.Context, fn func(view storage.Store) error) error {
	if s.inTx {
		return fn(s)
	}
	return s.view(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

func (s *Store) view(ctx context.Context, opts pgx.TxOptions, fn func(storage.Store) error) error {
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", translate(err))
	}
	defer func() {
		// A no-op after Commit. A fresh context: the rollback must reach
		// the server even when ctx has ended (a dead connection is closed).
		rbCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tx.Rollback(rbCtx)
	}()
	if opts.IsoLevel == pgx.RepeatableRead {
		// PostgreSQL takes the snapshot at the first statement, not at
		// BEGIN: take it now, so it is the moment Snapshot was called.
		if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
			return fmt.Errorf("postgres: begin: %w", translate(err))
		}
	}
	if err := fn(&Store{pool: s.pool, db: tx, inTx: true, log: s.log, version: s.version}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", translate(err))
	}
	return nil
}
