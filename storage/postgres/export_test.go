package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/authex/authex/storage"
)

// WithMigrateTo stops Open's migrations after version, to craft a schema
// as an older authex left it.
func WithMigrateTo(o Options, version int) Options {
	o.migrateTo = version
	return o
}

// QueryRowInView runs sql in the transaction of view (the Store InTx
// hands its fn), for tests that read what that transaction did from the
// server's statistics.
func QueryRowInView(ctx context.Context, view storage.Store, sql string, args ...any) pgx.Row {
	return view.(*Store).db.QueryRow(ctx, sql, args...)
}
