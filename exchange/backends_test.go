package exchange

import (
	"log/slog"
	"testing"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/storage/postgres/pgtest"
)

// backend is a store a test runs on, opened fresh for each test.
type backend struct {
	name string
	open func(t *testing.T) storage.Store
}

// bothBackends are a bbolt file and a PostgreSQL schema, neither sweeping
// in the background, for behaviour that must hold on both.
func bothBackends() []backend {
	return []backend{
		{"bolt", func(t *testing.T) storage.Store { return openBolt(t, bolt.Options{NoSync: true, SweepInterval: -1}) }},
		{"postgres", func(t *testing.T) storage.Store {
			dsn, schema := pgtest.Schema(t)
			s, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema, SweepInterval: -1, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
	}
}
