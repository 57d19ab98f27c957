// Package postgres is authex's storage.Store on PostgreSQL, for deployments
// that run several authex instances on one database (behind a load
// balancer, or during a rolling update). It speaks the PostgreSQL wire
// protocol through a jackc/pgx connection pool.
//
// Correctness across instances rests on the database, never on a read
// followed by a write: unique constraints decide who owns an identity
// (issuer, subject) and a verified email, refresh rotation is one
// conditional UPDATE (generation = from, live), and EnsureSecret is an
// INSERT ... ON CONFLICT DO NOTHING. Multi-statement writes run in one
// transaction, retried a bounded number of times on serialization failures
// and deadlocks.
//
// The schema lives in migrations/*.sql, embedded in the binary. Open applies
// the missing ones under a PostgreSQL advisory lock (two instances starting
// together do not race) and records each in schema_version.
//
// This package must never log or return the DSN (it holds the password),
// and never hands a caller memory it keeps.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authex/authex/storage"
)

var (
	_ storage.Store    = (*Store)(nil)
	_ storage.Exporter = (*Store)(nil)
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Constraint names the backend turns into sentinel errors (see
// migrations/0001_init.sql).
const (
	constraintVerifiedEmail   = "users_verified_email_key"
	constraintPasswordEmail   = "users_password_email_key" // migrations/0002_password_emails.sql
	constraintIdentitySubject = "identities_issuer_subject_key"
	constraintUsername        = "users_username_key" // migrations/0007_usernames.sql
)

const (
	defaultMaxConns       = 10
	defaultConnectTimeout = 5 * time.Second
	// maxAttempts bounds the retries of a serialization failure, a
	// deadlock, or a statement that never reached a dead connection.
	maxAttempts = 5
	// sweepChunk is how many sessions one sweep statement deletes, so a
	// large sweep never holds many row locks for long.
	sweepChunk = 1000
	// groupsRunning is how many groups of one kind (group.go) may be at
	// the database at once: one, so that the next group gathers every
	// request that arrives while it runs. In make bench (64 connections)
	// two made smaller groups that cost the database about 30 % more CPU
	// per exchange and put the two-instance exchange p99 past 60 ms; three
	// more still. groupMaxSize bounds the requests in one group.
	groupsRunning = 1
	groupMaxSize  = 64
)

// Options tune Open. The zero value is what production wants.
type Options struct {
	// Schema, when set, is created if missing and used as the search_path of
	// every connection, so several deployments (or test runs) can share one
	// database. Empty: the DSN's or the server's default (public).
	Schema string
	// MaxConns is the pool size; 0 means 10.
	MaxConns int32
	// ConnectTimeout bounds each new connection; 0 means 5s. While the
	// database is away, a request fails after about this long.
	ConnectTimeout time.Duration
	// SweepInterval is how often a background goroutine deletes expired and
	// revoked sessions: 0 means every 10 minutes, a negative value turns it
	// off. Every instance may sweep; the deletes are idempotent.
	SweepInterval time.Duration
	// Logger receives migration and sweeper reports; nil means slog.Default().
	Logger *slog.Logger
	// Tracer, when set, sees every statement, batch and prepare of every
	// connection (pgx's QueryTracer, and BatchTracer or PrepareTracer when
	// it implements them): the round-trip tests count with it.
	Tracer pgx.QueryTracer

	// migrateTo, in tests, stops the migrations after this version, to
	// craft an old schema (0: every migration).
	migrateTo int
}

// Store is a storage.Store backed by a PostgreSQL connection pool.
type Store struct {
	pool *pgxpool.Pool
	// db runs the queries: the pool, or in a view (InTx, Snapshot) the
	// view's transaction.
	db      querier
	inTx    bool
	log     *slog.Logger
	version int

	// The groups of concurrent calls (group.go), of RotateSessionOfEnabledUser,
	// WriteSignIn, GetIdentityUser and GetSessionUser; nil in a view, whose
	// calls run in its transaction.
	rotations     *group[answer[rotation, sessionUser]]
	signIns       *group[signInWrite]
	identityReads *group[answer[[2]string, identityUser]]
	sessionReads  *group[answer[string, sessionUser]]

	sweeper   *storage.Sweeper
	closeOnce sync.Once
}

var schemaRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ValidSchema reports whether name can be used as Options.Schema.
func ValidSchema(name string) bool { return schemaRe.MatchString(name) }

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string), brings the schema up to date and starts the session
// sweeper. Errors never contain the DSN's password; a database that cannot
// be reached gives an error that wraps storage.ErrUnavailable.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn's ParseConfigError redacts the password.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if opts.Schema != "" {
		if !ValidSchema(opts.Schema) {
			return nil, fmt.Errorf("postgres: schema %q is not a plain identifier", opts.Schema)
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = opts.Schema
	}
	cfg.MaxConns = opts.MaxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = defaultMaxConns
	}
	cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	if cfg.ConnConfig.ConnectTimeout <= 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "authex"
	}
	// The server's clock zone never leaks into our times: we scan
	// timestamptz and convert to UTC, but a UTC session also makes psql
	// output and server-side defaults read the same.
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	if opts.Tracer != nil {
		cfg.ConnConfig.Tracer = opts.Tracer
	}

	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("store", "postgres", "host", cfg.ConnConfig.Host, "database", cfg.ConnConfig.Database)
	if opts.Schema != "" {
		log = log.With("schema", opts.Schema)
	}

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", translate(err))
	}
	s := &Store{pool: pool, db: pool, log: log}
	s.rotations = rotationLookup.group(s)
	s.identityReads = identityUserLookup.group(s)
	s.sessionReads = sessionUserLookup.group(s)
	s.signIns = newGroup(groupsRunning, groupMaxSize, s.signInGroup)
	if err := s.migrate(ctx, opts.Schema, opts.migrateTo); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}

	s.sweeper = storage.StartSweeper(s, opts.SweepInterval, s.log)
	return s, nil
}

