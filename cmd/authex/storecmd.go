package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/storage/transfer"
)

// storeCommand parses a store subcommand's flags and config and opens the
// store (which applies any pending migrations). extra registers more flags.
func storeCommand(ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer,
	extra func(*flag.FlagSet)) (storage.Store, Config, *slog.Logger, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs, getenv)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, Config{}, nil, err
	}
	cfg, err := loadConfigReporting(*path, getenv, stderr)
	if err != nil {
		return nil, cfg, nil, err
	}
	log := newLogger(cfg.Log, stderr)
	store, err := openStore(ctx, cfg.Storage, log)
	if err != nil {
		return nil, cfg, log, fmt.Errorf("open store (%s): %w", cfg.Storage.Driver, err)
	}
	return store, cfg, log, nil
}

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
	store, cfg, _, err := storeCommand(ctx, "export", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	c, err := transfer.Export(ctx, store, stdout)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(stderr, "exported from %s: %s\n", cfg.Storage.Driver, countsLine(c))
	return nil
}

// runImport reads an export (stdin, or -in FILE) into the configured store,
// which must be empty.
func runImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var in *string
	store, cfg, _, err := storeCommand(ctx, "import", args, getenv, stderr, func(fs *flag.FlagSet) {
		in = fs.String("in", "-", "file to read the export from (- for standard input)")
	})
	if err != nil {
		return err
	}
	defer store.Close()
	r := io.Reader(os.Stdin)
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	c, err := transfer.Import(ctx, store, r)
	if errors.Is(err, transfer.ErrNotEmpty) {
		return fmt.Errorf("import: the %s store already holds data; import only into an empty store", cfg.Storage.Driver)
	}
	if err != nil {
		return fmt.Errorf("import (%s so far): %w", countsLine(c), err)
	}
	if c.SkippedUsers > 0 {
		fmt.Fprintf(stderr, "warning: skipped %d user(s) without any identity and their %d session(s)\n", c.SkippedUsers, c.SkippedSessions)
	}
	fmt.Fprintf(stdout, "imported into %s: %s\n", cfg.Storage.Driver, countsLine(c))
	return nil
}

func countsLine(c transfer.Counts) string {
	return fmt.Sprintf("%d users, %d identities, %d sessions, %d signing keys, %d secrets, %d audit events",
		c.Users, c.Identities, c.Sessions, c.SigningKeys, c.Secrets, c.AuditEvents)
}
