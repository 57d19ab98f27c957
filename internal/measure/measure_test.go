package measure

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestWithDSNParam: the application_name reaches the server in either DSN
// form (pg_stat_activity finds the backends by it), and pgx reads the rest
// of the DSN as before.
func TestWithDSNParam(t *testing.T) {
	for _, dsn := range []string{
		"postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable",
		"postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable&application_name=other",
		"host=127.0.0.1 port=5432 user=postgres password=postgres dbname=test sslmode=disable",
	} {
		cfg, err := pgx.ParseConfig(WithDSNParam(dsn, "application_name", "authex-x"))
		if err != nil {
			t.Fatalf("%s: %v", dsn, err)
		}
		if got := cfg.RuntimeParams["application_name"]; got != "authex-x" {
			t.Errorf("%s: application_name = %q", dsn, got)
		}
		if cfg.Database != "test" || cfg.User != "postgres" || cfg.Password != "postgres" {
			t.Errorf("%s: the rest of the DSN changed: %+v", dsn, cfg)
		}
	}
}

// TestProcessCPU reads this process's own /proc/PID/stat: its command
// name, and CPU time that grows as it runs.
func TestProcessCPU(t *testing.T) {
	command, before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Base(os.Args[0]); len(want) > 15 && command != want[:15] || len(want) <= 15 && command != want {
		t.Errorf("command = %q, want %q (at most 15 bytes of it)", command, want)
	}
	for x := 0; ; x++ {
		_, after, err := ProcessCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			return
		}
		if after < before || x > 1e9 {
			t.Fatalf("ProcessCPU went from %d to %d", before, after)
		}
	}
}

// TestProcessCPUMissing: a pid that names no process is an error.
func TestProcessCPUMissing(t *testing.T) {
	if _, _, err := ProcessCPU(-1); err == nil {
		t.Error("ProcessCPU(-1) succeeded")
	}
}

// TestSelfAndThreadCPU: both clocks advance while this goroutine spins on
// its locked thread, and the thread's never exceeds the process's.
func TestSelfAndThreadCPU(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self0, err1 := SelfCPU()
	thread0, err2 := ThreadCPU()
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	for {
		self, err1 := SelfCPU()
		thread, err2 := ThreadCPU()
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if thread-thread0 > self-self0+time.Millisecond { // the two reads are not at one instant
			t.Fatalf("thread used %s, more than the process's %s", thread-thread0, self-self0)
		}
		if thread > thread0 && self > self0 {
			return
		}
	}
}