// SchemaVersion is the version the schema was at once Open returned.
func (s *Store) SchemaVersion() int { return s.version }

// Close stops the sweeper and closes the pool. Calling it again is a no-op.
func (s *Store) Close() error {
	if s.inTx {
		return nil // a view: the store it came from owns the pool
	}
	s.closeOnce.Do(func() {
		s.sweeper.Stop()
		s.pool.Close()
	})
	return nil
}

// Ping checks that a connection can be had and answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", translate(err))
	}
	return nil
}

type migration struct {
	version int
	name    string
	sql     string
}

// migrations reads the embedded files, named NNNN_description.sql.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and _", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: want version %d (no gaps, no duplicates)", m.name, i+1)
		}
	}
	return out, nil
}

// LatestVersion is the schema version this build migrates to.
func LatestVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// lockKey is the advisory lock that serializes migrations of one schema.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	io.WriteString(h, "authex:migrate:"+schema)
	return int64(h.Sum64())
}

// migrate creates the schema if asked to, then applies every migration the
// database lacks, each in its own transaction with its schema_version row,
// while holding a session advisory lock.
func (s *Store) migrate(ctx context.Context, schema string, upTo int) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	if upTo > 0 && upTo < len(ms) {
		ms = ms[:upTo]
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return translate(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey(schema)); err != nil {
		return fmt.Errorf("take the migration lock: %w", translate(err))
	}
	defer func() {
		// A fresh context: the lock must go even when ctx has ended. If
		// the connection died, the server dropped the lock with it.
		unlockCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(unlockCtx, "SELECT pg_advisory_unlock($1)", lockKey(schema)); err != nil {
			conn.Conn().Close(unlockCtx)
		}
	}()
	if schema != "" {
		if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("create schema: %w", translate(err))
		}
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("create schema_version: %w", translate(err))
	}
	var current int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_version").Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", translate(err))
	}
	if current > len(ms) {
		return fmt.Errorf("schema version %d is newer than this authex understands (%d); run a newer authex", current, len(ms))
	}
	for _, m := range ms[current:] {
		s.log.Info("migrating schema", "from", m.version-1, "to", m.version, "migration", m.name)
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			if gm := goMigrations[m.version]; gm != nil {
				if err := gm(ctx, tx, s.log); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_version (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, translate(err))
		}
	}
	s.version = len(ms)
	return nil
}

