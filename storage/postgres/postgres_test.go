package postgres_test

import (
	"testing"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/storage/postgres/pgtest"
	"github.com/authex/authex/storage/storagetest"
)

// open returns a store on a schema of its own, dropped when t ends.
func open(t *testing.T, opts postgres.Options) *postgres.Store {
	t.Helper()
	dsn, schema := pgtest.Schema(t)
	opts.Schema = schema
	if opts.SweepInterval == 0 {
		opts.SweepInterval = -1
	}
	s, err := postgres.Open(t.Context(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	pgtest.DSN(t)
	storagetest.Run(t, func(t *testing.T) storage.Store { return open(t, postgres.Options{}) })
}
