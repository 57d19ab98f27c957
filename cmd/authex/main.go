// Command authex is the social-login token exchange service: it verifies a
// provider's ID token, finds or creates the local user, and answers with
// our own access and refresh tokens.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/mattn/go-isatty"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if code := exitCode(err, os.Stderr); code != 0 {
		os.Exit(code)
	}
}

// exitCode reports err on stderr (unless run already did: config problems,
// usage) and answers the exit status: 0, 2 for usage, 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var p Problems
	if !errors.As(err, &p) && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stderr, "authex:", err)
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

const usage = `authex: social-login token exchange

Usage:
  authex serve -config FILE      run the service
  authex serve -config FILE --dev
                                 ... with the development emulator mounted
                                 at /emulator as provider "dev" (loopback only)
  authex emulator [-listen 127.0.0.1:9090] [-client-id ID] [-key-file F] [-force]
                                 run only the development OpenID provider
  authex config check -config FILE [-production]
                                 report every problem in a config file
                                 (-production: and what production must not have)
  authex migrate -config FILE    apply pending store migrations (serve does too)
  authex export -config FILE > dump.jsonl
                                 write every record of the store as JSON lines
                                 (bbolt: instances stopped; PostgreSQL: one snapshot)
  authex import -config FILE [-in dump.jsonl]
                                 read an export into an empty store (stdin by default),
                                 all of it or nothing
  authex version                 print the version

` + adminUsage + `
Run "authex COMMAND -h" for a command's flags.
`

// command is one top-level subcommand: args are the ones after its name.
type command func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// commands maps each subcommand's name to the function that runs it.
var commands = map[string]command{
	"serve":     runServe,
	"migrate":   runMigrate,
	"export":    runExport,
	"import":    runImport,
	"emulator":  runEmulator,
	"config":    runConfig,
	"users":     adminGroup("users"),
	"sessions":  adminGroup("sessions"),
	"keys":      adminGroup("keys"),
	"webhooks":  adminGroup("webhooks"),
	"audit":     adminGroup("audit"),
	"backup":    adminGroup("backup"),
	"version":   runVersion,
	"-version":  runVersion,
	"--version": runVersion,
	"help":      runHelp,
	"-h":        runHelp,
	"--help":    runHelp,
}

// run is the whole program, with its environment passed in, so tests run
// the real thing.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "authex: unknown command %q\n\n%s", args[0], usage)
		return flag.ErrHelp
	}
	return cmd(ctx, args[1:], getenv, stdout, stderr)
}

func adminGroup(group string) command {
	return func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		return runAdmin(ctx, group, args, getenv, stdout, stderr)
	}
}

func runVersion(_ context.Context, _ []string, _ func(string) string, stdout, _ io.Writer) error {
	fmt.Fprintln(stdout, "authex", version)
	return nil
}

func runHelp(_ context.Context, _ []string, _ func(string) string, stdout, _ io.Writer) error {
	fmt.Fprint(stdout, usage)
	return nil
}

// runConfig is `authex config check`, the one config subcommand.
func runConfig(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 1 || args[0] != "check" {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	return runConfigCheck(args[1:], getenv, stdout, stderr)
}

// configFlag registers -config (Go's flag package accepts --config too).
func configFlag(fs *flag.FlagSet, getenv func(string) string) *string {
	def := getenv("AUTHEX_CONFIG")
	if def == "" {
		def = "config.yaml"
	}
	return fs.String("config", def, "path of the YAML config file (env AUTHEX_CONFIG)")
}

func runConfigCheck(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs, getenv)
	production := fs.Bool("production", false, "also fail on what docs/security.md says a production deployment must not have")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfigReporting(*path, getenv, stderr)
	if err != nil {
		return err
	}
	warnAutoKEK(cfg, stderr)
	if *production {
		if p := cfg.productionProblems(); len(p) > 0 {
			fmt.Fprintf(stderr, "%s: %d production problem(s) (docs/security.md, \"Production checklist\"):\n", *path, len(p))
			for _, line := range p {
				fmt.Fprintln(stderr, "  "+line)
			}
			return p
		}
		fmt.Fprintf(stdout, "%s: ok for production\n", *path)
		return nil
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return nil
}

// loadConfigReporting loads the config and prints every problem, one per
// line with its key path.
func loadConfigReporting(path string, getenv func(string) string, stderr io.Writer) (Config, error) {
	cfg, err := loadConfig(path, getenv)
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(stderr, "warning: "+w)
	}
	var p Problems
	if errors.As(err, &p) {
		fmt.Fprintf(stderr, "%s: %d problem(s):\n", path, len(p))
		for _, line := range p {
			fmt.Fprintln(stderr, "  "+line)
		}
	}
	return cfg, err
}

func newLogger(cfg LogConfig, w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	text := cfg.Format == "text"
	if cfg.Format == "auto" {
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			text = true
		}
	}
	if text {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
