package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/postgres"
)

// A PostgreSQL run (-pg-dsn): the server stores in a fresh schema of that
// database, pre-populated as the bbolt file is, and dropped afterwards. The
// CPU it reports adds the server's backends (read from /proc: the
// database must run on this machine) to the authex process's.

// benchKEK is the key-encryption key of the PostgreSQL runs (a PostgreSQL
// store requires one): 32 bytes, base64.
const benchKEK = "YmVuY2gta2VrLWJlbmNoLWtlay1iZW5jaC1rZWstMzI="

// pgStore is one run's schema.
type pgStore struct {
	dsn, schema string
	conn        *pgx.Conn // asks which backends serve the server
}

func newPGStore(dsn string) (*pgStore, error) {
	b := make([]byte, 6)
	rand.Read(b)
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &pgStore{dsn: dsn, schema: "authex_bench_" + hex.EncodeToString(b), conn: conn}, nil
}

// storageYAML is the storage block of the server's config. The DSN goes
// through the environment, as in production.
func (p *pgStore) storageYAML() string {
	return fmt.Sprintf(`storage: { driver: postgres, postgres: { dsn: "${AUTHEX_BENCH_PG_DSN}", schema: %q } }
secrets: { kek: %q }`, p.schema, benchKEK)
}

func (p *pgStore) drop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{p.schema}.Sanitize()+" CASCADE")
	p.conn.Close(ctx)
}

// backendTicks is the CPU time so far of the backends serving the
// server (application_name authex), in clock ticks.
func (p *pgStore) backendTicks() int64 {
	rows, err := p.conn.Query(context.Background(),
		`SELECT pid FROM pg_stat_activity WHERE application_name = 'authex' AND datname = current_database()`)
	if err != nil {
		return 0
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return 0
	}
	var total int64
	for _, pid := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		rest := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
		if len(rest) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(rest[11], 10, 64)
		s, _ := strconv.ParseInt(rest[12], 10, 64)
		total += u + s
	}
	return total
}

// populate writes what populate writes to a bbolt file, through
// storage/postgres.
func (p *pgStore) populate(issuerURL string, n int) (populated, error) {
	start := time.Now()
	ctx := context.Background()
	store, err := postgres.Open(ctx, p.dsn, postgres.Options{Schema: p.schema, SweepInterval: -1, MaxConns: 32})
	if err != nil {
		return populated{}, err
	}
	defer store.Close()
	now := time.Now().UTC()
	err = parallel(n, func(i int) error {
		sub := subject(i)
		u := storage.User{ID: uuid.Must(uuid.NewV7()).String(), Email: email(sub), EmailVerified: true,
			Name: "Bench " + sub, Roles: []string{}, CreatedAt: now, UpdatedAt: now}
		id := storage.Identity{ID: uuid.Must(uuid.NewV7()).String(), UserID: u.ID, Provider: "corp",
			Issuer: issuerURL, Subject: sub, Email: u.Email, EmailVerified: true, CreatedAt: now, LastLoginAt: now}
		if err := store.CreateUser(ctx, u, id); err != nil {
			return err
		}
		return store.CreateSession(ctx, storage.Session{
			ID: uuid.Must(uuid.NewV7()).String(), UserID: u.ID, Provider: "corp", Generation: 1,
			RotatedAt: now, CreatedAt: now, IdleExpiresAt: now.Add(14 * 24 * time.Hour), ExpiresAt: now.Add(90 * 24 * time.Hour),
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
			IP:        "127.0.0.1",
		})
	})
	if err != nil {
		return populated{}, fmt.Errorf("populate: %w", err)
	}
	return populated{users: n, sessions: n, took: time.Since(start)}, nil
}