// do runs fn, again when it failed in a way that is safe and useful to
// retry (a serialization failure, a deadlock, a statement that never
// reached the server), at most maxAttempts times, and translates the last
// error.
func (s *Store) do(ctx context.Context, fn func() error) error {
	if s.inTx {
		// Inside a view's transaction a failed statement aborts it: no
		// retry, the caller's transaction fails as a whole.
		return translate(fn())
	}
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if attempt == maxAttempts || !retryable(err) || ctx.Err() != nil {
			return translate(err)
		}
		backoff := time.Duration(attempt)*5*time.Millisecond + rand.N(5*time.Millisecond)
		select {
		case <-ctx.Done():
			return translate(err)
		case <-time.After(backoff):
		}
	}
}

// execOne runs a statement, with the retries of do, that must touch a row:
// ErrNotFound naming what and id when it touches none; op and id name it
// in any other error.
func (s *Store) execOne(ctx context.Context, op, what, id, sql string, args ...any) error {
	var n int64
	err := s.do(ctx, func() error {
		tag, err := s.db.Exec(ctx, sql, args...)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: %s %q: %w", op, id, err)
	}
	if n == 0 {
		return errNotFound(what, id)
	}
	return nil
}

// tx runs fn in a transaction (READ COMMITTED, the server's default) with
// the retries of do: fn must be safe to run again from the start.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return s.do(ctx, func() error { return pgx.BeginFunc(ctx, s.db, fn) })
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	return pgconn.SafeToRetry(err)
}

// translate turns a driver error into the storage sentinels. Errors that
// already carry a sentinel pass unchanged.
func translate(err error) error {
	if err == nil {
		return nil
	}
	for _, sentinel := range []error{storage.ErrNotFound, storage.ErrConflict, storage.ErrStale, storage.ErrUnavailable} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505" && pgErr.ConstraintName == constraintVerifiedEmail:
			return fmt.Errorf("%w (%s)", storage.ErrEmailTaken, pgErr.ConstraintName)
		case pgErr.Code == "23505" && pgErr.ConstraintName == constraintPasswordEmail:
			return fmt.Errorf("%w (%s)", storage.ErrPasswordEmailTaken, pgErr.ConstraintName)
		case pgErr.Code == "23505" && pgErr.ConstraintName == constraintUsername:
			return fmt.Errorf("%w (%s)", storage.ErrUsernameTaken, pgErr.ConstraintName)
		case pgErr.Code == "23505" && pgErr.ConstraintName == constraintIdentitySubject:
			return fmt.Errorf("%w (%s)", storage.ErrIdentityTaken, pgErr.ConstraintName)
		case pgErr.Code == "23505":
			return fmt.Errorf("%w: %s", storage.ErrConflict, pgErr.ConstraintName)
		case pgErr.Code == "23503":
			return fmt.Errorf("%w: %s", storage.ErrNotFound, pgErr.ConstraintName)
		case unavailableCode(pgErr.Code):
			return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		}
		return err
	}
	// Everything else the driver returns is about reaching the server: a
	// refused or reset connection, a timeout, a pool that cannot connect.
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err), pgconn.SafeToRetry(err),
		strings.Contains(err.Error(), "conn closed"), strings.Contains(err.Error(), "closed pool"):
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return err
}

// unavailableCode: connection exceptions (08), the server shutting down or
// starting (57P01-57P03), too many connections (53300), and serialization
// failures or deadlocks that outlived the retries: all worth a later try.
func unavailableCode(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"):
		return true
	case code == "57P01", code == "57P02", code == "57P03", code == "53300", code == "40001", code == "40P01":
		return true
	}
	return false
}

func errNotFound(what, id string) error {
	return fmt.Errorf("postgres: %s %q: %w", what, id, storage.ErrNotFound)
}

func errEmpty(what string) error { return fmt.Errorf("postgres: %w", storage.EmptyArg(what)) }

// Times: UTC, microseconds (the server's precision), and a zero time.Time
// is NULL, so every record reads back equal to what was written.

func ts(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: t.UTC().Truncate(time.Microsecond), Valid: true}
}

func fromTS(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// limit is the LIMIT parameter for a filter's Limit: NULL (no limit) for 0.
func limit(n int) *int64 {
	if n <= 0 {
		return nil
	}
	v := int64(n)
	return &v
}
