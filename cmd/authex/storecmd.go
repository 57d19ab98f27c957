package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/storage/transfer"
)

// storeCommand parses a store subcommand's flags and config and opens the
// store (which applies any pending migrations). extra registers more flags.
func storeCommand(ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer,
	extra func(*flag.FlagSet)) (storage.Store, Config, *slog.Logger, error) {
	cfg, log, err := storeConfig(name, args, getenv, stderr, extra)
	if err != nil {
		return nil, cfg, log, err
	}
	store, err := openStore(ctx, cfg.Storage, log)
	if err != nil {
		return nil, cfg, log, fmt.Errorf("open store (%s): %w", cfg.Storage.Driver, err)
	}
	return store, cfg, log, nil
}

// storeConfig parses a store subcommand's flags and config.
func storeConfig(name string, args []string, getenv func(string) string, stderr io.Writer,
	extra func(*flag.FlagSet)) (Config, *slog.Logger, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if name == "export" {
		fs.Usage = func() {
			fmt.Fprint(fs.Output(), exportHelp)
			fs.PrintDefaults()
		}
	}
	path := configFlag(fs, getenv)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, nil, err
	}
	cfg, err := loadConfigReporting(*path, getenv, stderr)
	if err != nil {
		return cfg, nil, err
	}
	return cfg, newLogger(cfg.Log, stderr), nil
}

const exportHelp = `Usage: authex export -config FILE > dump.jsonl

Writes every record of the configured store to standard output as JSON
lines. Signing keys and refresh secrets are in it sealed with the
key-encryption key (never in clear: any still in clear are sealed in place
first); importing it elsewhere needs the same secrets.kek. It holds
password hashes and personal data: keep it like the database. On
PostgreSQL the export reads one consistent snapshot and may run while the
instances serve. On bbolt the store's file lock means the instances must be
stopped anyway.

`

// runMigrate brings the store's schema up to date and says where it is.
// serve does the same at start; this is for operators who migrate first.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	store, cfg, _, err := storeCommand(ctx, "migrate", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	if pg, ok := store.(*postgres.Store); ok {
		fmt.Fprintf(stdout, "postgres: schema at version %d\n", pg.SchemaVersion())
		return nil
	}
	fmt.Fprintf(stdout, "%s: schema up to date\n", cfg.Storage.Driver)
	return nil
}

// runExport writes every record of the configured store to stdout.
func runExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	store, cfg, log, err := storeCommand(ctx, "export", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	// Never export key material in clear: seal what a store written before
	// the KEK (or under a previous one) still holds, in place, first.
	sealer, err := newSealer(cfg, log, true)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if _, err := exchange.SealKeyMaterial(ctx, store, sealer); err != nil {
		return fmt.Errorf("export: seal key material: %w", err)
	}
	c, err := transfer.Export(ctx, store, stdout)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(stderr, "exported from %s: %s\n", cfg.Storage.Driver, countsLine(c))
	return nil
}

// runImport reads an export (stdin, or -in FILE) into the configured store,
// which must be empty. It reads and checks the whole export before it
// writes anything, and writes all of it or nothing: PostgreSQL in one
// transaction, bbolt into a temporary file next to storage.bolt.path that
// is renamed into place only once every record is in it.
func runImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var in *string
	cfg, log, err := storeConfig("import", args, getenv, stderr, func(fs *flag.FlagSet) {
		in = fs.String("in", "-", "file to read the export from (- for standard input)")
	})
	if err != nil {
		return err
	}
	r := io.Reader(os.Stdin)
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	var c transfer.Counts
	if cfg.Storage.Driver == "bolt" {
		c, err = bolt.ImportFile(ctx, cfg.Storage.Bolt.Path, r, bolt.Options{Logger: log})
	} else {
		c, err = importStore(ctx, cfg.Storage, r, log)
	}
	if errors.Is(err, transfer.ErrNotEmpty) {
		return fmt.Errorf("import: the %s store already holds data; import only into an empty store", cfg.Storage.Driver)
	}
	if err != nil {
		return fmt.Errorf("import: nothing was written: %w", err)
	}
	if c.SkippedUsers > 0 {
		fmt.Fprintf(stderr, "warning: skipped %d user(s) without any identity and their %d session(s)\n", c.SkippedUsers, c.SkippedSessions)
	}
	fmt.Fprintf(stdout, "imported into %s: %s\n", cfg.Storage.Driver, countsLine(c))
	return nil
}

// importStore imports into a store that writes the whole stream in one
// transaction (storage.Transactor: PostgreSQL).
func importStore(ctx context.Context, cfg StorageConfig, r io.Reader, log *slog.Logger) (transfer.Counts, error) {
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return transfer.Counts{}, fmt.Errorf("open store (%s): %w", cfg.Driver, err)
	}
	defer store.Close()
	if _, ok := storage.As[storage.Transactor](store); !ok {
		return transfer.Counts{}, fmt.Errorf("the %s store cannot write an import in one transaction", cfg.Driver)
	}
	empty, err := transfer.Empty(ctx, store)
	if err != nil {
		return transfer.Counts{}, err
	}
	if !empty {
		return transfer.Counts{}, transfer.ErrNotEmpty
	}
	st, err := transfer.Read(r)
	if err != nil {
		return transfer.Counts{}, err
	}
	defer st.Close()
	return st.Import(ctx, store)
}

func countsLine(c transfer.Counts) string {
	return fmt.Sprintf("%d users, %d identities, %d sessions, %d signing keys, %d secrets, %d audit events",
		c.Users, c.Identities, c.Sessions, c.SigningKeys, c.Secrets, c.AuditEvents)
}
