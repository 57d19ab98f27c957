package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authex/authex/internal/measure"
	"github.com/authex/authex/storage/postgres"
)

// defaultPGDSN is the server .ci/run tests against.
const defaultPGDSN = "postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable"

// pgRun is one run's schema on the server: made fresh, populated, dropped
// at the end, so that runs never see each other's rows.
type pgRun struct {
	dsn     string // with the run's application_name: what authex connects with
	appName string
	schema  string
	kek     string    // secrets.kek of every instance: the key material in the database is sealed with it
	control *pgx.Conn // the bench's own connection (another application_name)
}

func startPG(dsn string, users int, issuerURL string) (*pgRun, populated, error) {
	b := make([]byte, 6)
	rand.Read(b)
	tag := hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	control, err := pgx.Connect(ctx, measure.WithDSNParam(dsn, "application_name", "authex-bench-control"))
	if err != nil {
		return nil, populated{}, fmt.Errorf("PostgreSQL (set -pg-dsn, or -pg-dsn '' to skip its rows): %w", err)
	}
	r := &pgRun{appName: "authex-bench-" + tag, schema: "authex_bench_" + tag, control: control}
	r.dsn = measure.WithDSNParam(dsn, "application_name", r.appName)
	k := make([]byte, 32)
	rand.Read(k)
	r.kek = base64.StdEncoding.EncodeToString(k)
	start := time.Now()
	store, err := postgres.Open(ctx, r.dsn, postgres.Options{Schema: r.schema, MaxConns: 32, SweepInterval: -1,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		r.close()
		return nil, populated{}, err
	}
	ids, err := createUsers(store, issuerURL, users)
	if err == nil {
		err = createSessions(store, ids)
	}
	store.Close()
	if err != nil {
		r.close()
		return nil, populated{}, err
	}
	return r, populated{users: users, sessions: users, took: time.Since(start)}, nil
}

func (r *pgRun) backends() *pgBackends {
	return &pgBackends{conn: r.control, appName: r.appName}
}

// config is the storage section and the secret every instance shares.
func (r *pgRun) config() (storageConfig, extra string) {
	return pgStorage(r.dsn, r.schema), fmt.Sprintf("secrets: { kek: %q }\n", r.kek)
}

// close drops the run's schema and everything in it.
func (r *pgRun) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := r.control.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{r.schema}.Sanitize()+" CASCADE")
	r.control.Close(ctx)
	return err
}
