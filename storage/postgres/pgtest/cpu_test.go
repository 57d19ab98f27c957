package pgtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestWithParam: the meter's application_name reaches the server in
// either DSN form (pg_stat_activity finds the backends by it), and the
// rest of the DSN is kept.
func TestWithParam(t *testing.T) {
	for _, dsn := range []string{
		"postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable",
		"postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable&application_name=other",
		"host=127.0.0.1 port=5432 user=postgres password=postgres dbname=test sslmode=disable",
	} {
		cfg, err := pgx.ParseConfig(withParam(dsn, "application_name", "authex-cpu-x"))
		if err != nil {
			t.Fatalf("%s: %v", dsn, err)
		}
		if got := cfg.RuntimeParams["application_name"]; got != "authex-cpu-x" {
			t.Errorf("%s: application_name = %q", dsn, got)
		}
		if cfg.Database != "test" || cfg.User != "postgres" || cfg.Password != "postgres" {
			t.Errorf("%s: the rest of the DSN changed: %+v", dsn, cfg)
		}
	}
}

// TestCPUTicks reads this process's own /proc/PID/stat: its command name,
// and CPU time that grows as it runs.
func TestCPUTicks(t *testing.T) {
	command, before, err := cpuTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Base(os.Args[0]); len(want) > 15 && command != want[:15] || len(want) <= 15 && command != want {
		t.Errorf("command = %q, want %q (at most 15 bytes of it)", command, want)
	}
	for x := 0; ; x++ {
		_, after, err := cpuTicks(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			return
		}
		if after < before || x > 1e9 {
			t.Fatalf("cpuTicks went from %d to %d", before, after)
		}
	}
}
