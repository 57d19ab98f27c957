// Package pgtest gives tests a PostgreSQL schema of their own. Tests that
// need PostgreSQL read the server from AUTHEX_TEST_POSTGRES_DSN and skip
// when it is unset; each call makes a fresh schema name (the store creates
// the schema at Open) and drops it when the test ends, so runs never
// collide, even on a shared server.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the environment variable that points tests at a server.
const EnvDSN = "AUTHEX_TEST_POSTGRES_DSN"

// DSN returns the test server's DSN, or skips tb when none is configured.
func DSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		tb.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run them", EnvDSN)
	}
	return dsn
}

// Schema returns the DSN and a new schema name for tb, and drops that
// schema (whatever created it) when tb ends.
func Schema(tb testing.TB) (dsn, schema string) {
	tb.Helper()
	dsn = DSN(tb)
	b := make([]byte, 6)
	rand.Read(b)
	schema = "authex_test_" + hex.EncodeToString(b)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return dsn, schema
}
